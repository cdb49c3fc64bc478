"""One notebook run as the executor takes it: the notebook, its folders, its limits, its sandbox
and gate (:class:`RunRequest`; :func:`grader.execute.run.run_notebook` runs it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.sandbox import HiddenGate, SandboxSession

__all__ = ["RunRequest"]


@dataclass(frozen=True)
class RunRequest:
    """One notebook run.

    Attributes:
        notebook: the notebook with parameters already injected.
        workdir: writable folder the kernel starts in (a copy of the submission).
        run_dir: grader-owned folder for the job file, timeline, logs and probe output.
        cell_timeout_s: per-cell limit in seconds (the runner stops a cell there and goes on).
        deadline_s: limit for the kernel's start and the notebook's cells in seconds (the runner
            stops the running cell there and runs no other).
        probe_timeout_s: limit for each of the probe's two steps in seconds; the run is killed
            from outside at :attr:`hard_limit_s`.
        max_output_bytes: outputs kept per cell.
        probe: the probe's config (contract names, image folders and file names, batch size).
        python: interpreter for the runner (its kernel is this interpreter's ``python3``).
        on_progress: called with a one-line status whenever the running cell changes.
        sandbox: the prepared sandbox to run in; ``None`` runs the runner as the grader's user.
        extra_env: variables set for the kernel on top of the grader's environment.
        cancel: once set, the run is stopped as at its deadline (within
            :data:`grader.execute.watch.CANCEL_POLL_S`) and its status is ``cancelled``; this
            run's process tree only.
        nice: CPU niceness of the runner, the sandbox and the kernel (0: the grader's own;
            ``nice -n`` of coreutils, which execs: the run's pid stays the process waited for).
        gate: the gate of the held-out image folders the probe config names (:mod:`grader.sandbox.gate`);
            ``None``: the probe's hidden step runs right after its visible step (folders that
            hold nothing a team may not see, as in tests).
        at_gate: called with the run's start (``time.time()``) once the runner has asked for
            the gate, before it opens: the last moment the working copy is the cells' own
            (:func:`grader.pipeline.grade` lists the saved models then).
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
    gate: HiddenGate | None = None
    at_gate: Callable[[float], None] | None = None

    @property
    def hard_limit_s(self) -> int:
        """When the grader kills the run whatever it is doing, in seconds from its start
        (:func:`grader.core.hard_limit_s`)."""
        from grader.core import hard_limit_s

        return hard_limit_s(self.deadline_s, self.probe_timeout_s)
