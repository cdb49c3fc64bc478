# The face of grader.data: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .export import export_public_data, public_data_zip
from .hidden import dataset_hashes, ensure_added_test_set, ensure_hidden_test_set
from .images import decode, thumbnail_uri
from .ingestion import check_sets, export_ingestion, ingestion_sets, is_ingestion_folder, set_ids
from .mnist import MNIST_CLASSES, ensure_mnist_test_set
from .pairsheet import calibration_pairs, write_sheets
from .practice import (
    load_practice_split,
    practice_hidden_test_set,
    practice_listing,
    practice_public_view,
    practice_split_problems,
)
from .splitmake import CrossSplit, make_split, validate_split
from .splits import Listing, list_dataset, list_images, load_public_split, load_split, public_split_problems
from .store import HiddenTestSet
from .views import ensure_public_view

__all__ = ["CrossSplit", "HiddenTestSet", "Listing", "MNIST_CLASSES", "calibration_pairs", "check_sets",
    "dataset_hashes", "decode", "ensure_added_test_set", "ensure_hidden_test_set", "ensure_mnist_test_set",
    "ensure_public_view", "export_ingestion", "export_public_data", "ingestion_sets", "is_ingestion_folder",
    "list_dataset", "list_images", "load_practice_split", "load_public_split", "load_split", "make_split",
    "practice_hidden_test_set", "practice_listing", "practice_public_view", "practice_split_problems",
    "public_data_zip", "public_split_problems", "set_ids", "thumbnail_uri", "validate_split", "write_sheets"]
