# The face of grader.report: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .exports import (
    CohortEntry,
    Student,
    canvas_gradebook_csv,
    gradebook_csv,
    gradescope_results,
    gradescope_zip,
    junit_xml,
    moodle_gradebook_csv,
)
from .jinja import compile_templates
from .leaderboard import Board, Part, best_notebooks, figure, leaderboards
from .render import earlier_results, render_scorecard, render_team_scorecards, write_cohort, write_submission
from .teamcard import BoardStep, run_log, served, team_view, unpack, with_board

__all__ = ["Board", "BoardStep", "CohortEntry", "Part", "Student", "best_notebooks", "canvas_gradebook_csv",
    "compile_templates", "earlier_results", "figure", "gradebook_csv", "gradescope_results", "gradescope_zip",
    "junit_xml", "leaderboards", "moodle_gradebook_csv", "render_scorecard", "render_team_scorecards", "team_view",
    "unpack", "with_board", "write_cohort", "write_submission",
    "run_log", "served"]
