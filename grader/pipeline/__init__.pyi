# The face of grader.pipeline: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .batch import grade_cohort
from .cache import ResultCache, cached_result, warm_keys
from .grade import GradeOptions
from .job import CohortOptions, Events, Graded, Interrupted, Job, Outcome, grade_here, grade_job
from .prefetch import import_scoring
from .resources import gpu_challenges, kernel_env
from .results import archive_result, render_results
from .verify import SOLUTION_MARKER, Verification, made_from_problem, reference_digest

__all__ = ["CohortOptions", "Events", "GradeOptions", "Graded", "Interrupted", "Job", "Outcome", "ResultCache",
    "Verification", "archive_result", "cached_result", "gpu_challenges", "grade_cohort", "grade_here", "grade_job",
    "import_scoring", "kernel_env", "made_from_problem", "reference_digest", "render_results", "SOLUTION_MARKER",
    "warm_keys"]
