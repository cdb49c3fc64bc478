"""The sandbox a student's notebook runs in: bubblewrap, a non-root uid, cgroup and rlimit limits.

The runner (:mod:`grader.runner`) and its kernel run inside one bubblewrap sandbox:

- namespaces: every one bubblewrap can unshare (network, pid, ipc, uts, cgroup; user when the
  grader is not root), so the kernel has only a loopback interface and sees only its own
  processes (``/proc`` is the sandbox's own; the grader's memory is out of reach);
- file system: a fresh root holding read-only binds of what Python needs (``/usr``, the Python
  installation, the virtual environment, the ``grader`` package, a few files of ``/etc``), the
  read-only public data view and hidden test *images*, the writable working copy of the
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
  by ``RLIMIT_NPROC``; wall time by :mod:`grader.executor`, which kills the whole sandbox at the
  deadline. The pid namespace takes every process with the runner, which dies with the grading
  process (its lifeline, :func:`grader.runner.watch_lifeline`); not ``--die-with-parent``, whose
  ``PR_SET_PDEATHSIG`` fires when the *thread* that started bubblewrap exits.

Method: bubblewrap (https://github.com/containers/bubblewrap) as Flatpak uses it; cgroup files as
documented in the kernel's ``Documentation/admin-guide/cgroup-v1/memory.rst`` and ``cgroup-v2.rst``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.errors import UsageError
from grader.settings import environ_snapshot

__all__ = ["MODES", "Limits", "Sandbox", "SandboxSession", "clean_stale_mounts", "resolve_sandbox"]

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("auto", "bwrap", "none")
SANDBOX_UID_ENV = "GRADER_SANDBOX_UID"
DEFAULT_UID = 65534  # nobody
CGROUP_ROOT = Path("/sys/fs/cgroup")
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "fonts", "localtime",
              "mime.types", "nsswitch.conf", "ssl")
_HOME = "/tmp/home"
_HOME_FOLDERS = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")  # made by _home, as the uid
RUN_DIR_MB = 1024  # the runner's files: executed notebook (outputs capped per cell), timeline
_OWNER_SUFFIX = ".grader-owner"  # beside a mounted folder: "<pid> <start time>"
_NOT_SANDBOXED = "none: the kernel ran with the grader's own permissions, network and files"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Attributes:
        memory_mb: memory of the whole sandbox (every process, and its tmpfs), in MiB.
        processes: processes and threads the sandbox may hold at once.
        file_mb: largest file any process may write, in MiB.
        tmp_mb: size of the private ``/tmp`` tmpfs (``HOME`` is there), in MiB.
        shm_mb: size of the private ``/dev/shm`` tmpfs (POSIX shared memory: PyTorch's
            ``DataLoader`` workers, ``multiprocessing`` locks and queues), in MiB.
        disk_mb: size of the run's folder (working copy and run files), in MiB; held by a tmpfs
            the grader mounts there when it is root, else not limited.
    """

    memory_mb: int = 8192
    processes: int = 1024
    file_mb: int = 2048
    tmp_mb: int = 1024
    disk_mb: int = 4096
    shm_mb: int = 1024


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
                device: str = "cpu", limit_disk: bool = True) -> Iterator[SandboxSession]:
        """Prepare one run; clean up after it.

        Makes ``workdir`` (for the working copy of the submission) and ``run_dir`` (for the
        runner's files). In the sandbox, when the grader is root, each is a tmpfs, of
        ``limits.disk_mb`` and of ``RUN_DIR_MB``, so that a notebook cannot fill the grader's disk
        and a full working copy still leaves room for the runner's timeline. The run gets its
        cgroups with the memory and process limits; without the sandbox it still gets a cgroup
        where one can be made, only to find and kill every process it left. On exit every
        process left in the cgroups is killed, the cgroups removed and the tmpfs unmounted: its
        files are lost, so read them inside the ``with`` (``limit_disk=False`` keeps them on
        disk, for debugging).
        """
        mounted: list[Path] = []
        for folder, size_mb in ((workdir, limits.disk_mb), (run_dir, RUN_DIR_MB)):
            folder.mkdir()
            if self.sandboxed and limit_disk and _mount_tmpfs(folder, size_mb):
                mounted.append(folder)
        groups = _make_cgroups(limits if self.sandboxed else None)
        try:
            yield SandboxSession(self, limits, tuple(readonly), device, cgroups=groups)
        finally:
            _remove_cgroups(groups)
            for folder in mounted:
                _unmount(folder)


