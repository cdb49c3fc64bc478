"""The sandbox a student's notebook runs in: bubblewrap, a non-root uid, cgroup and rlimit limits.

The runner (:mod:`grader.student.runner`) and its kernel run inside one bubblewrap sandbox:

- namespaces: every one bubblewrap can unshare (network, pid, ipc, uts, cgroup; user when the
  grader is not root), so the kernel has only a loopback interface and sees only its own
  processes (``/proc`` is the sandbox's own; the grader's memory is out of reach);
- file system: a fresh root holding read-only binds of what Python needs (``/usr``, the Python
  installation, the virtual environment, the ``grader`` package, a few files of ``/etc``), the
  read-only public data view, the hidden test *images* behind a gate that stays closed while
  the notebook's cells run (:mod:`grader.sandbox.gate`), the writable working copy of the
  submission and the run folder, and private size-limited tmpfs mounts at ``/tmp`` and
  ``/dev/shm``, sticky and world-writable (01777) as on a laptop, so that temporary files and
  POSIX shared memory (PyTorch's ``DataLoader`` workers, ``multiprocessing``, joblib) work.
  ``HOME`` (``/tmp/home``, with ``XDG_CACHE_HOME`` and ``XDG_CONFIG_HOME`` in it) is made, mode
  0700, by the kernel's uid itself, since what bubblewrap makes as root is root's. The project
  folder (hidden split lists), the dataset folder and the grader's caches of labels and hashes are
  not bound, so they do not exist inside;
- identity: a non-root uid (``nobody`` by default). When the grader is root, bubblewrap runs as
  root and ``setpriv`` drops to the uid inside, so that ``RLIMIT_NPROC`` applies;
- limits: memory and process count by a cgroup made for the run (cgroup v1 or v2, when the
  grader may create one), else ``RLIMIT_AS``; the cgroup counts what ``/tmp`` and ``/dev/shm``
  hold, since tmpfs pages are charged to the memory cgroup of the process that writes them
  (``memory.rst``: shmem is page cache; measured here: a 512 MiB ``/dev/shm`` under a 96 MiB
  limit kills its writer), ``RLIMIT_AS`` does not; file size by ``RLIMIT_FSIZE``; process count also
  by ``RLIMIT_NPROC``; wall time by :mod:`grader.execute.run`, which kills the whole sandbox at the
  deadline. The pid namespace takes every process with the runner, which dies with the grading
  process (its lifeline, :func:`grader.student.runner.watch_lifeline`); not ``--die-with-parent``, whose
  ``PR_SET_PDEATHSIG`` fires when the *thread* that started bubblewrap exits.

Method: bubblewrap (https://github.com/containers/bubblewrap) as Flatpak uses it; cgroup files as
documented in the kernel's ``Documentation/admin-guide/cgroup-v1/memory.rst`` and ``cgroup-v2.rst``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grader.core import Limits, UsageError, environ_snapshot
from grader.sandbox.cgroups import Cgroup, kill_members, make_cgroups, remove_cgroups
from grader.sandbox.mounts import RUN_DIR_MB, mount_tmpfs, unmount

if TYPE_CHECKING:
    from grader.sandbox.gate import HiddenGate

__all__ = ["MODES", "Sandbox", "SandboxSession", "resolve_sandbox"]

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("auto", "bwrap", "none")
DEFAULT_UID = 65534  # nobody
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "fonts", "localtime",
              "mime.types", "nsswitch.conf", "ssl")
_HOME = "/tmp/home"
_HOME_FOLDERS = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")  # made by _home, as the uid
_NOT_SANDBOXED = "none: the kernel ran with the grader's own permissions, network and files"


@dataclass(frozen=True)
class Sandbox:
    """The sandbox chosen for a grading run.

    Attributes:
        kind: ``bwrap`` or ``none``.
        description: one line for the scorecard's environment table.
        warning: why ``auto`` fell back to ``none``; shown on every scorecard. ``None`` otherwise.
        bwrap: path of the bubblewrap executable (``kind == "bwrap"``).
        uid: the uid the kernel runs as inside the sandbox.
        requested: the mode asked for (``auto``, ``bwrap`` or ``none``), to resolve again on
            another machine (a Dask worker).
    """

    kind: Literal["bwrap", "none"]
    description: str
    warning: str | None = None
    bwrap: str | None = None
    uid: int = DEFAULT_UID
    requested: str = "none"

    @property
    def sandboxed(self) -> bool:
        return self.kind == "bwrap"

    @contextmanager
    def session(self, *, workdir: Path, run_dir: Path, limits: Limits, readonly: Sequence[Path],
                device: str = "cpu", limit_disk: bool = True,
                gate: HiddenGate | None = None) -> Iterator[SandboxSession]:
        """Prepare one run; clean up after it.

        Makes ``workdir`` (for the working copy of the submission) and ``run_dir`` (for the
        runner's files). In the sandbox, when the grader is root, each is a tmpfs, of
        ``limits.disk_mb`` and of ``RUN_DIR_MB``, so that a notebook cannot fill the grader's disk
        and a full working copy still leaves room for the runner's timeline. The run gets its
        cgroups with the memory and process limits; without the sandbox it still gets a cgroup
        where one can be made, only to find and kill every process it left. On exit every
        process left in the cgroups is killed, the cgroups removed and the tmpfs unmounted: its
        files are lost, so read them inside the ``with`` (``limit_disk=False`` keeps them on
        disk, for debugging). ``gate``: the held-out image folders, bound read-only under the
        closed gate (:func:`grader.sandbox.gate.make_gate` with ``mounted=self.sandboxed``).
        """
        mounted: list[Path] = []
        for folder, size_mb in ((workdir, limits.disk_mb), (run_dir, RUN_DIR_MB)):
            folder.mkdir()
            if self.sandboxed and limit_disk and mount_tmpfs(folder, size_mb):
                mounted.append(folder)
        groups = make_cgroups(limits if self.sandboxed else None)
        try:
            yield SandboxSession(self, limits, tuple(readonly), device, cgroups=groups, gate=gate)
        finally:
            remove_cgroups(groups)
            for folder in mounted:
                unmount(folder)





@dataclass
class SandboxSession:
    """One prepared run (see :meth:`Sandbox.session`); :meth:`hand_over` the writable folders,
    then :meth:`wrap` the runner's command."""

    sandbox: Sandbox
    limits: Limits
    readonly: tuple[Path, ...]
    device: str
    cgroups: tuple[Cgroup, ...] = ()
    writable: tuple[Path, ...] = ()
    workdir: Path = Path("/")
    gate: HiddenGate | None = None

    def hand_over(self, workdir: Path, *others: Path, start: Path | None = None) -> None:
        """Make ``workdir`` (the working copy) and ``others`` writable in the sandbox, owned by
        its uid; the kernel starts in ``start`` (a folder inside ``workdir``; default
        ``workdir`` itself)."""
        self.workdir, self.writable = start or workdir, (workdir, *others)
        if self.sandbox.sandboxed and os.geteuid() == 0:
            for folder in self.writable:
                _chown_tree(folder, self.sandbox.uid)

    @property
    def memory_limited_by(self) -> str:
        """``cgroup v1``, ``cgroup v2`` or ``RLIMIT_AS``: what holds the memory limit."""
        if self.sandbox.sandboxed and any(
                (c.path / name).exists() for c in self.cgroups
                for name in ("memory.limit_in_bytes", "memory.max")):
            return f"cgroup v{self.cgroups[0].version}"
        return "RLIMIT_AS"

    def kill_remaining(self) -> bool:
        """Kill every process the run left (those in its cgroups). False when the run has no
        cgroup: then the caller must find them another way."""
        kill_members(self.cgroups)
        return bool(self.cgroups)

    def kernel_env(self, env: dict[str, str]) -> dict[str, str]:
        """The environment of the runner and kernel: ``env`` itself, or a minimal one inside."""
        return _sandbox_env(env) if self.sandbox.sandboxed else env

    def wrap(self, argv: Sequence[str], env: dict[str, str]) -> list[str]:
        """The command that runs ``argv`` with environment ``env`` inside the sandbox.

        ``argv`` unchanged when the sandbox is ``none``.
        """
        if not self.sandbox.sandboxed:
            return [*self._enter_cgroups(), *argv]
        return [*self._enter_cgroups(), *self._bwrap(env), *self._drop(), *self._rlimits(),
                *_home(), *argv]

    def _enter_cgroups(self) -> list[str]:
        """A shell that moves itself into the run's cgroups, then execs bubblewrap."""
        if not self.cgroups:
            return []
        steps = [f'echo $$ > "{c.path}/cgroup.procs"' for c in self.cgroups]
        return ["/bin/sh", "-c", " && ".join([*steps, 'exec "$@"']), "grader-sandbox"]

    def _bwrap(self, env: dict[str, str]) -> list[str]:
        assert self.sandbox.bwrap is not None
        root = os.geteuid() == 0
        args = [self.sandbox.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net",
                "--unshare-uts", "--unshare-cgroup-try", "--new-session",
                "--hostname", "sandbox"]
        if not root:  # as root no user namespace: setpriv drops to a real uid instead
            # and no user namespace of its own inside: in one, the kernel's uid (the grader's,
            # mapped) would be root over the grader's files, the closed gate of the hidden images
            # included (grader.sandbox.gate)
            args += ["--unshare-user", "--disable-userns", "--uid", str(self.sandbox.uid), "--gid",
                     str(self.sandbox.uid)]
        args += _system_binds()
        # sticky and world-writable like a laptop's: bubblewrap makes them as root when the
        # grader is root, so the kernel's uid could not write a 0755 one; HOME is made by the
        # uid itself (see _home)
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "01777", "--size", str(self.limits.shm_mb * 2**20), "--tmpfs", "/dev/shm",
                 "--perms", "01777", "--size", str(self.limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
        if self.device == "cuda":  # the driver's device files and what CUDA reads of /sys
            for dev in sorted(Path("/dev").glob("nvidia*")):
                args += ["--dev-bind", str(dev), str(dev)]
            args += ["--ro-bind", "/sys", "/sys"]
        gate = [self.gate.root] if self.gate is not None else []
        binds = [*_python_paths(), *self.readonly, *gate, *self.writable]
        for parent in _parents(binds):  # bubblewrap would make them 0700, locking the uid out
            args += ["--perms", "0755", "--dir", str(parent)]
        for path in _python_paths():
            args += ["--ro-bind", str(path), str(path)]
        for path in self.readonly:
            args += ["--ro-bind", str(path), str(path)]
        if self.gate is not None:  # the gate (mode 000 until opened), then each folder under it
            args += ["--ro-bind", str(self.gate.root), str(self.gate.root)]
            for source, target in self.gate.folders:
                args += ["--ro-bind", str(source), str(target)]
        for path in self.writable:
            args += ["--bind", str(path), str(path)]
        args += ["--chdir", str(self.workdir), "--clearenv"]
        for key, value in _sandbox_env(env).items():
            args += ["--setenv", key, value]
        if root:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        return [*args, "--"]

    def _drop(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        uid = str(self.sandbox.uid)
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]

    def _rlimits(self) -> list[str]:
        limits = [f"--nproc={self.limits.processes}",
                  f"--fsize={self.limits.file_mb * 2**20}", "--core=0"]
        if self.memory_limited_by == "RLIMIT_AS":
            limits.append(f"--as={self.limits.memory_mb * 2**20}")
        return ["prlimit", *limits, "--"]


def _home() -> list[str]:
    """A shell, run as the kernel's uid, that makes ``HOME`` and its cache and config folders (mode 0700,
    owned by the uid, on the ``/tmp`` tmpfs), then execs the command."""
    folders = " ".join(f'"{v}"' for k, v in _sandbox_env({}).items() if k in _HOME_FOLDERS)
    return ["/bin/sh", "-c", f'umask 077 && mkdir -p {folders} && umask 022 && exec "$@"',
            "grader-home"]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]  # bubblewrap would make it 0700: unreadable
    for name in _ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _parents(paths: Sequence[Path]) -> list[Path]:
    """Ancestors of ``paths`` to create in the sandbox, parents first; not ``/``, ``/tmp``, ``/usr``."""
    skip = {Path("/"), Path("/tmp"), Path("/usr")}
    found: list[Path] = []
    for path in paths:
        for parent in reversed(path.parents):
            if parent not in skip and parent not in found and parent not in paths:
                found.append(parent)
    return found


def _python_paths() -> list[Path]:
    """The Python installation, the virtual environment and the ``grader`` package."""
    package = Path(__file__).resolve().parent.parent  # grader/, from grader/sandbox/session.py
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), package}
    paths = {p for p in paths if not str(p).startswith("/usr/")}
    return sorted(paths)


