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
from .leaderboard import Board, Part, Rate, best_notebooks, figure, leaderboards, pass_rates
from .markdown import markdown_html
from .render import (
    ANSWERS,
    SHEET,
    earlier_results,
    previous_result,
    render_scorecard,
    render_team_scorecards,
    write_cohort,
    write_submission,
)
from .teamcard import BoardStep, run_log, served, team_view, unpack, with_board
from .written import (
    Question,
    SheetRow,
    answers_html,
    apply_sheet,
    grading_sheet_csv,
    has_written,
    question_sections,
    read_grading_sheet,
    written_answer_html,
)

__all__ = ["ANSWERS", "Board", "BoardStep", "CohortEntry", "Part", "Question", "SHEET", "SheetRow", "Student",
    "answers_html", "apply_sheet", "best_notebooks", "canvas_gradebook_csv", "compile_templates", "earlier_results",
    "figure", "gradebook_csv", "grading_sheet_csv", "gradescope_results", "gradescope_zip", "has_written",
    "junit_xml", "leaderboards", "markdown_html", "moodle_gradebook_csv", "previous_result", "question_sections",
    "read_grading_sheet", "render_scorecard", "render_team_scorecards", "team_view", "unpack", "with_board",
    "write_cohort", "write_submission", "written_answer_html", "run_log", "served", "Rate", "pass_rates"]
