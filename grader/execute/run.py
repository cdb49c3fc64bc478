"""Stage 2 of grading a notebook, *execute*: run it in its own runner process, with a hard
deadline and a per-job cancel enforced from outside.

The runner (:mod:`grader.student.runner`) starts the kernel and itself stops a cell at its limit or at
the notebook's ``deadline_s`` (an interrupt, as Jupyter's Stop button) so that the probe can still
score the model as it stood; this side waits at most the request's ``hard_limit_s`` (the deadline
and the probe's two steps), or until the job's cancel event is set, and then kills the runner and
every descendant, so a kernel that ignores SIGINT, or a child that left the kernel's session,
cannot outlive it.
Each runner holds the read end of this process's lifeline (:func:`lifeline_fd`), so it dies with
the grading process, whichever thread started it. What comes back is read as bounded JSON and
validated (:mod:`grader.evidence.runfacts`); nothing is unpickled.

The hidden images wait behind the run's gate (:mod:`grader.sandbox.gate`) until the runner asks for
them after the last cell and the probe's visible step; this side then copies what may reach a
team out of the sandbox's reach (:class:`grader.execute.watch.GateWatch`), opens the gate, and
from then on reads only the hidden step's answers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from grader.core import environ_snapshot, user_environ
from grader.evidence import (
    MAX_NOTEBOOK_BYTES,
    RunResult,
    cancelled_facts,
    first_line,
    hidden_output,
    probe_output,
    read_bounded,
    run_facts,
    with_hint,
)
from grader.execute.request import RunRequest
from grader.execute.watch import GateWatch, wait_for_run
from grader.student.runner import kill_tree

if TYPE_CHECKING:

    pass

__all__ = ["lifeline_fd", "run_notebook", "stop_all_runs"]

log = logging.getLogger(__name__)

_DROP_ENV = ("GRADER_", "JPY_", "JUPYTER_")


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
    process is gone, whichever thread started it (:func:`grader.student.runner.watch_lifeline`). Both
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
                                               "facts.json", "probe.json", "hidden.json",
                                               "runner.log", "kernel.json")}
    nbformat.write(request.notebook, paths["input.ipynb"])
    probe_config = {**request.probe, "out": str(paths["probe.json"]), "hidden_out": str(paths["hidden.json"])}
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
        "deadline_s": request.deadline_s,
        "probe_timeout_s": request.probe_timeout_s,
        "max_output_bytes": request.max_output_bytes,
        "env": env,
        "probe": probe_config,
    }
    paths["job.json"].write_text(json.dumps(job), encoding="utf-8")
    started_at = time.time()
    t0 = time.monotonic()
    deadline_hit = cancelled = False
    gate = GateWatch(request, paths, started_at) if request.gate is not None else None
    with paths["runner.log"].open("wb") as log_file:
        lifeline = lifeline_fd()
        argv = [request.python, "-m", "grader.student.runner", str(paths["job.json"]), "--lifeline", str(lifeline)]
        if gate is not None:
            argv += ["--gate", ",".join(map(str, gate.runner_fds))]
        if request.sandbox is not None:
            argv = request.sandbox.wrap(argv, env)
        if request.nice:
            argv = [shutil.which("nice") or "/usr/bin/nice", "-n", str(request.nice), *argv]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # the same numbers in the runner: kept by sh, bwrap and setpriv
                pass_fds=(lifeline, *(gate.runner_fds if gate is not None else ())),
                cwd=request.workdir,
                # unsandboxed, the runner too gets the kernel's environment: without JUPYTER_PATH
                # it finds the same python3 kernel as in the sandbox (bubblewrap clears it itself);
                # never env=None (see environ_snapshot)
                env=environ_snapshot() if sandboxed else env,
            )
        except BaseException:
            if gate is not None:
                gate.discard()
            raise
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        if gate is not None:
            gate.start()
        try:
            ended = wait_for_run(proc, t0 + request.hard_limit_s, paths["facts.json"], request, gate)
            deadline_hit, cancelled = ended == "deadline", ended == "cancelled"
            if deadline_hit:
                log.warning("hard limit of %s s reached; killing the run", request.hard_limit_s)
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
            if gate is not None:
                gate.stop()
    wall_s = time.monotonic() - t0
    sources = tuple(first_line(c.source) for c in request.notebook.cells)
    # once the gate opened, what a team may see is the copy made before it: the kernel could
    # rewrite the run folder's files with the hidden images in hand
    opened = gate is not None and gate.opened.is_set()
    seen = {**paths, **gate.seen} if gate is not None and opened else paths
    facts = (cancelled_facts(seen, wall_s, request.notebook, sources, sandboxed) if cancelled else
             run_facts(seen, wall_s, deadline_hit, request.notebook, request.hard_limit_s, sources, proc.returncode,
                       sandboxed))
    executed = None
    text = read_bounded(seen["executed.ipynb"], MAX_NOTEBOOK_BYTES)
    if text is not None:
        try:
            executed = nbformat.reads(text, as_version=4)
        except Exception:  # a damaged file is no evidence
            executed = None
    facts = with_hint(facts, executed)
    probe, probe_error = probe_output(seen["probe.json"], facts)
    if probe is not None:
        # the answers on the held-out sets come from the hidden step alone, and only when it
        # ran (after the gate opened, or without a gate); else there are none
        ran = opened or (gate is None and os.path.lexists(paths["hidden.json"]))
        hidden = hidden_output(paths["hidden.json"], deadline_hit=deadline_hit) if ran else None
        probe = (hidden.merged_into(probe, request.probe["models"]) if hidden is not None
                 else probe.model_copy(update={"models": {}, "extra_sets": {}}))
    return RunResult(facts=facts, executed=executed, probe=probe, probe_error=probe_error,
                     started_at=started_at)
