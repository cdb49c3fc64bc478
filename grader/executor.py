"""Run one notebook in its own runner process, with a hard deadline enforced from outside.

The runner (:mod:`grader.runner`) starts the kernel; this side waits at most ``deadline_s``
and then kills the runner and every descendant, so a kernel that ignores SIGINT, or a child
that left the kernel's session, cannot outlive the deadline.
What comes back is read as bounded JSON and validated; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from grader.evidence import ExecutionFacts, ProbeOutput, RunnerFacts, cell_number
from grader.hints import network_hint
from grader.runner import kill_tree
from grader.settings import environ_snapshot, user_environ

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.sandbox import SandboxSession

__all__ = ["RunRequest", "RunResult", "run_notebook", "stop_all_runs"]

log = logging.getLogger(__name__)

MAX_FACTS_BYTES = 10_000_000
MAX_PROBE_BYTES = 50_000_000
MAX_NOTEBOOK_BYTES = 200_000_000
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


def stop_all_runs() -> int:
    """Kill every runner this process started that is still running, with all its processes
    (Ctrl-C of a parallel run); return how many were running."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for proc in live:
        kill_tree(proc.pid, include_root=proc.poll() is None)
    return len(live)


def _read_bounded(path: Path, limit: int) -> str | None:
    """The text of the regular file ``path`` if it has at most ``limit`` bytes, else None.

    The file was written on the student's side: a symbolic link (to a file of the grader's) is
    not followed, and anything but a regular file is refused.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        try:
            return fh.read(limit + 1)[:limit].decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None


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


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def run_notebook(request: RunRequest) -> RunResult:
    """Execute ``request.notebook`` in a runner process and collect what it left.

    Never raises for a student's fault: a crash, timeout or kernel death is described in the
    returned facts. ``status`` is ``deadline`` when the hard deadline killed the run.
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
    deadline_hit = False
    with paths["runner.log"].open("wb") as log_file:
        argv = [request.python, "-m", "grader.runner", str(paths["job.json"])]
        if request.sandbox is not None:
            argv = request.sandbox.wrap(argv, env)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=request.workdir,
            # unsandboxed, the runner too gets the kernel's environment: without JUPYTER_PATH
            # it finds the same python3 kernel as in the sandbox (bubblewrap clears it itself);
            # never env=None (see environ_snapshot)
            env=environ_snapshot() if sandboxed else env,
        )
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        try:
            deadline_hit = _wait(proc, t0 + request.deadline_s, paths["facts.json"], request)
            if deadline_hit:
                log.warning("deadline of %s s reached; killing the run", request.deadline_s)
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
    sources = tuple(_first_line(c.source) for c in request.notebook.cells)
    facts = _facts(paths, wall_s, deadline_hit, request, sources, proc.returncode, sandboxed)
    executed = None
    text = _read_bounded(paths["executed.ipynb"], MAX_NOTEBOOK_BYTES)
    if text is not None:
        try:
            executed = nbformat.reads(text, as_version=4)
        except Exception:  # a damaged file is no evidence
            executed = None
    facts = _with_network_hint(facts, executed)
    probe, probe_error = _probe(paths["probe.json"], facts)
    return RunResult(facts=facts, executed=executed, probe=probe, probe_error=probe_error,
                     started_at=started_at)


