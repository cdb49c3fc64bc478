"""Settings, resolved once (command line > environment > marker file > defaults) into one frozen object.

The object is passed explicitly to whatever needs it; no setting is read from the environment
later. Also here: the process environment as the grader hands it on (kernels get the user's own,
:func:`user_environ`; every process an explicit copy, :func:`environ_snapshot`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.core.errors import ConfigError
from grader.core.project import PROJECT_FILE, SHIPPED_PROJECT_DIR, find_project, project_roots

__all__ = ["DATA_DIR_ENV", "PROJECT_DIR_ENV",
           "SANDBOX_UID_ENV", "STATE_DIR_ENV", "WORKER_DATA_DIR_ENV", "Settings", "default_state_dir",
           "environ_snapshot", "limit_own_blas_threads", "resolve_settings", "sandbox_uid", "user_environ",
           "visible_gpus", "worker_data_dir"]

DATA_DIR_ENV = "GRADER_DATA_DIR"
CACHE_DIR_ENV = "GRADER_CACHE_DIR"
PROJECT_DIR_ENV = "GRADER_PROJECT_DIR"
SANDBOX_UID_ENV = "GRADER_SANDBOX_UID"
STATE_DIR_ENV = "GRADER_STATE_DIR"  # the event server's state folder (grader serve, grader event)
WORKER_DATA_DIR_ENV = "GRADER_WORKER_DATA_DIR"  # a Dask worker's own data folder
SERVER_CPUS_ENV = "GRADER_SERVER_CPUS"  # the CPUs grader serve was given ("0,1"), for its children
DEFAULT_SANDBOX_UID = 65534  # nobody
MAX_UID = 2**32 - 2  # Linux uids are 32-bit; 2**32 - 1 is (uid_t) -1, "no uid"


@dataclass(frozen=True)
class Settings:
    """Where the grader finds its inputs and keeps its caches.

    Attributes:
        project_dir: folder holding ``challenges/``, ``rubrics/`` and ``reference_solutions/``:
            a coach's project (``grader init``) or the shipped one; :attr:`project_dirs` are the
            folders looked up.
        data_dir: folder of real datasets (``gear/``, ``cifar10/``, ...); ``None`` if unset.
        cache_dir: folder for public dataset views and hashes built by the grader.
        python: interpreter that runs the notebook runner and its kernel.
        project_from: how ``project_dir`` was found: ``option`` (``--project``), ``environment``
            (``GRADER_PROJECT_DIR``), ``marker`` (``grader-project.toml`` in the current folder
            or a parent) or ``shipped`` (none of those).
    """

    project_dir: Path
    data_dir: Path | None
    cache_dir: Path
    python: str
    project_from: Literal["option", "environment", "marker", "shipped"] = "shipped"

    @property
    def project_dirs(self) -> tuple[Path, ...]:
        """The folders challenges, rubrics and references are looked up in, first match wins:
        :func:`grader.core.project.project_roots` of ``project_dir``.

        Raises:
            ConfigError: the project's ``grader-project.toml`` is invalid.
        """
        return project_roots(self.project_dir)

    def require_data_dir(self) -> Path:
        """Return ``data_dir``.

        Raises:
            ConfigError: when no data folder was given, or it does not exist.
        """
        if self.data_dir is None:
            raise ConfigError(
                f"no dataset folder: {DATA_DIR_ENV} is not set",
                fix=f"export {DATA_DIR_ENV}=/path/to/datasets (the folder holding gear/, cifar10/) "
                "or pass --data-dir",
            )
        if not self.data_dir.is_dir():
            raise ConfigError(
                "the dataset folder does not exist",
                path=self.data_dir,
                fix=f"point {DATA_DIR_ENV} or --data-dir at the folder holding gear/, cifar10/",
            )
        return self.data_dir


def resolve_settings(
    *,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    project_dir: str | None = None,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings from explicit values, then the environment, then defaults.

    The project folder: ``project_dir`` (``--project``), else ``$GRADER_PROJECT_DIR``, else the
    nearest folder from ``cwd`` (default: the current folder) upwards holding a
    ``grader-project.toml``, else the shipped project.

    Raises:
        ConfigError: the project folder given by the option or the variable does not exist.
    """
    import sys

    env = dict(os.environ) if environ is None else environ
    found: Literal["option", "environment", "marker", "shipped"]
    project: Path | None
    if project_dir:
        project, found = Path(project_dir), "option"
    elif env.get(PROJECT_DIR_ENV):
        project, found = Path(env[PROJECT_DIR_ENV]), "environment"
    else:
        project, found = find_project(Path.cwd() if cwd is None else cwd), "marker"
        if project is None:
            project, found = SHIPPED_PROJECT_DIR, "shipped"
    if not project.is_dir():
        named = "--project" if found == "option" else PROJECT_DIR_ENV
        raise ConfigError(f"the project folder does not exist ({named})", path=project,
                          fix=f"make one with grader init {project}, or point {named} at a folder holding "
                          f"challenges/ (a coach's project holds {PROJECT_FILE})")
    data = data_dir or env.get(DATA_DIR_ENV) or None
    cache = cache_dir or env.get(CACHE_DIR_ENV) or str(Path.home() / ".cache" / "grader")
    return Settings(
        project_dir=project.resolve(),
        data_dir=Path(data).resolve() if data else None,
        cache_dir=Path(cache).resolve(),
        python=sys.executable,
        project_from=found,
    )


