# The face of grader.evidence: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .claims import as_terminal_shows, cell_outputs, notebook_claim, printed_cells
from .frameworks import Framework, framework_of
from .modelfile import explain, human_size, identify, is_saved_model_dir
from .records import (
    Evidence,
    ExecutionFacts,
    ModelFile,
    ModelRun,
    NewImage,
    ProbeOutput,
    RunnerFacts,
    RunResult,
    cell_number,
)
from .runfacts import (
    MAX_FACTS_BYTES,
    MAX_NOTEBOOK_BYTES,
    SNAPSHOT_FILES,
    cancelled_facts,
    copy_bounded,
    first_line,
    hidden_output,
    injected_cell,
    probe_output,
    read_bounded,
    run_facts,
    with_hint,
    without_folders,
)

__all__ = ["Evidence", "ExecutionFacts", "Framework", "MAX_FACTS_BYTES", "MAX_NOTEBOOK_BYTES", "ModelFile",
    "ModelRun", "NewImage", "ProbeOutput", "RunResult", "RunnerFacts", "SNAPSHOT_FILES", "as_terminal_shows",
    "cancelled_facts", "cell_number", "cell_outputs", "copy_bounded", "explain", "first_line", "framework_of",
    "hidden_output", "human_size", "identify", "injected_cell", "is_saved_model_dir", "notebook_claim",
    "printed_cells", "probe_output", "read_bounded", "run_facts", "with_hint", "without_folders"]
