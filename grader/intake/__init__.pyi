# The face of grader.intake: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .notebook import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    MalformedNotebook,
    challenge_of,
    inject_parameters,
    notebook_notes,
    read_notebook,
    student_code_cells,
)
from .submissions import Submission, discover, intake, intake_upload, zip_problem
from .unzip import size_text
from .workcopy import copy_submission, size_problem

__all__ = ["INJECTED_TAG", "MalformedNotebook", "PARAMETERS_TAG", "Submission", "challenge_of", "copy_submission",
    "discover", "inject_parameters", "intake", "intake_upload", "notebook_notes", "read_notebook", "size_problem",
    "size_text", "student_code_cells", "zip_problem"]
