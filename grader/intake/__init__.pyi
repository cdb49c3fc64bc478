# The face of grader.intake: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .answers import (
    ANSWER_TAG,
    ANSWER_WORD,
    MAX_ANSWER_CHARS,
    PLACEHOLDER,
    Answer,
    answer_sha256,
    answer_words,
    find_answer,
    is_placeholder,
    question_heading,
    read_answers,
)
from .notebook import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    MalformedNotebook,
    challenge_of,
    inject_parameters,
    notebook_notes,
    parse_notebook,
    read_notebook,
    student_code_cells,
)
from .submissions import Submission, discover, intake, intake_upload, zip_problem
from .unzip import size_text
from .workcopy import copy_submission, size_problem

__all__ = ["ANSWER_TAG", "ANSWER_WORD", "Answer", "INJECTED_TAG", "MAX_ANSWER_CHARS", "PLACEHOLDER", "answer_sha256",
    "answer_words",
    "find_answer", "is_placeholder", "question_heading", "read_answers",
    "MalformedNotebook", "PARAMETERS_TAG", "Submission", "challenge_of", "copy_submission",
    "discover", "inject_parameters", "intake", "intake_upload", "notebook_notes", "parse_notebook", "read_notebook",
    "size_problem",
    "size_text", "student_code_cells", "zip_problem"]
