"""The ``grader`` command: ``main`` holds the parser and is the only place where errors become
exit statuses; one module per verb.

Modules:

- ``check``: ``grader check``.
- ``data``: ``grader data``.
- ``event``: ``grader event``.
- ``event_teams``: ``grader event teams``, ``rotate-link``, ``add-team`` and ``remove-team``.
- ``init``: ``grader init DIR``: a coach's own project folder.
- ``links``: The join links a coach hands out.
- ``main``: The ``grader`` command line.
- ``new_challenge``: ``grader new-challenge``.
- ``options``: The options and checks that several commands share.
- ``project``: The project's commands.
- ``serve``: ``grader serve``.
- ``teamsfile``: ``teams.csv``, as ``grader event create --teams`` and ``grader event add-team --members`` read it.

Other packages import through this face (``from grader.cli import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
