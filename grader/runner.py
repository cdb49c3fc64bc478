"""The notebook runner: one process per notebook, on the student's side of the trust boundary.

Started by :mod:`grader.executor` as ``python -m grader.runner JOB.json``. It starts a kernel,
runs the capture cell, every cell of the notebook, then the probe cell, and writes two files:
the executed notebook and ``facts.json`` (the cell timeline), rewritten after every cell so that
a run killed at its deadline still tells which cell was running. It never sees hidden labels.

The runner makes itself a child subreaper, so processes the kernel orphans (double forks,
``start_new_session``) stay its descendants; at its end it kills every one of them. The parent
enforces the hard deadline by killing this whole process tree from outside.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
KERNEL_DIR = Path(__file__).resolve().parent / "kernel"


def become_subreaper() -> None:
    """Make orphaned descendants re-parent to this process, and this process die with the
    grader that started it (Linux ``prctl``: child subreaper, parent-death signal SIGKILL; no-op
    elsewhere). Without the second, a grader killed mid-run (a Dask worker that died) would
    leave the runner grading on."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def kill_tree(pid: int, *, include_root: bool) -> int:
    """SIGKILL every descendant of ``pid`` (and ``pid`` itself if ``include_root``).

    Every process is stopped (SIGSTOP) before any is killed, the root first, so that none can
    fork away or, for the runner, write its files after its kernel died.

    Returns:
        how many processes were signalled.
    """
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0
    if include_root:
        try:
            root.send_signal(signal.SIGSTOP)
        except psutil.Error:
            pass
    stopped: dict[int, psutil.Process] = {}
    for _ in range(20):  # a process may fork between listing and stopping: list again
        try:
            fresh = [p for p in root.children(recursive=True) if p.pid not in stopped]
        except psutil.NoSuchProcess:
            break
        if not fresh:
            break
        for proc in fresh:
            try:
                proc.send_signal(signal.SIGSTOP)
            except psutil.Error:
                pass
            stopped[proc.pid] = proc
    victims = list(stopped.values()) + ([root] if include_root else [])
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=5)
    return len(victims)


def _prompt_kernel_manager() -> type:
    """jupyter_client's kernel manager, with its graceful shutdown checking every 10 ms.

    The shutdown itself is jupyter_client's (interrupt, ``shutdown_request``, wait, then SIGTERM
    and SIGKILL), so a kernel still runs its exit handlers (open files flushed); only the wait
    for the process polls every 10 ms instead of 100 ms (the shutdown of an idle kernel measured
    0.11 s with 100 ms polling, 0.07 s with 10 ms). ``_async_finish_shutdown`` is private:
    jupyter_client is pinned by constraints.txt; recheck it on an upgrade.
    """
    from jupyter_client.manager import AsyncKernelManager

    class PromptKernelManager(AsyncKernelManager):
        async def _async_finish_shutdown(self, waittime: float | None = None,
                                         pollinterval: float = 0.01,
                                         restart: bool = False) -> None:
            await super()._async_finish_shutdown(waittime=waittime, pollinterval=pollinterval,
                                                 restart=restart)

    return PromptKernelManager


def _make_client(nb: Any, job: dict[str, Any]) -> Any:
    from nbclient import NotebookClient

    cap = int(job["max_output_bytes"])

    class CappedClient(NotebookClient):
        """nbclient with a per-cell output budget (nbgrader's LimitOutput, applied live)."""

        used: dict[int, int] = {}

        def output(self, outs: list[Any], msg: dict[str, Any], display_id: Any, cell_index: int) -> Any:
            used = self.used.get(cell_index, 0)
            if used > cap:
                return None  # this cell's output was cut already
            content = msg.get("content", {})
            size = len(json.dumps(content, default=str))
            if used + size <= cap:
                self.used[cell_index] = used + size
                return super().output(outs, msg, display_id, cell_index)
            self.used[cell_index] = cap + 1
            if msg.get("msg_type") == "stream" and cap > used:
                kept = {**content, "text": str(content.get("text", ""))[: cap - used]}
                super().output(outs, {**msg, "content": kept}, display_id, cell_index)
            from nbformat.v4 import new_output

            outs.append(new_output("stream", name="stderr",
                                   text=f"\n[grader] output of this cell cut at {cap} bytes\n"))
            return None

    return CappedClient(
        nb,
        kernel_manager_class=_prompt_kernel_manager(),
        timeout=int(job["cell_timeout_s"]),
        kernel_name=job["kernel_name"],
        allow_errors=False,
        record_timing=True,
        interrupt_on_timeout=False,
        resources={"metadata": {"path": job["workdir"]}},
    )


