"""The event server's workers: threads that lease queued jobs and grade them, each in a child
process of its own or on Dask.

Modules:

- ``child``: Grading in a process of its own.
- ``worker``: Worker threads that grade the queued submissions of the event server.

Other packages import through this face (``from grader.server.work import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
