"""The server's interpreter on one CPU, its children on all of them.

``grader serve`` answers every request in one Python interpreter: its event loop and the threads it
hands blocking work to (the database, the upload's files) take turns holding the interpreter's lock
(the GIL). Fifty uploads at once keep some fifty threads asking for it, and every system call that
releases it (a file's ``open``, ``write``, ``fsync``, an SQLite step) hands it over: on two CPUs
each hand-over wakes a thread on the other CPU (a futex wake and an inter-processor interrupt,
dearer still in a virtual machine), and the woken thread often finds the lock taken again. David
Beazley measured this ("Understanding the Python GIL", PyCon 2010: threads that contend for the
GIL run slower on several cores than on one) and it is what `perf` showed in the server during
issue 28's upload burst: half of its CPU time in ``futex`` waits and wakes. On one CPU a
hand-over is a plain switch on that CPU, and no more work gets done on two: only one thread
runs Python at a time either way.

So :func:`pin_server` keeps the server's threads on one CPU of those it may use (the last one:
CPU 0 takes most interrupts), and its child processes go back to all of them
(:func:`unpin_child`, from :data:`grader.core.SERVER_CPUS_ENV`): the grading children and the
notebooks' kernels they start, and the start-up child of the similar pairs, each use the CPUs
the server was given. The upload checks' short children (:mod:`grader.server.web.precheck`) stay on the server's CPU:
their work is the upload's.

Linux only (``os.sched_setaffinity``); elsewhere, and on one CPU, nothing changes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from grader.core import record_server_cpus, server_cpus

__all__ = ["pin_server", "unpin_child"]

log = logging.getLogger(__name__)


def pin_server() -> tuple[int, tuple[int, ...]] | None:
    """Keep every thread of this process, and the threads and processes it starts later, on one of
    the CPUs it may use now (the highest-numbered); record them all in the environment
    (:data:`grader.core.SERVER_CPUS_ENV`, :func:`grader.core.record_server_cpus`) for the children
    (:func:`unpin_child`). Call it in the main thread before the server starts its own threads: it
    sets the mask of each thread found in ``/proc/self/task`` too.

    Returns:
        the CPU chosen and all those the process was given; None where nothing was changed (one
        CPU, or no ``sched_setaffinity``).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    cpu = allowed[-1]
    record_server_cpus(allowed)
    tasks = Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:  # a thread that ended meanwhile
            continue
    return cpu, tuple(allowed)


def unpin_child() -> None:
    """In a process the server started: back to the CPUs the server was given
    (:data:`grader.core.SERVER_CPUS_ENV`), so that what it starts (a notebook's kernel) may use them
    all. Nothing where the variable is unset or malformed, or where none of its CPUs may be used now."""
    listed = server_cpus()
    try:
        cpus = {int(c) for c in listed.split(",") if c}
    except ValueError:
        return
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as err:  # a CPU taken away since (a changed cpuset)
        log.debug("CPUs %s not restored: %s", listed, err)
