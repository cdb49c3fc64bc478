"""Memory and process limits of a run by a cgroup made for it (cgroup v1: a memory and a pids
cgroup; v2: one), and the killing of every process a run left in its cgroups."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from grader.core import Limits

__all__ = ["CGROUP_ROOT", "Cgroup", "kill_members", "make_cgroups", "remove_cgroups"]

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Cgroup:
    """One cgroup made for a run: its folder and its cgroup version (1 or 2)."""

    path: Path
    version: int


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


def make_cgroups(limits: Limits | None) -> tuple[Cgroup, ...]:
    """A memory and a pids cgroup for one run (v1), or one v2 cgroup; () where not allowed.

    With ``limits`` None the cgroups limit nothing: they only hold the run's processes, so that
    every one of them can be found and killed at the end.
    """
    name = f"grader-{os.getpid()}-{os.urandom(4).hex()}"
    made: list[Cgroup] = []
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
                made.append(Cgroup(group, 1))
                for file, value in files:
                    if value is None or not (group / file).exists():
                        continue  # memsw exists only with swap accounting
                    (group / file).write_text(value)
            return tuple(made)
        unified = _v2_parent()
        if unified is not None:
            group = unified / name
            group.mkdir()
            made.append(Cgroup(group, 2))
            if limits is not None:
                (group / "memory.max").write_text(str(memory_bytes))
                (group / "pids.max").write_text(str(limits.processes))
                if (group / "memory.swap.max").exists():
                    (group / "memory.swap.max").write_text("0")
            return tuple(made)
    except OSError as err:
        log.info("no cgroup for the run (%s)", err)
        remove_cgroups(tuple(made))
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


def remove_cgroups(groups: tuple[Cgroup, ...]) -> None:
    """Kill every process still in ``groups``, then remove them."""
    kill_members(groups)
    for group in groups:
        try:
            group.path.rmdir()
        except OSError as err:
            log.warning("could not remove cgroup %s: %s", group.path, err)


def kill_members(groups: tuple[Cgroup, ...]) -> None:
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