def sandbox_uid(environ: dict[str, str] | None = None) -> int:
    """The uid the sandboxed kernel runs as: ``$GRADER_SANDBOX_UID``, default 65534 (nobody).

    Args:
        environ: the environment to read (default: this process's).

    Raises:
        ConfigError: the variable is set but is not a whole number from 1 to 4294967294 (uid 0
            is root, which the sandbox must not run as; 4294967295 is ``(uid_t) -1``).
    """
    env = os.environ if environ is None else environ
    raw = env.get(SANDBOX_UID_ENV, "").strip()
    if not raw:
        return DEFAULT_SANDBOX_UID
    try:
        uid = int(raw, 10)
    except ValueError:
        uid = -1
    if not 1 <= uid <= MAX_UID:
        raise ConfigError(
            f"{SANDBOX_UID_ENV}={raw!r} is not a user id (a whole number from 1 to {MAX_UID})",
            fix=f"unset {SANDBOX_UID_ENV} (the kernel then runs as nobody, {DEFAULT_SANDBOX_UID}) "
            f"or set it to an unprivileged uid, e.g. export {SANDBOX_UID_ENV}={DEFAULT_SANDBOX_UID}",
        )
    return uid


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """The event server's state folder when ``--state`` is not given: ``$GRADER_STATE_DIR``, else
    ``$XDG_DATA_HOME/grader`` (an absolute ``XDG_DATA_HOME`` only), else
    ``~/.local/share/grader`` (the XDG Base Directory Specification's default data folder);
    absolute, not created.

    Args:
        environ: the environment to read (default: this process's).
    """
    env = os.environ if environ is None else environ
    chosen = env.get(STATE_DIR_ENV) or None
    if chosen is None:
        xdg = env.get("XDG_DATA_HOME") or ""
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
        return (base / "grader").resolve()
    return Path(chosen).expanduser().resolve()


def worker_data_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The data folder a Dask worker was started with (``$GRADER_WORKER_DATA_DIR``, absolute),
    used instead of the client's; None when unset (:mod:`grader.data.ingestion`)."""
    env = os.environ if environ is None else environ
    data = env.get(WORKER_DATA_DIR_ENV)
    return Path(data).resolve() if data else None


def visible_gpus(environ: dict[str, str] | None = None) -> str | None:
    """This process's ``CUDA_VISIBLE_DEVICES`` as set (comma-separated GPU ids), or None when
    unset: a Dask worker started on some GPUs hands the same ones to its kernels."""
    env = os.environ if environ is None else environ
    return env.get("CUDA_VISIBLE_DEVICES")


def record_server_cpus(cpus: Sequence[int]) -> None:
    """Set :data:`SERVER_CPUS_ENV` to ``cpus`` (comma-separated) for the processes ``grader serve``
    starts after pinning its own threads (:mod:`grader.server.cpus`). Call it before other threads
    run (the environment is not rewritten while a process starts: :func:`environ_snapshot`)."""
    os.environ[SERVER_CPUS_ENV] = ",".join(str(c) for c in cpus)


def server_cpus(environ: dict[str, str] | None = None) -> str:
    """:data:`SERVER_CPUS_ENV` as set, or "" (a process not started by a pinned server)."""
    env = os.environ if environ is None else environ
    return env.get(SERVER_CPUS_ENV, "")


# What the grader's own process sets for itself, and the values the user had (None: unset).
_OWN_ENV = {"OPENBLAS_NUM_THREADS": "1"}
_USER_VALUES: dict[str, str | None] = {}


def limit_own_blas_threads() -> None:
    """Give the grader's own process one OpenBLAS thread; call before NumPy or SciPy load.

    OpenBLAS starts a thread per core when NumPy's or SciPy's copy loads, and starting them
    costs CPU (SciPy's: 0.31 s against 0.15 s with one thread, ``import scipy.linalg`` here):
    on a small machine that competes with the kernel the grader has just started. The grader's
    own arrays (labels, a confusion matrix) are small. Kernels still get the user's value:
    :func:`user_environ` is the environment they are given. Called by :func:`grader.cli.main.entry`
    only, so a program that imports the grader keeps its own settings.
    """
    for name, value in _OWN_ENV.items():
        if name not in _USER_VALUES:
            _USER_VALUES[name] = os.environ.get(name)
        os.environ[name] = value


def user_environ() -> dict[str, str]:
    """This process's environment as the user set it: what :func:`limit_own_blas_threads`
    changed is given back its value, or dropped where the user had none."""
    env = dict(os.environ)
    for name, value in _USER_VALUES.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def environ_snapshot() -> dict[str, str]:
    """A copy of this process's environment, given as ``env=`` to every process the grader
    starts, so that the child never reads C's ``environ`` itself.

    Without ``env=``, the child execs with ``environ`` as it is during ``vfork``, while another
    thread may be rewriting it: scikit-learn, joblib, threadpoolctl and matplotlib set variables
    when imported, and the grader imports them in a background thread during runs. ``execv``
    then fails with EFAULT ("Bad address"): a cohort at ``--jobs 2`` stopped with a harness fault
    starting ``/bin/sh``, and 342 of 400 starts of ``/bin/sh -c true`` failed beside a thread
    setting variables; none failed with ``env=`` given (the environment array is then built
    before the fork, under the GIL).
    """
    return dict(os.environ)
