# The face of grader.score: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .bars import Bar
from .rubric import load_rubric
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
from .stats import mcnemar_exact
from .verdict import verdict_reason

__all__ = ["Bar", "CriterionResult", "Environment", "ModelReport", "NewImageRow", "NotebookResult", "Share",
    "SubmissionResult", "Verdict", "decode_predicted", "load_rubric", "mcnemar_exact", "model_files", "score_notebook",
    "unknown_challenge", "verdict_reason"]
