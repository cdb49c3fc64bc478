"""Disk limits of a run: the tmpfs mounts on its working copy and run folder, each with an owner
file beside it, and the cleaning of the mounts left by grading processes killed before they could
unmount them."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

from grader.core import environ_snapshot

__all__ = ["RUN_DIR_MB", "clean_stale_mounts", "mount_tmpfs", "start_time", "unmount"]

log = logging.getLogger(__name__)

RUN_DIR_MB = 1024  # the runner's files: executed notebook (outputs capped per cell), timeline
_OWNER_SUFFIX = ".grader-owner"  # beside a mounted folder: "<pid> <start time>"


def mount_tmpfs(folder: Path, size_mb: int) -> bool:
    """Mount a tmpfs of ``size_mb`` MiB on ``folder`` (root only); True when mounted.

    Its owner (this process: pid and start time) is written first, beside it
    (:func:`_owner_file`): should this process be killed before it unmounts it,
    :func:`clean_stale_mounts` can prove that its owner is gone.
    """
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    owner, started = _owner_file(folder), start_time(os.getpid())
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


def unmount(folder: Path) -> bool:
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


def start_time(pid: int) -> str | None:
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

    :meth:`grader.sandbox.session.Sandbox.session` unmounts its tmpfs mounts in a ``finally``,
    which a grading process killed with SIGKILL never runs: its runner and kernel die with it
    (their lifeline), its mounts stay. A mount is cleaned when it is a tmpfs on a folder of a ``grader-*`` folder
    directly in ``tmp_dir`` and its owner file names a process that is gone (no such pid, or one
    started at another time: the pid was reused). A mount whose owner lives (other graders on
    this machine) or without a readable owner file (not provably ours) is left, logged at debug
    level. After the unmount, the owner file and the folders left empty are removed. One read of
    ``/proc/self/mountinfo``; does nothing unless this process is root, as only root mounts.

    Args:
        tmp_dir: the folder the grader's run folders are made in (default
            :func:`tempfile.gettempdir`, as :func:`grader.pipeline.grade` makes them).

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
        if start_time(pid) == started:
            log.debug("left the tmpfs on %s: its grading process %d is running", point, pid)
            continue
        if unmount(point):
            cleaned.append(point)
    for folder in [*cleaned, *dict.fromkeys(p.parent for p in cleaned)]:  # empty ones only
        with suppress(OSError):
            folder.rmdir()
    if cleaned:
        log.info("unmounted %d stale sandbox tmpfs mount(s) of grading processes that are gone: %s",
                 len(cleaned), ", ".join(map(str, cleaned)))
    return cleaned
