"""The ground floor: the error tree (each error owns its exit status), settings (the only reader
of the environment), the challenge spec, and files written whole.

Modules:

- ``authoring``: A coach's mistakes in a challenge, found before anything runs.
- ``challenge``: Challenge specifications.
- ``environment``: The grading environment: what a notebook can import, and the packages a coach adds.
- ``errors``: One error tree for every fault of the harness or of its configuration.
- ``files``: Files the grader writes.
- ``project``: Where challenges, rubrics and reference solutions are found: a coach's project
  folder, and the shipped project beside it.
- ``settings``: Settings, resolved once (command line > environment > defaults) into one frozen
  object.

Other packages import through this face (``from grader.core import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
