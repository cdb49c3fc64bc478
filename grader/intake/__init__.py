"""Submissions as they arrive: folders, notebook files, team and cohort zips (unpacked within
limits), notebooks read as saved, and the working copy.

Modules:

- ``answers``: Written answers, read from the notebook as submitted.
- ``diagnosis``: Files that are not usable notebooks, named for what they are.
- ``notebook``: Notebooks as the grader handles them.
- ``submissions``: Intake.
- ``unzip``: Unpack a zip a team handed in, safely, with the standard library's :mod:`zipfile`.
- ``workcopy``: A submission's working copy.

Other packages import through this face (``from grader.intake import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
