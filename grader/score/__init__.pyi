# The face of grader.score: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .bars import Bar
from .grades import Grade, apply_grades, carry_grades, grade_key, hide_unreleased, rescored
from .plots import with_loss_plots
from .rubric import Criterion, Rubric, RubricItem, load_rubric
from .score import model_files, score_notebook, unknown_challenge
from .scorecard import (
    CriterionResult,
    Environment,
    ModelReport,
    NewImageRow,
    NotebookResult,
    Share,
    SubmissionResult,
    Verdict,
    decode_predicted,
)
from .stats import mcnemar_exact, wilson_interval
from .verdict import notebook_verdict, submission_reason, submission_verdict, verdict_reason

__all__ = ["Bar", "Criterion", "CriterionResult", "Environment", "Grade", "ModelReport", "NewImageRow",
    "NotebookResult", "Rubric", "RubricItem", "Share", "SubmissionResult", "Verdict", "apply_grades", "carry_grades",
    "decode_predicted", "grade_key", "hide_unreleased", "load_rubric", "mcnemar_exact", "model_files",
    "notebook_verdict", "rescored", "score_notebook", "submission_reason", "submission_verdict", "unknown_challenge",
    "verdict_reason", "wilson_interval", "with_loss_plots"]
