"""Stage 3 of grading a notebook, *evidence*: read what a run left in its run folder.

The runner writes its files (``facts.json``, the executed notebook, ``probe.json``) on the
student's side of the trust boundary, so each is read bounded, as a regular file (no symbolic
link followed), and validated (:mod:`grader.evidence.records`); a record that cannot be this notebook's
run is no evidence. Nothing is unpickled or executed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from grader.evidence.hints import drift_hint, network_hint
from grader.evidence.records import ExecutionFacts, HiddenProbeOutput, ProbeOutput, RunnerFacts, cell_number

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["MAX_FACTS_BYTES", "MAX_NOTEBOOK_BYTES", "MAX_PROBE_BYTES", "SNAPSHOT_FILES", "cancelled_facts",
           "copy_bounded", "first_line", "hidden_output", "injected_cell", "probe_output", "read_bounded",
           "run_facts", "with_hint", "without_folders"]

MAX_FACTS_BYTES = 10_000_000
MAX_PROBE_BYTES = 50_000_000
MAX_NOTEBOOK_BYTES = 200_000_000
MAX_LOG_BYTES = 10_000_000
# the run folder's files that may reach a team, copied when the gate of the hidden images opens
# (grader.execute.watch.GateWatch), each with the most bytes kept
SNAPSHOT_FILES = {"facts.json": MAX_FACTS_BYTES, "executed.ipynb": MAX_NOTEBOOK_BYTES,
                  "probe.json": MAX_PROBE_BYTES, "runner.log": MAX_LOG_BYTES}


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


def copy_bounded(source: Path, target: Path, limit: int) -> None:
    """Copy the regular file ``source`` (written on the student's side; no symbolic link
    followed) to ``target``, or nothing when it is missing, not a regular file or over
    ``limit`` bytes (a file of ``runner.log``'s kind keeps its last ``limit`` bytes instead)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return
        if st.st_size > limit:
            if source.suffix != ".log":
                return
            fh.seek(st.st_size - limit)
        data = fh.read(limit)
    target.write_bytes(data)


def hidden_output(path: Path, *, deadline_hit: bool) -> HiddenProbeOutput:
    """The probe's hidden step (``hidden.json``): validated, or, when it is missing or not
    valid, a status of ``timeout`` (the run's deadline stopped it) or ``error``."""
    text = read_bounded(path, MAX_PROBE_BYTES)
    if text is not None:
        try:
            return HiddenProbeOutput.model_validate_json(text)
        except ValidationError:
            pass
    return HiddenProbeOutput.model_validate({"schema": 1, "status": "timeout" if deadline_hit else "error"})


_FOLDERS = re.compile(r"(?<![\w.~:/])/(?:[^\s/'\":]+/)+")


def without_folders(text: str) -> str:
    """``text`` with the folders of every absolute path cut to ``…/``: a message a team reads
    names no folder of the server's (its temporary folders, the gate of the hidden images, the
    grader's installation); the file's own name is kept."""
    return _FOLDERS.sub("…/", text)


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def injected_cell(nb: NotebookNode) -> int | None:
    """Index of the cell of parameters the grader injected (tagged ``injected-parameters``)."""
    from grader.intake import INJECTED_TAG

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


def run_facts(paths: dict[str, Path], wall_s: float, deadline_hit: bool, notebook: NotebookNode, deadline_s: float,
              sources: tuple[str, ...], returncode: int | None, sandboxed: bool) -> ExecutionFacts:
    """The facts of a finished or stopped run of ``notebook`` (parameters injected) from the
    runner's timeline in ``paths``, checked against the notebook; ``deadline_s`` the run's hard
    limit in seconds, named in the messages of a run that passed it."""
    runner = _runner_facts(paths)
    if runner is None:
        tail = (read_bounded(paths["runner.log"], 10_000_000) or "")[-1500:]
        return ExecutionFacts(
            status="deadline" if deadline_hit else "runner_failed",
            message=(f"the run passed its {deadline_s} s deadline before the kernel "
                     "started" if deadline_hit else
                     f"the notebook runner exited with status {returncode}: {without_folders(tail.strip())}"),
            failed_cell=None, cells=(), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
            probe=None, injected_cell=injected_cell(notebook))
    injected = injected_cell(notebook)
    problem = _inconsistent(runner, len(notebook.cells))
    if problem is not None:  # damaged, or forged by the notebook's code: no evidence
        return ExecutionFacts(
            status="runner_failed",
            message=("the record of the run (facts.json) does not match the notebook: "
                     f"{problem}; it was damaged or rewritten by the notebook's code, so the run "
                     "cannot be graded"),
            failed_cell=None, cells=(), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
            probe=None, injected_cell=injected)
    status, failed = runner.status, runner.failed_cell
    # a cell's error text may name the grader's folders (its installation's site-packages, the
    # sandbox's working copy), as may the runner's own error: every audience reads it without them
    message = without_folders(runner.message)
    cells = [c.model_copy(update={"error": {k: without_folders(str(v)) for k, v in c.error.items()}})
             if c.error else c for c in runner.cells]
    if deadline_hit:
        status = "deadline"
        running = [c for c in cells if c.status == "running"]
        if running:
            failed = running[0].index
            cells[failed] = running[0].model_copy(update={"status": "timeout"})
            number = cell_number(failed, injected)
            name = "the cell injected by the grader" if number is None else f"cell {number}"
            message = (f"{name} was still running at the {deadline_s} s deadline; "
                       "the run was stopped")
        elif runner.probe.status == "running":
            message = f"the probe was still running at the {deadline_s} s deadline"
        else:
            message = f"the run passed its {deadline_s} s deadline"
    elif status in ("starting", "running"):
        status = "runner_failed"
        message = f"the notebook runner stopped early (exit status {returncode})"
    restore = (runner.restore.model_copy(update={"message": without_folders(runner.restore.message)})
               if runner.restore else None)
    return ExecutionFacts(status=status, message=message, failed_cell=failed,
                          cells=tuple(cells), sources=sources, wall_s=wall_s, sandboxed=sandboxed,
                          probe=runner.probe, injected_cell=injected, restore=restore)


def cancelled_facts(paths: dict[str, Path], wall_s: float, notebook: NotebookNode,
                    sources: tuple[str, ...], sandboxed: bool) -> ExecutionFacts:
    """The facts of a run stopped by its cancel: the runner's timeline (a running cell marked
    ``cancelled``) when it left a valid one, status ``cancelled`` either way."""
    runner = _runner_facts(paths)
    injected = injected_cell(notebook)
    if runner is not None and _inconsistent(runner, len(notebook.cells)) is not None:
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


def with_hint(facts: ExecutionFacts, executed: NotebookNode | None) -> ExecutionFacts:
    """``facts`` with a hint after a cell error's message: :func:`grader.evidence.hints.network_hint`
    when the error shows a failed download, else :func:`grader.evidence.hints.drift_hint` when it is
    a library's drift or a package not installed. Reads the error's name and text from the runner's record and
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
    ename, evalue = str(error.get("ename", "")), str(error.get("evalue", ""))
    hint = network_hint(ename, evalue, "\n".join(text)) or drift_hint(ename, evalue, sandboxed=facts.sandboxed)
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
