# The face of grader.core: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .authoring import (
    check_class_folders,
    check_split_files,
    check_starter,
    missing_class_error,
    missing_label_error,
    recorded_command,
)
from .challenge import (
    Challenge,
    DatasetSpec,
    Limits,
    MnistSpec,
    PreparedView,
    challenge_ids,
    hard_limit_s,
    load_challenge,
    minutes,
)
from .environment import challenge_packages, declared_packages, environment_lines, installed_version
from .errors import (
    ChallengeError,
    ConfigError,
    DataError,
    ExitStatus,
    GraderError,
    HarnessError,
    RubricError,
    UsageError,
    exit_code_of,
)
from .files import safe_name, write_atomic
from .project import (
    PROJECT_FILE,
    SHIPPED_PROJECT_DIR,
    challenge_folder,
    find_project,
    project_file_text,
    project_roots,
    read_project_file,
    reference_folder,
    rubric_file,
    shadowed_challenges,
)
from .settings import (
    DATA_DIR_ENV,
    PROJECT_DIR_ENV,
    SERVER_CPUS_ENV,
    STATE_DIR_ENV,
    Settings,
    default_state_dir,
    environ_snapshot,
    limit_own_blas_threads,
    record_server_cpus,
    resolve_settings,
    sandbox_uid,
    server_cpus,
    user_environ,
    visible_gpus,
    worker_data_dir,
)

__all__ = ["Challenge", "ChallengeError", "ConfigError", "DATA_DIR_ENV", "DataError", "DatasetSpec", "ExitStatus",
    "GraderError", "HarnessError", "Limits", "MnistSpec", "PreparedView", "RubricError", "STATE_DIR_ENV",
    "Settings", "UsageError", "challenge_ids", "challenge_packages", "declared_packages", "environment_lines",
    "installed_version", "default_state_dir", "environ_snapshot", "exit_code_of", "limit_own_blas_threads",
    "hard_limit_s", "load_challenge", "minutes", "resolve_settings", "safe_name", "sandbox_uid", "user_environ",
    "visible_gpus", "worker_data_dir", "write_atomic", "SERVER_CPUS_ENV", "record_server_cpus", "server_cpus",
    "PROJECT_DIR_ENV", "PROJECT_FILE", "SHIPPED_PROJECT_DIR", "challenge_folder", "check_class_folders",
    "check_split_files", "check_starter", "find_project", "missing_class_error", "project_file_text", "project_roots",
    "read_project_file", "reference_folder", "rubric_file", "shadowed_challenges", "missing_label_error",
    "recorded_command"]