def _sandbox_env(env: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in env.items()
            if k in ("PYTHONUNBUFFERED", "LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "CUDA_VISIBLE_DEVICES",
                     "TF_CPP_MIN_LOG_LEVEL")}
    return {"PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": _HOME, "TMPDIR": "/tmp", "USER": "student", "LANG": "C.UTF-8",
            "XDG_CACHE_HOME": f"{_HOME}/.cache", "XDG_CONFIG_HOME": f"{_HOME}/.config",
            "MPLCONFIGDIR": f"{_HOME}/.config/matplotlib",
            # the sandbox has no network: pip and conda are told so (pip's --no-index as its
            # documented PIP_<OPTION> variable), so an install cell finds what is installed or
            # fails at once instead of retrying the network (8.5 s a `pip install` here)
            "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "CONDA_OFFLINE": "true", **keep}


def _chown_tree(folder: Path, uid: int) -> None:
    os.chown(folder, uid, uid)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)




def _bwrap_works(bwrap: str, uid: int) -> str | None:
    """None when a minimal sandbox runs; else why not (one line)."""
    session = SandboxSession(Sandbox("bwrap", "", bwrap=bwrap, uid=uid), Limits(), (), "cpu")
    argv = session.wrap([sys.executable, "-c", "import os; print(os.getuid())"], {})
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, env=environ_snapshot())
    except (OSError, subprocess.SubprocessError) as err:
        return f"{bwrap} could not start: {err}"
    if done.returncode != 0 or done.stdout.strip() != str(uid):
        detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"bubblewrap cannot make a sandbox here: {detail[:300]}"
    return None


