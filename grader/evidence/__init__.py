"""What a run produced, validated: run facts, the probe's output, what a notebook claims, saved
model files, hints for failures, the framework a notebook used.

Modules:

- ``claims``: What the notebook says about itself.
- ``frameworks``: Which deep-learning framework a notebook uses, read from its code (never from its
  outputs).
- ``hints``: What to tell a student whose cell failed for want of the network.
- ``modelfile``: Tell a saved model file by its signature, without unpickling or loading anything.
- ``records``: What crosses the trust boundary, and the evidence the checks read.
- ``runfacts``: Stage 3 of grading a notebook, *evidence*.

Other packages import through this face (``from grader.evidence import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
