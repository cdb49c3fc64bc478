"""Stage 2 of grading a notebook, *execute*: run it in its own runner process, with a hard
deadline and a per-job cancel enforced from outside.

The runner (:mod:`grader.runner`) starts the kernel; this side waits at most ``deadline_s``, or
until the job's cancel event is set, and then kills the runner and every descendant, so a kernel
that ignores SIGINT, or a child that left the kernel's session, cannot outlive the deadline.
Each runner holds the read end of this process's lifeline (:func:`lifeline_fd`), so it dies with
the grading process, whichever thread started it. What comes back is read as bounded JSON and
validated (:mod:`grader.runfacts`); nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from grader.evidence import ExecutionFacts, ProbeOutput, RunnerFacts, cell_number
from grader.runfacts import (
    MAX_FACTS_BYTES,
    MAX_NOTEBOOK_BYTES,
    cancelled_facts,
    first_line,
    injected_cell,
    probe_output,
    read_bounded,
    run_facts,
    with_network_hint,
)

# importable from here under the names they had before grader.runfacts (tests use them)
from grader.runfacts import MAX_PROBE_BYTES as MAX_PROBE_BYTES
from grader.runfacts import probe_output as _probe  # noqa: F401
from grader.runfacts import read_bounded as _read_bounded  # noqa: F401
from grader.runfacts import run_facts as _facts  # noqa: F401
from grader.runfacts import with_network_hint as _with_network_hint  # noqa: F401
from grader.runner import kill_tree
from grader.settings import environ_snapshot, user_environ

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.sandbox import SandboxSession

__all__ = ["RunRequest", "RunResult", "lifeline_fd", "run_notebook", "stop_all_runs"]

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.25  # how often a run's wait looks at its cancel event
_DROP_ENV = ("GRADER_", "JPY_", "JUPYTER_")


@dataclass(frozen=True)
class RunRequest:
    """One notebook run.

    Attributes:
        notebook: the notebook with parameters already injected.
        workdir: writable folder the kernel starts in (a copy of the submission).
        run_dir: grader-owned folder for the job file, timeline, logs and probe output.
        cell_timeout_s: per-cell limit in seconds.
        deadline_s: hard wall-clock limit for the whole run in seconds.
        probe_timeout_s: limit for the probe cell in seconds.
        max_output_bytes: outputs kept per cell.
        probe: the probe's config (contract names, image folders and file names, batch size).
        python: interpreter for the runner (its kernel is this interpreter's ``python3``).
        on_progress: called with a one-line status whenever the running cell changes.
        sandbox: the prepared sandbox to run in; ``None`` runs the runner as the grader's user.
        extra_env: variables set for the kernel on top of the grader's environment.
        cancel: once set, the run is stopped as at its deadline (within ``CANCEL_POLL_S``) and
            its status is ``cancelled``; this run's process tree only.
        nice: CPU niceness of the runner, the sandbox and the kernel (0: the grader's own;
            ``nice -n`` of coreutils, which execs: the run's pid stays the process waited for).
    """

    notebook: NotebookNode
    workdir: Path
    run_dir: Path
    cell_timeout_s: int
    deadline_s: int
    probe_timeout_s: int
    max_output_bytes: int
    probe: dict[str, Any]
    python: str
    on_progress: Callable[[str], None] | None = None
    sandbox: SandboxSession | None = None
    extra_env: dict[str, str] | None = None
    cancel: threading.Event | None = None
    nice: int = 0


@dataclass(frozen=True)
class RunResult:
    """What the run left: the execution facts, the executed notebook, the validated probe."""

    facts: ExecutionFacts
    executed: NotebookNode | None
    probe: ProbeOutput | None
    probe_error: str | None
    started_at: float


def _kernel_env() -> dict[str, str]:
    env = {k: v for k, v in user_environ().items() if not k.startswith(_DROP_ENV)}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("MPLBACKEND", None)
    return env


_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()
_LIFELINE: tuple[int, int] | None = None  # (read end, write end), opened once per process


def lifeline_fd() -> int:
    """The read end of this process's lifeline, passed to every runner (``--lifeline FD``).

    One pipe per grading process, opened at the first call: its write end stays open, and is
    never written, for the life of the process, so a runner reads end-of-file exactly when the
    process is gone, whichever thread started it (:func:`grader.runner.watch_lifeline`). Both
    ends are close-on-exec (:func:`os.pipe`, PEP 446), so only a runner started with ``pass_fds``
    holds the read end, and no child holds the write end. A child forked without exec
    (``multiprocessing``'s fork) would keep the write end, and the runners alive with it.
    """
    global _LIFELINE
    with _LIVE_LOCK:
        if _LIFELINE is None:
            _LIFELINE = os.pipe()
        return _LIFELINE[0]


def stop_all_runs() -> int:
    """Kill every runner this process started that is still running, with all its processes
    (Ctrl-C of a parallel run); return how many were running."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for proc in live:
        kill_tree(proc.pid, include_root=proc.poll() is None)
    return len(live)


def _sweep_session(sid: int) -> int:
    """SIGKILL every process still in session ``sid`` (the runner's); how many were found."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                proc.kill()
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    psutil.wait_procs(found, timeout=5)
    return len(found)


def run_notebook(request: RunRequest) -> RunResult:
    """Execute ``request.notebook`` in a runner process and collect what it left.

    Never raises for a student's fault: a crash, timeout or kernel death is described in the
    returned facts. ``status`` is ``deadline`` when the hard deadline killed the run,
    ``cancelled`` when ``request.cancel`` did.
    """
    import nbformat

    run_dir = request.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: run_dir / name for name in ("job.json", "input.ipynb", "executed.ipynb",
                                               "facts.json", "probe.json", "runner.log",
                                               "kernel.json")}
    nbformat.write(request.notebook, paths["input.ipynb"])
    probe_config = {**request.probe, "out": str(paths["probe.json"])}
    sandboxed = request.sandbox is not None and request.sandbox.sandbox.sandboxed
    env = {**_kernel_env(), **(request.extra_env or {})}
    if request.sandbox is not None:
        env = request.sandbox.kernel_env(env)
    job = {
        "notebook": str(paths["input.ipynb"]),
        "executed": str(paths["executed.ipynb"]),
        "facts": str(paths["facts.json"]),
        "workdir": str(request.workdir),
        "kernel_name": "python3",
        "connection_file": str(paths["kernel.json"]),
        "cell_timeout_s": request.cell_timeout_s,
        "probe_timeout_s": request.probe_timeout_s,
        "max_output_bytes": request.max_output_bytes,
        "env": env,
        "probe": probe_config,
    }
    paths["job.json"].write_text(json.dumps(job), encoding="utf-8")
    started_at = time.time()
    t0 = time.monotonic()
    deadline_hit = cancelled = False
    with paths["runner.log"].open("wb") as log_file:
        lifeline = lifeline_fd()
        argv = [request.python, "-m", "grader.runner", str(paths["job.json"]), "--lifeline", str(lifeline)]
        if request.sandbox is not None:
            argv = request.sandbox.wrap(argv, env)
        if request.nice:
            argv = [shutil.which("nice") or "/usr/bin/nice", "-n", str(request.nice), *argv]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(lifeline,),  # the same number in the runner: kept by sh, bwrap and setpriv
            cwd=request.workdir,
            # unsandboxed, the runner too gets the kernel's environment: without JUPYTER_PATH
            # it finds the same python3 kernel as in the sandbox (bubblewrap clears it itself);
            # never env=None (see environ_snapshot)
            env=environ_snapshot() if sandboxed else env,
        )
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        try:
            ended = _wait(proc, t0 + request.deadline_s, paths["facts.json"], request)
            deadline_hit, cancelled = ended == "deadline", ended == "cancelled"
            if deadline_hit:
                log.warning("deadline of %s s reached; killing the run", request.deadline_s)
            elif cancelled:
                log.warning("run cancelled; killing it")
        finally:
            kill_tree(proc.pid, include_root=proc.poll() is None)
            proc.wait()
            # orphans whose runner died before it could reap them: the run's cgroup holds
            # them all (cheap); without one, scan the process table for the runner's session
            if request.sandbox is None or not request.sandbox.kill_remaining():
                _sweep_session(proc.pid)
            with _LIVE_LOCK:
                _LIVE.pop(proc.pid, None)
    wall_s = time.monotonic() - t0
    sources = tuple(first_line(c.source) for c in request.notebook.cells)
    facts = (cancelled_facts(paths, wall_s, request, sources, sandboxed) if cancelled else
             run_facts(paths, wall_s, deadline_hit, request, sources, proc.returncode, sandboxed))
    executed = None
    text = read_bounded(paths["executed.ipynb"], MAX_NOTEBOOK_BYTES)
    if text is not None:
        try:
            executed = nbformat.reads(text, as_version=4)
        except Exception:  # a damaged file is no evidence
            executed = None
    facts = with_network_hint(facts, executed)
    probe, probe_error = probe_output(paths["probe.json"], facts)
    return RunResult(facts=facts, executed=executed, probe=probe, probe_error=probe_error,
                     started_at=started_at)


def _wait(proc: subprocess.Popen[bytes], deadline_at: float, facts_path: Path,
          request: RunRequest) -> Literal["exited", "deadline", "cancelled"]:
    """Wait for the runner until ``deadline_at`` (monotonic s) or ``request.cancel`` is set
    (seen within ``CANCEL_POLL_S``); what came first.

    A thread blocks in ``proc.wait()`` and sets an event, so the runner's end is seen at once:
    ``Popen.wait(timeout)`` polls, every 50 ms once it has waited 0.1 s, which cost a run 25 ms
    on average (the runs' waits came in 50 ms steps). The thread ends with the runner, which
    the caller kills at the deadline.
    """
    exited = threading.Event()

    def wait() -> None:
        try:
            proc.wait()
        finally:
            exited.set()

    threading.Thread(target=wait, name=f"grader-wait-{proc.pid}", daemon=True).start()
    last, progress_at = "", 0.0
    step = 2.0 if request.cancel is None else CANCEL_POLL_S
    while True:
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            return "deadline"
        if exited.wait(timeout=min(step, remaining)):
            return "exited"
        if request.cancel is not None and request.cancel.is_set():
            return "cancelled"
        if request.on_progress is None or time.monotonic() - progress_at < 2.0:
            continue
        progress_at = time.monotonic()
        status = _progress(facts_path, request)
        if status and status != last:
            request.on_progress(status)
            last = status


def _progress(facts_path: Path, request: RunRequest) -> str:
    text = read_bounded(facts_path, MAX_FACTS_BYTES)
    try:
        facts = RunnerFacts.model_validate_json(text) if text else None
    except ValidationError:
        return ""
    if facts is None:
        return "starting the kernel"
    if facts.probe.status == "running":
        return "calling the contract on the hidden test set"
    cells = request.notebook.cells
    injected = injected_cell(request.notebook)
    shown = len(cells) - (injected is not None)  # the cells the student sees
    for cell in facts.cells:
        if cell.status == "running" and 0 <= cell.index < len(cells) and cells[cell.index].cell_type == "code":
            source = first_line(cells[cell.index].source)
            number = cell_number(cell.index, injected)
            if number is None:
                return "setting the parameters injected by the grader"
            return f"cell {number} of {shown}: {source}"
    return ""


