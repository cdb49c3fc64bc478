"""Running a notebook: prepare its working copy and data, run it in the sandbox under its
limits, watch it, and hand back what it left (:mod:`grader.evidence`).

Modules:

- ``prepare``: Stage 1 of grading a notebook, *prepare*.
- ``request``: One notebook run as the executor takes it.
- ``run``: Stage 2 of grading a notebook, *execute*.
- ``watch``: Watching a runner while it runs.

Other packages import through this face (``from grader.execute import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
