"""Grading in a child process (grader/server/work/child.py): the pipeline's result and both scorecards
come back with the run's progress lines; an error of the pipeline crosses with its class and
message; the coach's cancel stops the run; a child killed in a job fails that job only; a child
ends with its server."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from grader.core.errors import DataError, HarnessError
from grader.core.settings import Settings
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions
from grader.server.work.child import GradingProcess
from tests.support.toy import GOOD_TOY_CELLS, write_submission

SLEEP = "import time\ntime.sleep(30)"


def _child_pid(child: GradingProcess, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list(getattr(child._pool, "_processes", {}) or {})
        if found:
            return int(found[0])
        time.sleep(0.05)
    raise AssertionError("no child process started")


def _grade_in_thread(child: GradingProcess, submission: object, settings: Settings, options: GradeOptions,
                     lines: list[str], cancel: threading.Event) -> dict[str, object]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = child.grade(submission, settings, options, say=lines.append, cancel=cancel)  # type: ignore[arg-type]
        except Exception as err:
            out["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    out["thread"] = thread
    return out


@pytest.mark.kernel
def test_a_child_grades_with_progress_and_an_error_crosses_with_its_class(make_toy: Callable[..., Settings],
                                                                          tmp_path: Path) -> None:
    settings = make_toy()
    child = GradingProcess()
    lines: list[str] = []
    slow = [*GOOD_TOY_CELLS[:2], "import time\ntime.sleep(2.5)", *GOOD_TOY_CELLS[2:]]
    submission = discover(write_submission(tmp_path / "subs", "red", slow))
    try:
        child.start()
        pid = _child_pid(child)
        graded = child.grade(submission, settings, GradeOptions(profile="ci"), say=lines.append,
                             cancel=threading.Event())
        result, html, team_html = graded.result, graded.scorecard, graded.team_scorecard
        assert result.notebooks[0].execution.status == "ok", result.notebooks[0].execution.message
        assert team_html is not None and "<html" in html and "<html" in team_html and html != team_html
        assert graded.printed is not None and "toy.ipynb" in graded.printed  # what the cells printed crosses too
        assert any(line.endswith(": import time") for line in lines), lines
        assert pid != os.getpid() and psutil.Process(pid).ppid() == os.getpid()

        gone = dataclasses.replace(settings, data_dir=tmp_path / "no-data")  # a fault of the pipeline itself
        (tmp_path / "no-data").mkdir()
        with pytest.raises(DataError) as raised:
            child.grade(submission, gone, GradeOptions(profile="ci"), say=lines.append, cancel=threading.Event())
        assert "no-data" in str(raised.value)
        assert _child_pid(child) == pid  # the same child goes on
    finally:
        child.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.kernel
def test_cancel_stops_the_run_and_a_killed_child_fails_its_job_only(make_toy: Callable[..., Settings],
                                                                   tmp_path: Path) -> None:
    settings = make_toy()
    child = GradingProcess()
    submission = discover(write_submission(tmp_path / "subs", "red", [*GOOD_TOY_CELLS[:2], SLEEP]))
    lines: list[str] = []
    cancel = threading.Event()
    try:
        running = _grade_in_thread(child, submission, settings, GradeOptions(profile="ci"), lines, cancel)
        deadline = time.monotonic() + 60
        while not any(line.endswith(": import time") for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        t0 = time.monotonic()
        cancel.set()
        running["thread"].join(20)  # type: ignore[attr-defined]
        assert time.monotonic() - t0 < 10
        result = running["result"].result  # type: ignore[attr-defined]
        assert result.notebooks[0].execution.status == "cancelled", result.notebooks[0].execution.message

        lines.clear()
        running = _grade_in_thread(child, submission, settings, GradeOptions(profile="ci"), lines, threading.Event())
        while not any(line.endswith(": import time") for line in lines) and time.monotonic() < deadline + 60:
            time.sleep(0.1)
        os.kill(_child_pid(child), signal.SIGKILL)  # out of memory, say
        running["thread"].join(20)  # type: ignore[attr-defined]
        assert isinstance(running.get("error"), HarnessError), running
        assert "the grading process ended in the middle of the job" in str(running["error"])

        quick = discover(write_submission(tmp_path / "subs", "blue", GOOD_TOY_CELLS))
        result = child.grade(quick, settings, GradeOptions(profile="ci"), say=lines.append,
                             cancel=threading.Event()).result  # a new child
        assert result.notebooks[0].execution.status == "ok"
    finally:
        child.close()


def test_a_child_ends_with_its_server(tmp_path: Path) -> None:
    """A server killed with SIGKILL runs no code at its end: its child, busy in a job, sees the
    parent's sentinel close and exits (and with it its runs' lifelines)."""
    script = textwrap.dedent("""
        import sys, time
        from grader.server.work.child import GradingProcess
        child = GradingProcess()
        child._executor().submit(time.sleep, 120)  # a job that would outlast the test
        while not child._pool._processes:
            time.sleep(0.05)
        print(list(child._pool._processes)[0], flush=True)
        time.sleep(120)
    """)
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert server.stdout is not None
        pid = int(server.stdout.readline())
        assert psutil.pid_exists(pid)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child outlived its server"
            time.sleep(0.05)
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="POSIX semaphores are files in /dev/shm on Linux")
def test_a_released_child_leaves_no_semaphore_behind() -> None:
    """``WorkerPool.stop`` releases each child: the semaphores of the queue and event shared with it
    are unlinked then, not left to the interpreter's exit (where multiprocessing's resource tracker
    sometimes reported "5 leaked semaphore objects" when a served event was stopped). Their own
    names are followed (other processes on the machine make and remove semaphores meanwhile)."""
    def semaphores(obj: object, depth: int = 2) -> list[str]:
        """The files of the semaphores ``obj`` holds (multiprocessing's SemLock objects within it)."""
        lock = getattr(obj, "_semlock", None)
        if lock is not None:
            return [f"/dev/shm/sem.{str(lock.name).lstrip('/')}"]
        found = []
        if depth > 0 and hasattr(obj, "__dict__"):
            for value in vars(obj).values():
                found += semaphores(value, depth - 1)
        return found

    child = GradingProcess()
    assert child._executor().submit(int, "7").result() == 7  # the child started and answered
    files = semaphores(child._progress) + semaphores(child._cancel)
    assert len(files) >= 4 and all(Path(f).exists() for f in files)  # the queue's locks, the event's
    child.release()
    assert [f for f in files if Path(f).exists()] == []
