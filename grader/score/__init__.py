"""Scoring the evidence against the hidden labels: the rubric, its checks (``checks/``),
measures and intervals, and the scorecard model. Never imports :mod:`grader.execute`.

Modules:

- ``bars``: What a threshold criterion on the hidden test set compares, kept with its result
  (``result.json`` schema 3) so that a team's view decides it again on the public part
  (:mod:`grader.report.teamcard`).
- ``grades``: The coach's grades of written answers, applied to a graded submission.
- ``measure``: Metrics on the hidden test set, computed by the grader alone with scikit-learn.
- ``plots``: Figures the grader draws itself (matplotlib, Agg backend), returned as inline SVG text.
- ``rubric``: Rubrics.
- ``score``: Stage 4 of grading a notebook, *score*.
- ``scorecard``: The scorecard.
- ``stats``: How sure a figure on the hidden test set is.
- ``verdict``: A notebook's rubric criteria combined with their check results.
- ``checks/``: its own package (its face says what it holds).

Other packages import through this face (``from grader.score import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
