"""Stage 3 of grading a notebook, *evidence*: read what a run left in its run folder.

The runner writes its files (``facts.json``, the executed notebook, ``probe.json``) on the
student's side of the trust boundary, so each is read bounded, as a regular file (no symbolic
link followed), and validated (:mod:`grader.evidence`); a record that cannot be this notebook's
run is no evidence. Nothing is unpickled or executed.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from grader.evidence import ExecutionFacts, ProbeOutput, RunnerFacts, cell_number
from grader.hints import network_hint

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.executor import RunRequest

__all__ = ["MAX_FACTS_BYTES", "MAX_NOTEBOOK_BYTES", "MAX_PROBE_BYTES", "cancelled_facts", "first_line",
           "injected_cell", "probe_output", "read_bounded", "run_facts", "with_network_hint"]

MAX_FACTS_BYTES = 10_000_000
MAX_PROBE_BYTES = 50_000_000
MAX_NOTEBOOK_BYTES = 200_000_000


def read_bounded(path: Path, limit: int) -> str | None:
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


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def injected_cell(nb: NotebookNode) -> int | None:
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


def _runner_facts(paths: dict[str, Path]) -> RunnerFacts | None:
    """The runner's timeline (``facts.json``, written on the student's side: bounded, validated),
    or None when it is missing, too large or not valid."""
    text = read_bounded(paths["facts.json"], MAX_FACTS_BYTES)
    if text is None:
        return None
    try:
        return RunnerFacts.model_validate_json(text)
    except ValidationError:
        return None


def run_facts(paths: dict[str, Path], wall_s: float, deadline_hit: bool, request: RunRequest,
           sources: tuple[str, ...], returncode: int | None,
           sandboxed: bool) -> ExecutionFacts:
    runner = _runner_facts(paths)
    if runner is None:
        tail = (read_bounded(paths["runner.log"], 10_000_000) or "")[-1500:]
        return ExecutionFacts(
            status="deadline" if deadline_hit else "runner_failed",
            message=(f"the run passed its {request.deadline_s} s deadline before the kernel "
                     "started" if deadline_hit else
                     f"the notebook runner exited with status {returncode}: {tail.strip()}"),
            failed_cell=None, cells=(), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
            probe=None, injected_cell=injected_cell(request.notebook))
    injected = injected_cell(request.notebook)
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


def cancelled_facts(paths: dict[str, Path], wall_s: float, request: RunRequest,
                     sources: tuple[str, ...], sandboxed: bool) -> ExecutionFacts:
    """The facts of a run stopped by its cancel: the runner's timeline (a running cell marked
    ``cancelled``) when it left a valid one, status ``cancelled`` either way."""
    runner = _runner_facts(paths)
    injected = injected_cell(request.notebook)
    if runner is not None and _inconsistent(runner, len(request.notebook.cells)) is not None:
        runner = None
    cells = list(runner.cells) if runner is not None else []
    failed, where = None, ""
    running = [c for c in cells if c.status == "running"]
    if running:
        failed = running[0].index
        cells[failed] = running[0].model_copy(update={"status": "cancelled"})
        number = cell_number(failed, injected)
        where = (" while the cell injected by the grader was running" if number is None
                 else f" while cell {number} was running")
    return ExecutionFacts(status="cancelled", message=f"the run was cancelled by the coach{where}",
                          failed_cell=failed, cells=tuple(cells), sources=sources, wall_s=wall_s,
                          sandboxed=sandboxed, probe=runner.probe if runner is not None else None,
                          injected_cell=injected)


def with_network_hint(facts: ExecutionFacts, executed: NotebookNode | None) -> ExecutionFacts:
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


def probe_output(path: Path, facts: ExecutionFacts) -> tuple[ProbeOutput | None, str | None]:
    if not os.path.lexists(path):
        reason = facts.probe.message if facts.probe and facts.probe.message else facts.message
        return None, f"the probe wrote nothing ({reason})" if reason else "the probe wrote nothing"
    text = read_bounded(path, MAX_PROBE_BYTES)
    if text is None:
        return None, (f"the probe's output is not a regular file of at most {MAX_PROBE_BYTES} "
                      "bytes")
    try:
        return ProbeOutput.model_validate_json(text), None
    except ValidationError as err:
        first = str(err).splitlines()
        return None, "the probe's output is invalid: " + " ".join(first[:3])[:500]
