"""Grading jobs: one submission graded (the one per-job function :func:`grade_job`, which
``grader check``, ``verify-references`` and the event server's workers all call), batches on
threads or Dask, the result cache, GPU and CPU slots.

Modules:

- ``batch``: Grade a cohort.
- ``cache``: The result cache of ``grader check`` and the event server.
- ``dask``: A batch on a Dask cluster.
- ``grade``: Grade one submission.
- ``job``: A job of a batch, its options, its outcome and its events.
- ``prefetch``: What scoring needs, imported while a notebook runs.
- ``resources``: What a job of a batch runs on.
- ``results``: ``reference_solutions/RESULTS.md``, generated from the ``result.json`` of real runs.
- ``verify``: ``grader verify-references``.

Other packages import through this face (``from grader.pipeline import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
