"""Integrity across a cohort: code fingerprints, shared mistakes, copied written answers, similar pairs.

Modules:

- ``answers``: Written answers compared for :mod:`grader.integrity.pairs`.
- ``fingerprints``: Code similarity for :mod:`grader.integrity.pairs`.
- ``mistakes``: Shared mistakes for :mod:`grader.integrity.pairs`.
- ``pairs``: Cohort integrity (issue 19).

Other packages import through this face (``from grader.integrity import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
