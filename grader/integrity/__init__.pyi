# The face of grader.integrity: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .fingerprints import seed_tokenized, tokenized
from .pairs import (
    AnswerMatch,
    IntegrityEntry,
    QuestionMatch,
    SimilarPair,
    WrittenAnswer,
    boilerplate_answers,
    boilerplate_code,
    cohort_pairs,
    load_dependencies,
    notebook_code,
    notebook_entry,
    similar_pairs,
    with_thumbnails,
)

__all__ = ["AnswerMatch", "IntegrityEntry", "QuestionMatch", "SimilarPair", "WrittenAnswer", "boilerplate_answers",
    "boilerplate_code", "cohort_pairs", "load_dependencies", "notebook_code",
    "notebook_entry", "seed_tokenized", "similar_pairs", "tokenized", "with_thumbnails"]
