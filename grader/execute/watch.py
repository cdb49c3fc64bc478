"""Watching a runner while it runs: the wait for its end, its deadline or its job's cancel, the
one-line progress it shows meanwhile, and the grader's side of the run's gate of the hidden
images (:class:`GateWatch`)."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from grader.evidence import (
    MAX_FACTS_BYTES,
    SNAPSHOT_FILES,
    RunnerFacts,
    cell_number,
    copy_bounded,
    first_line,
    injected_cell,
    read_bounded,
)

if TYPE_CHECKING:
    from grader.execute.request import RunRequest

__all__ = ["CANCEL_POLL_S", "HIDDEN_STEP", "GateWatch", "wait_for_run"]

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.25  # how often a run's wait looks at its cancel event
HIDDEN_STEP = "calling the contract on the hidden test set"
LAST_LINE_SHOWN = 160  # of a running cell's last printed line, beside its number


def wait_for_run(proc: subprocess.Popen[bytes], deadline_at: float, facts_path: Path,
                 request: RunRequest, gate: GateWatch | None = None) -> Literal["exited", "deadline", "cancelled"]:
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
        # once the gate is open the timeline is the kernel's to rewrite: a fixed line instead
        status = HIDDEN_STEP if gate is not None and gate.opened.is_set() else _progress(facts_path, request)
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
        return "calling the contract on the team's new images"
    cells = request.notebook.cells
    injected = injected_cell(request.notebook)
    shown = len(cells) - (injected is not None)  # the cells the student sees
    for cell in facts.cells:
        if cell.status == "running" and 0 <= cell.index < len(cells) and cells[cell.index].cell_type == "code":
            source = first_line(cells[cell.index].source)
            number = cell_number(cell.index, injected)
            if number is None:
                return "setting the parameters injected by the grader"
            said = f" · {cell.progress[:LAST_LINE_SHOWN]}" if cell.progress else ""
            return f"cell {number} of {shown}: {source}{said}"
    return ""


class GateWatch:
    """The grader's side of a run's gate (:mod:`grader.sandbox.gate`): a thread that waits for the
    runner's request (one byte on a pipe), copies the files that may reach a team out of the
    run folder (:data:`grader.evidence.runfacts.SNAPSHOT_FILES`, into the gate's parent, the grader's
    own folder), calls ``request.at_gate``, opens the gate and answers the runner."""

    def __init__(self, request: RunRequest, paths: dict[str, Path], started_at: float) -> None:
        assert request.gate is not None
        self.request, self.paths, self.started_at = request, paths, started_at
        self.want_r, self.want_w = os.pipe()
        self.answer_r, self.answer_w = os.pipe()
        self.opened = threading.Event()
        self.seen: dict[str, Path] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="grader-gate", daemon=True)

    @property
    def runner_fds(self) -> tuple[int, int]:
        """The runner's ends: it writes its request on the first, reads the answer on the second."""
        return self.want_w, self.answer_r

    def start(self) -> None:
        """Close this process's copies of the runner's ends (the runner holds them now) and
        start watching."""
        os.close(self.want_w)
        os.close(self.answer_r)
        self._thread.start()

    def discard(self) -> None:
        """Close every end (the runner could not be started)."""
        for fd in (self.want_r, self.want_w, self.answer_r, self.answer_w):
            with suppress(OSError):
                os.close(fd)

    def stop(self) -> None:
        """Stop watching (the runner has ended) and close this side's ends."""
        self._stop.set()
        self._thread.join()
        os.close(self.want_r)
        os.close(self.answer_w)

    def _watch(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self.want_r], [], [], CANCEL_POLL_S)
            if not ready:
                continue
            try:
                asked = os.read(self.want_r, 1) == b"g"
            except OSError:
                asked = False
            if asked:
                try:
                    self._open()
                except Exception:  # a fault of the grader: the gate stays closed, the run is told
                    log.exception("could not open the gate of the hidden images")
                    with suppress(OSError):
                        os.write(self.answer_w, b"x")
            return  # one request per run; end-of-file: the runner ended without one

    def _open(self) -> None:
        gate = self.request.gate
        assert gate is not None
        folder = gate.root.parent / "seen"
        folder.mkdir(mode=0o700, exist_ok=True)
        for name, limit in SNAPSHOT_FILES.items():
            copy_bounded(self.paths[name], folder / name, limit)
            self.seen[name] = folder / name
        if self.request.at_gate is not None:
            self.request.at_gate(self.started_at)
        gate.open()
        self.opened.set()
        log.info("the runner asked for the hidden images: the gate is open")
        with suppress(OSError):  # the runner may be gone
            os.write(self.answer_w, b"o")