def _mount_tmpfs(folder: Path, size_mb: int) -> bool:
    """Mount a tmpfs of ``size_mb`` MiB on ``folder`` (root only); True when mounted.

    Its owner (this process: pid and start time) is written first, beside it
    (:func:`_owner_file`): should this process be killed before it unmounts it,
    :func:`clean_stale_mounts` can prove that its owner is gone.
    """
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    owner, started = _owner_file(folder), _start_time(os.getpid())
    if started is not None:
        tmp = owner.with_name(owner.name + ".tmp")
        try:
            tmp.write_text(f"{os.getpid()} {started}\n")
            os.replace(tmp, owner)  # whole or absent: never a half-written owner
        except OSError as err:
            log.info("no owner file for the tmpfs on %s (%s): it cannot be cleaned if this process is killed",
                     folder, err)
            with suppress(OSError):
                tmp.unlink()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs",
                           str(folder)], capture_output=True, text=True, check=False,
                          env=environ_snapshot())
    if done.returncode != 0:
        log.info("no tmpfs for %s (%s); its size is not limited", folder, done.stderr.strip())
        owner.unlink(missing_ok=True)
    return done.returncode == 0


def _unmount(folder: Path) -> bool:
    """Unmount (lazily: processes still in it keep it until they exit) the tmpfs on ``folder``
    and remove its owner file; True when unmounted. The owner file stays when ``umount`` fails."""
    try:
        done = subprocess.run(["umount", "--lazy", str(folder)], check=False, capture_output=True,
                              text=True, errors="replace", env=environ_snapshot())
    except OSError as err:
        log.warning("could not unmount %s: %s", folder, err)
        return False
    if done.returncode != 0:
        log.warning("could not unmount %s: %s", folder, done.stderr.strip())
        return False
    _owner_file(folder).unlink(missing_ok=True)
    return True


