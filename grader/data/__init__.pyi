# The face of grader.data: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .export import export_public_data, public_data_zip
from .hidden import dataset_hashes, ensure_added_test_set, ensure_hidden_test_set
from .imagefiles import IMAGE_SUFFIXES, list_images
from .images import decode, register_heif, thumbnail_uri
from .ingestion import check_sets, export_ingestion, ingestion_sets, is_ingestion_folder, set_ids
from .labelscsv import LabelRow, csv_labels, match_rows, read_labels_csv
from .mnist import MNIST_CLASSES, ensure_mnist_test_set
from .neardup import Pair, group_entries
from .pairsheet import calibration_pairs, write_sheets
from .phash import DRAFT_FROM, DRAFT_SIDE, REDUCED_MARGIN, decode_for_hash, pair_limit, phashes, thumbnail
from .practice import (
    PRACTICE_FRACTION,
    PRACTICE_MAX_IMAGES,
    load_practice_split,
    practice_hidden_test_set,
    practice_listing,
    practice_public_view,
    practice_split_problems,
)
from .splitmake import HIDDEN_FRACTION, HIDDEN_SEED, CrossSplit, grouped_split, make_split, validate_split
from .splits import (
    Listing,
    data_missing,
    list_dataset,
    load_public_split,
    load_split,
    public_split_problems,
    public_split_text,
)
from .store import HiddenTestSet
from .views import ensure_public_view

__all__ = ["CrossSplit", "HIDDEN_FRACTION", "HIDDEN_SEED", "HiddenTestSet", "IMAGE_SUFFIXES", "LabelRow", "Listing",
    "MNIST_CLASSES", "PRACTICE_FRACTION", "PRACTICE_MAX_IMAGES", "Pair", "calibration_pairs", "check_sets",
    "csv_labels", "dataset_hashes", "decode", "ensure_added_test_set", "ensure_hidden_test_set",
    "ensure_mnist_test_set", "ensure_public_view", "export_ingestion", "export_public_data", "group_entries",
    "grouped_split", "ingestion_sets", "is_ingestion_folder", "list_dataset", "list_images", "load_practice_split",
    "load_public_split", "load_split", "make_split", "match_rows", "practice_hidden_test_set", "practice_listing",
    "practice_public_view", "practice_split_problems", "public_data_zip", "public_split_problems",
    "public_split_text", "read_labels_csv", "register_heif", "set_ids", "thumbnail_uri", "validate_split",
    "write_sheets", "DRAFT_FROM", "DRAFT_SIDE", "REDUCED_MARGIN", "decode_for_hash", "pair_limit", "phashes",
    "thumbnail", "data_missing"]
