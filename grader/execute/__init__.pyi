# The face of grader.execute: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .prepare import (
    NEW_IMAGES,
    Opened,
    Unknown,
    failed_run,
    new_images,
    open_notebook,
    prepare_working_copy,
    probe_config,
)
from .request import RunRequest
from .run import run_notebook, stop_all_runs

__all__ = ["NEW_IMAGES", "Opened", "RunRequest", "Unknown", "failed_run", "new_images", "open_notebook",
    "prepare_working_copy", "probe_config", "run_notebook", "stop_all_runs"]