def _owner_file(folder: Path) -> Path:
    """Where the owner of the tmpfs on ``folder`` is written: beside it, outside the mount
    (``/tmp/grader-team-x/.submission.grader-owner`` for ``/tmp/grader-team-x/submission``)."""
    return folder.parent / f".{folder.name}{_OWNER_SUFFIX}"


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (field 22 of ``/proc/<pid>/stat``, ``starttime``: clock ticks
    after boot, ``proc(5)``): with the pid it names one process, even once the pid is reused.
    None when there is no such process or it is a zombie (dead, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # field 2, the name in parentheses, may hold spaces, parentheses and bytes that are not UTF-8
    fields = stat.rsplit(b")", 1)[-1].decode("ascii", errors="replace").split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # fields[0] is field 3, the state
        return None
    return fields[19]


def _mount_points(mountinfo: bytes) -> list[tuple[Path, str]]:
    """``(mount point, file system type)`` of each line of ``/proc/self/mountinfo`` (``proc(5)``:
    the mount point is field 5, octal escapes for space, tab, newline and backslash; the type
    follows the ``-`` that ends the optional fields)."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        try:
            kind = fields[fields.index(b"-", 6) + 1]
        except (ValueError, IndexError):
            continue
        point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), fields[4])
        found.append((Path(os.fsdecode(point)), os.fsdecode(kind)))
    return found


def clean_stale_mounts(*, tmp_dir: Path | None = None) -> list[Path]:
    """Unmount the disk-limit tmpfs mounts left by grading processes that are gone.

    :meth:`Sandbox.session` unmounts its tmpfs mounts in a ``finally``, which a grading process
    killed with SIGKILL never runs: its runner and kernel die with it (their lifeline), its
    mounts stay. A mount is cleaned when it is a tmpfs on a folder of a ``grader-*`` folder
    directly in ``tmp_dir`` and its owner file names a process that is gone (no such pid, or one
    started at another time: the pid was reused). A mount whose owner lives (other graders on
    this machine) or without a readable owner file (not provably ours) is left, logged at debug
    level. After the unmount, the owner file and the folders left empty are removed. One read of
    ``/proc/self/mountinfo``; does nothing unless this process is root, as only root mounts.

    Args:
        tmp_dir: the folder the grader's run folders are made in (default
            :func:`tempfile.gettempdir`, as :func:`grader.grade` makes them).

    Returns:
        The mount points unmounted, in the order of ``/proc/self/mountinfo`` (reversed: the last
        mounted first). Never raises: what cannot be read or unmounted is logged and left.
    """
    if os.geteuid() != 0:
        return []
    try:
        base = Path(os.path.realpath(tmp_dir if tmp_dir is not None else tempfile.gettempdir()))
        points = _mount_points(Path("/proc/self/mountinfo").read_bytes())
    except OSError as err:
        log.info("stale sandbox mounts not cleaned: %s", err)
        return []
    cleaned: list[Path] = []
    for point, kind in reversed(points):
        if kind != "tmpfs" or point.parent.parent != base or not point.parent.name.startswith("grader-"):
            continue
        try:
            pid_text, started = _owner_file(point).read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError) as err:
            log.debug("left the tmpfs on %s: no owner file that proves it is ours (%s)", point, err)
            continue
        if _start_time(pid) == started:
            log.debug("left the tmpfs on %s: its grading process %d is running", point, pid)
            continue
        if _unmount(point):
            cleaned.append(point)
    for folder in [*cleaned, *dict.fromkeys(p.parent for p in cleaned)]:  # empty ones only
        with suppress(OSError):
            folder.rmdir()
    if cleaned:
        log.info("unmounted %d stale sandbox tmpfs mount(s) of grading processes that are gone: %s",
                 len(cleaned), ", ".join(map(str, cleaned)))
    return cleaned


@dataclass(frozen=True)
class _Cgroup:
    path: Path
    version: int


@dataclass
class SandboxSession:
    """One prepared run (see :meth:`Sandbox.session`); :meth:`hand_over` the writable folders,
    then :meth:`wrap` the runner's command."""

    sandbox: Sandbox
    limits: Limits
    readonly: tuple[Path, ...]
    device: str
    cgroups: tuple[_Cgroup, ...] = ()
    writable: tuple[Path, ...] = ()
    workdir: Path = Path("/")

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
        _kill_members(self.cgroups)
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
            args += ["--unshare-user", "--uid", str(self.sandbox.uid), "--gid",
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
        binds = [*_python_paths(), *self.readonly, *self.writable]
        for parent in _parents(binds):  # bubblewrap would make them 0700, locking the uid out
            args += ["--perms", "0755", "--dir", str(parent)]
        for path in _python_paths():
            args += ["--ro-bind", str(path), str(path)]
        for path in self.readonly:
            args += ["--ro-bind", str(path), str(path)]
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
    package = Path(__file__).resolve().parent
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
            "MPLCONFIGDIR": f"{_HOME}/.config/matplotlib", **keep}


def _chown_tree(folder: Path, uid: int) -> None:
    os.chown(folder, uid, uid)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def _own_cgroup(controller: str) -> Path | None:
    """The cgroup v1 folder this process is in for ``controller``, or None."""
    base = CGROUP_ROOT / controller
    if not (base / "cgroup.procs").exists():
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            own = base / path.lstrip("/")
            return own if own.is_dir() else base
    return base


