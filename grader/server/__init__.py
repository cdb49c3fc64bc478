"""The event server: ``store/`` (database, models, migrations) below ``work/`` (workers, the
grading child) below ``web/`` (the app, routes per audience, pages); ``serve.py`` runs them
together under uvicorn.

Modules:

- ``serve``: ``grader serve``.
- ``store/``: its own package (its face says what it holds).
- ``web/``: its own package (its face says what it holds).
- ``work/``: its own package (its face says what it holds).

Other packages import through this face (``from grader.server import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
