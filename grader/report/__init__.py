"""Rendering: HTML scorecards (the coach's and a team's), the cohort index, leaderboards, and
the exports (gradebook CSV per team and per student for Canvas and Moodle, JUnit XML, Gradescope's
``results.json``).

Modules:

- ``exports``: The exports a coach hands on, each in the layout its importer documents.
- ``jinja``: The scorecards' templates (``grader/report/templates``).
- ``leaderboard``: Leaderboards of a run.
- ``markdown``: Student text (written answers) as HTML, raw HTML off.
- ``render``: Write a run's outputs.
- ``teamcard``: What a team may see of its own result during an event, and how much that can tell
  it.
- ``written``: Grading written answers from the command line: the grading sheet and the
  grade-by-question page.

Other packages import through this face (``from grader.report import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
