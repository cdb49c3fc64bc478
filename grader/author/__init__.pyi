# The face of grader.author: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .baselines import FRAMEWORKS
from .create import Created, Request, inspect_source, make_starter, new_challenge
from .findings import Findings, needed_per_class
from .rubric import CRITERIA, DEFAULT_CRITERIA, parse_criteria
from .scan import ImageFacts, scan_images
from .source import Source, read_source
from .splits import Splits
from .starter import split_solution

__all__ = ["CRITERIA", "Created", "DEFAULT_CRITERIA", "FRAMEWORKS", "Findings", "ImageFacts", "Request", "Source",
    "Splits", "inspect_source", "make_starter", "needed_per_class", "new_challenge", "parse_criteria", "read_source",
    "scan_images", "split_solution"]