def _make_cgroups(limits: Limits | None) -> tuple[_Cgroup, ...]:
    """A memory and a pids cgroup for one run (v1), or one v2 cgroup; () where not allowed.

    With ``limits`` None the cgroups limit nothing: they only hold the run's processes, so that
    every one of them can be found and killed at the end.
    """
    name = f"grader-{os.getpid()}-{os.urandom(4).hex()}"
    made: list[_Cgroup] = []
    _remove_stale_cgroups()
    memory_bytes = str(limits.memory_mb * 2**20) if limits else None
    try:
        memory, pids = _own_cgroup("memory"), _own_cgroup("pids")
        if memory is not None and pids is not None:
            plan = [(pids, [("pids.max", str(limits.processes) if limits else None)])]
            if limits is not None:
                plan.append((memory, [("memory.limit_in_bytes", memory_bytes),
                                      ("memory.memsw.limit_in_bytes", memory_bytes)]))
            for parent, files in plan:
                group = parent / name
                group.mkdir()
                made.append(_Cgroup(group, 1))
                for file, value in files:
                    if value is None or not (group / file).exists():
                        continue  # memsw exists only with swap accounting
                    (group / file).write_text(value)
            return tuple(made)
        unified = _v2_parent()
        if unified is not None:
            group = unified / name
            group.mkdir()
            made.append(_Cgroup(group, 2))
            if limits is not None:
                (group / "memory.max").write_text(str(memory_bytes))
                (group / "pids.max").write_text(str(limits.processes))
                if (group / "memory.swap.max").exists():
                    (group / "memory.swap.max").write_text("0")
            return tuple(made)
    except OSError as err:
        log.info("no cgroup for the run (%s)", err)
        _remove_cgroups(tuple(made))
    return ()


def _remove_stale_cgroups() -> None:
    """Remove empty ``grader-<pid>-*`` cgroups whose grader is gone (killed before it could)."""
    import psutil

    parents = [p for p in (_own_cgroup("memory"), _own_cgroup("pids"), _v2_parent()) if p]
    for parent in parents:
        for group in parent.glob("grader-*-*"):
            try:
                pid = int(group.name.split("-")[1])
                if not psutil.pid_exists(pid):
                    group.rmdir()  # fails, and is left, while it still holds a process
            except (ValueError, OSError):
                continue


def _v2_parent() -> Path | None:
    if not (CGROUP_ROOT / "cgroup.controllers").exists():
        return None
    try:
        line = next(ln for ln in Path("/proc/self/cgroup").read_text().splitlines()
                    if ln.startswith("0::"))
    except (OSError, StopIteration):
        return None
    own = CGROUP_ROOT / line[3:].lstrip("/")
    enabled = (own / "cgroup.subtree_control").read_text().split() if own.is_dir() else []
    return own if {"memory", "pids"} <= set(enabled) else None


def _remove_cgroups(groups: tuple[_Cgroup, ...]) -> None:
    """Kill every process still in ``groups``, then remove them."""
    _kill_members(groups)
    for group in groups:
        try:
            group.path.rmdir()
        except OSError as err:
            log.warning("could not remove cgroup %s: %s", group.path, err)


def _kill_members(groups: tuple[_Cgroup, ...]) -> None:
    """SIGKILL every process in ``groups`` until they are empty (at most about 5 s). Reads
    ``cgroup.procs``: no scan of the process table."""
    import signal
    import time

    for group in groups:
        for _ in range(500):
            try:
                pids = [int(p) for p in (group.path / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)


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
        ConfigError: ``GRADER_SANDBOX_UID`` is not a uid (:func:`grader.settings.sandbox_uid`).
    """
    if mode not in MODES:
        raise UsageError(f"unknown sandbox {mode!r}", fix=f"use one of {', '.join(MODES)}")
    if mode == "none":
        return Sandbox("none", _NOT_SANDBOXED + " (--sandbox none)", requested=mode)
    from grader.settings import sandbox_uid

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
