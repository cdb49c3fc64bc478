"""The event server's routes, one module per audience: a team's pages, the coach's, and the
public ones.

Modules:

- ``coach``: The coach's pages under ``/coach``.
- ``exports``: The coach's exports of the cohort under ``/coach/export/``.
- ``grading``: The coach's grading of written answers, question by question.
- ``history``: A team's submission history: its final submissions, the downloads of what it sent and of
  the run's log.
- ``public``: The pages every signed-in browser may ask for, a team's or the coach's.
- ``team``: A team's pages.

Other packages import through this face (``from grader.server.web.routes import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