@functools.cache
def resolve_sandbox(mode: str) -> Sandbox:
    """Choose the sandbox for ``mode`` (``auto``, ``bwrap`` or ``none``).

    ``auto`` is bubblewrap when it is installed and a test sandbox runs, else ``none`` with a
    warning that every scorecard shows.

    Raises:
        UsageError: ``mode`` is unknown, or ``bwrap`` was asked for and cannot run.
        ConfigError: ``GRADER_SANDBOX_UID`` is not a uid (:func:`grader.core.settings.sandbox_uid`).
    """
    if mode not in MODES:
        raise UsageError(f"unknown sandbox {mode!r}", fix=f"use one of {', '.join(MODES)}")
    if mode == "none":
        return Sandbox("none", _NOT_SANDBOXED + " (--sandbox none)", requested=mode)
    from grader.core import sandbox_uid

    uid = sandbox_uid()  # ConfigError for GRADER_SANDBOX_UID=abc (exit 2, with the fix)
    bwrap = shutil.which("bwrap")
    if os.geteuid() == 0 and not (shutil.which("setpriv") and shutil.which("prlimit")):
        problem: str | None = "setpriv and prlimit (util-linux) are needed to drop root"
    elif bwrap is None:
        problem = "bubblewrap (bwrap) is not installed"
    else:
        problem = _bwrap_works(bwrap, uid)
    if problem is None:
        assert bwrap is not None
        return Sandbox("bwrap", f"bubblewrap: no network, own pid namespace, uid {uid}, "
                       "read-only system and data", bwrap=bwrap, uid=uid, requested=mode)
    fix = "install it (apt-get install bubblewrap) and allow user namespaces"
    if mode == "bwrap":
        raise UsageError(f"--sandbox bwrap: {problem}", fix=fix)
    warning = f"not sandboxed: {problem}; {fix}, or pass --sandbox none to silence this"
    log.warning("%s", warning)
    return Sandbox("none", _NOT_SANDBOXED, warning=warning, requested=mode)