def _wait(proc: subprocess.Popen[bytes], deadline_at: float, facts_path: Path,
          request: RunRequest) -> bool:
    """Wait for the runner until ``deadline_at`` (monotonic s); True if the deadline came first.

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
    last = ""
    while True:
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            return True
        if exited.wait(timeout=min(2.0, remaining)):
            return False
        if request.on_progress is None:
            continue
        status = _progress(facts_path, request)
        if status and status != last:
            request.on_progress(status)
            last = status


def _progress(facts_path: Path, request: RunRequest) -> str:
    text = _read_bounded(facts_path, MAX_FACTS_BYTES)
    try:
        facts = RunnerFacts.model_validate_json(text) if text else None
    except ValidationError:
        return ""
    if facts is None:
        return "starting the kernel"
    if facts.probe.status == "running":
        return "calling the contract on the hidden test set"
    cells = request.notebook.cells
    injected = _injected_cell(request.notebook)
    shown = len(cells) - (injected is not None)  # the cells the student sees
    for cell in facts.cells:
        if cell.status == "running" and 0 <= cell.index < len(cells) and cells[cell.index].cell_type == "code":
            source = _first_line(cells[cell.index].source)
            number = cell_number(cell.index, injected)
            if number is None:
                return "setting the parameters injected by the grader"
            return f"cell {number} of {shown}: {source}"
    return ""


def _injected_cell(nb: NotebookNode) -> int | None:
    """Index of the cell of parameters the grader injected (tagged ``injected-parameters``)."""
    from grader.notebook import INJECTED_TAG

    return next((i for i, c in enumerate(nb.cells)
                 if INJECTED_TAG in c.get("metadata", {}).get("tags", [])), None)


def _inconsistent(runner: RunnerFacts, n_cells: int) -> str | None:
    """Why the runner's record cannot be the record of this notebook's run, or None.

    The runner writes ``facts.json`` inside the student's sandbox, so its code can rewrite it:
    every index must be a cell of the notebook, each cell recorded once, in order.
    """
    if len(runner.cells) != n_cells:
        return f"it records {len(runner.cells)} cells for a notebook of {n_cells}"
    for position, cell in enumerate(runner.cells):
        if cell.index != position:
            return f"cell {position} is recorded with index {cell.index}"
    if runner.failed_cell is not None and not 0 <= runner.failed_cell < n_cells:
        return f"it names cell index {runner.failed_cell} of {n_cells} cells as the failed one"
    return None


def _facts(paths: dict[str, Path], wall_s: float, deadline_hit: bool, request: RunRequest,
           sources: tuple[str, ...], returncode: int | None,
           sandboxed: bool) -> ExecutionFacts:
    text = _read_bounded(paths["facts.json"], MAX_FACTS_BYTES)
    runner: RunnerFacts | None = None
    if text is not None:
        try:
            runner = RunnerFacts.model_validate_json(text)
        except ValidationError:
            runner = None
    if runner is None:
        tail = (_read_bounded(paths["runner.log"], 10_000_000) or "")[-1500:]
        return ExecutionFacts(
            status="deadline" if deadline_hit else "runner_failed",
            message=(f"the run passed its {request.deadline_s} s deadline before the kernel "
                     "started" if deadline_hit else
                     f"the notebook runner exited with status {returncode}: {tail.strip()}"),
            failed_cell=None, cells=(), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
            probe=None, injected_cell=_injected_cell(request.notebook))
    injected = _injected_cell(request.notebook)
    problem = _inconsistent(runner, len(request.notebook.cells))
    if problem is not None:  # damaged, or forged by the notebook's code: no evidence
        return ExecutionFacts(
            status="runner_failed",
            message=("the record of the run (facts.json) does not match the notebook: "
                     f"{problem}; it was damaged or rewritten by the notebook's code, so the run "
                     "cannot be graded"),
            failed_cell=None, cells=(), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
            probe=None, injected_cell=injected)
    status, message, failed = runner.status, runner.message, runner.failed_cell
    cells = list(runner.cells)
    if deadline_hit:
        status = "deadline"
        running = [c for c in cells if c.status == "running"]
        if running:
            failed = running[0].index
            cells[failed] = running[0].model_copy(update={"status": "timeout"})
            number = cell_number(failed, injected)
            name = "the cell injected by the grader" if number is None else f"cell {number}"
            message = (f"{name} was still running at the {request.deadline_s} s deadline; "
                       "the run was stopped")
        elif runner.probe.status == "running":
            message = f"the probe was still running at the {request.deadline_s} s deadline"
        else:
            message = f"the run passed its {request.deadline_s} s deadline"
    elif status in ("starting", "running"):
        status = "runner_failed"
        message = f"the notebook runner stopped early (exit status {returncode})"
    return ExecutionFacts(status=status, message=message, failed_cell=failed,
                          cells=tuple(cells), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
                          probe=runner.probe, injected_cell=injected)


def _with_network_hint(facts: ExecutionFacts, executed: NotebookNode | None) -> ExecutionFacts:
    """``facts`` with :func:`grader.hints.network_hint` after a cell error's message, when the
    error shows a failed download. Reads the error's name and text from the runner's record and
    the traceback and printed text of the failed cell from the executed notebook: text only,
    here in the grader, never in the student's process."""
    error = next((c.error for c in facts.cells if c.index == facts.failed_cell), None)
    if facts.status != "cell_error" or not error:
        return facts
    text: list[str] = []
    cells = executed.cells if executed is not None else []
    if isinstance(facts.failed_cell, int) and 0 <= facts.failed_cell < len(cells):
        for output in cells[facts.failed_cell].get("outputs", []):
            part = output.get("traceback") if output.get("output_type") == "error" else output.get("text")
            if isinstance(part, list):
                part = "\n".join(str(line) for line in part)
            if isinstance(part, str):
                text.append(part)
    hint = network_hint(str(error.get("ename", "")), str(error.get("evalue", "")), "\n".join(text))
    return facts if hint is None else dataclasses.replace(facts, message=f"{facts.message}. {hint}")


def _probe(path: Path, facts: ExecutionFacts) -> tuple[ProbeOutput | None, str | None]:
    if not os.path.lexists(path):
        reason = facts.probe.message if facts.probe and facts.probe.message else facts.message
        return None, f"the probe wrote nothing ({reason})" if reason else "the probe wrote nothing"
    text = _read_bounded(path, MAX_PROBE_BYTES)
    if text is None:
        return None, (f"the probe's output is not a regular file of at most {MAX_PROBE_BYTES} "
                      "bytes")
    try:
        return ProbeOutput.model_validate_json(text), None
    except ValidationError as err:
        first = str(err).splitlines()
        return None, "the probe's output is invalid: " + " ".join(first[:3])[:500]
