"""The sandbox a notebook runs in: a bubblewrap session, its tmpfs mounts and cgroup limits, and
the gate of the hidden images.

Modules:

- ``cgroups``: Memory and process limits of a run by a cgroup made for it (cgroup v1.
- ``gate``: The gate of the hidden images.
- ``mounts``: Disk limits of a run.
- ``session``: The sandbox a student's notebook runs in.

Other packages import through this face (``from grader.sandbox import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