class Timeline:
    """The cell timeline, written to ``facts.json`` after every change."""

    def __init__(self, path: Path, n_cells: int) -> None:
        self.path = path
        self.facts: dict[str, Any] = {
            "schema": 1,
            "status": "starting",
            "message": "",
            "failed_cell": None,
            "kernel_start_s": None,
            "cells": [
                {"index": i, "status": "not_run", "seconds": None, "error": None,
                 "execution_count": None}
                for i in range(n_cells)
            ],
            "probe": {"status": "not_run", "seconds": None, "message": ""},
        }
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.facts), encoding="utf-8")
        os.replace(tmp, self.path)


def _error_of(err: BaseException) -> dict[str, str]:
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    return {"ename": str(ename)[:200], "evalue": str(evalue)[:2000]}


def _run_hidden(client: Any, source: str, timeout_s: int) -> None:
    """Execute a cell that is not part of the notebook (capture, probe) in the same kernel."""
    import nbformat

    # as nbformat.v4.new_code_cell makes it, without validating it (see run)
    cell = nbformat.from_dict({"cell_type": "code", "id": "grader-hidden", "metadata": {},
                               "execution_count": None, "outputs": [], "source": source})
    client.nb.cells.append(cell)
    old_timeout, client.timeout = client.timeout, timeout_s
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    finally:
        client.timeout = old_timeout
        client.nb.cells.pop()


def run(job: dict[str, Any]) -> None:
    """Execute the job described in ``job`` (see :mod:`grader.executor` for its fields)."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    # written by the grader from a notebook it validated: not validated again here (the
    # validator's first use costs about 0.025 s); the grader validates what comes back
    nb = nbformat.v4.nbjson.reads(Path(job["notebook"]).read_text(encoding="utf-8"))
    timeline = Timeline(Path(job["facts"]), len(nb.cells))
    facts = timeline.facts
    client = _make_client(nb, job)
    started = time.monotonic()
    try:
        with client.setup_kernel(env=job["env"], cwd=job["workdir"]):
            facts["kernel_start_s"] = time.monotonic() - started
            _run_hidden(client, (KERNEL_DIR / "capture.py").read_text(), 120)
            facts["status"] = "running"
            for index, cell in enumerate(nb.cells):
                record = facts["cells"][index]
                if cell.cell_type != "code":
                    record["status"] = "skipped"
                    continue
                record["status"] = "running"
                timeline.write()
                t0 = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                    record["status"] = "ok"
                except CellTimeoutError as err:
                    record.update(status="timeout", error=_error_of(err))
                    facts.update(status="cell_timeout", failed_cell=index,
                                 message=f"cell {index} ran past {job['cell_timeout_s']} s")
                except CellExecutionError as err:
                    record.update(status="error", error=_error_of(err))
                    facts.update(status="cell_error", failed_cell=index,
                                 message=f"cell {index} raised {err.ename}: {err.evalue}"[:2000])
                finally:
                    record["seconds"] = time.monotonic() - t0
                    record["execution_count"] = cell.get("execution_count")
                    timeline.write()
                if record["status"] != "ok":
                    break
            if facts["status"] == "running":
                facts["status"] = "ok"
            if facts["status"] != "cell_timeout":
                _probe(client, job, facts)
    except DeadKernelError as err:
        facts.update(status="kernel_died", message=f"the kernel died: {err}"[:2000])
        for record in facts["cells"]:
            if record["status"] == "running":
                record.update(status="error", error={"ename": "DeadKernelError", "evalue": str(err)})
                facts["failed_cell"] = record["index"]
    except Exception as err:  # kernel could not start, zmq failure: reported, not raised
        facts.update(status="kernel_failed", message=f"{type(err).__name__}: {err}"[:2000])
    finally:
        timeline.write()
        Path(job["executed"]).write_text(nbformat.v4.nbjson.writes(nb), encoding="utf-8")


def _probe(client: Any, job: dict[str, Any], facts: dict[str, Any]) -> None:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    source = (KERNEL_DIR / "probe.py").read_text()
    call = f"\n_grader_probe(__import__('json').loads({json.dumps(job['probe'])!r}))\n"
    t0 = time.monotonic()
    facts["probe"]["status"] = "running"
    try:
        _run_hidden(client, source + call, int(job["probe_timeout_s"]))
        facts["probe"]["status"] = "ok"
    except CellTimeoutError:
        facts["probe"].update(status="timeout", message=f"ran past {job['probe_timeout_s']} s")
    except CellExecutionError as err:
        facts["probe"].update(status="error", message=f"{err.ename}: {err.evalue}"[:2000])
    finally:
        facts["probe"]["seconds"] = time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m grader.runner JOB.json``."""
    args = sys.argv[1:] if argv is None else argv
    become_subreaper()
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    try:
        run(job)
    finally:
        kill_tree(os.getpid(), include_root=False)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # its files are written and renamed into place; the interpreter's teardown (zmq threads,
    # nbclient's modules: about 0.05 s) would only delay the grader
    os._exit(status)
