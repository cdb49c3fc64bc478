"""Grading in a process of its own: each worker of :class:`grader.server.work.worker.WorkerPool`
hands its jobs to one child process, which runs the pipeline and renders the two scorecards
(:func:`grader.pipeline.job.grade_here`: the pipeline ``grader check`` runs).

Why: one Python process runs Python in one thread at a time (CPython's global interpreter lock).
Graded in the server's own threads, a job's Python work (opening the notebook, the imports of
scoring, the metrics, the loss curve drawn with matplotlib) holds that lock against the requests:
fifty uploads at once took 160 to 530 ms of the server's CPU depending on what the workers were
doing beside them (measured with ``benchmarks/server.py``'s upload phase). In a child it runs on
another core and never delays a page or an upload's acknowledgment.

The child is started with :mod:`multiprocessing`'s ``spawn`` method (a fresh interpreter: forking a
process with threads is unsafe) when the pool starts, and kept for every job of its worker. Status
lines come back on a queue; the coach's Cancel and the server's stop cross on an event the child's
watcher turns into the pipeline's own ``cancel``. The child ends when the server's process does
(the parent's sentinel, :func:`multiprocessing.parent_process`), and its runs with it: each runner
holds the child's lifeline (:func:`grader.execute.run.lifeline_fd`). A child that dies in a job (killed,
out of memory) fails that job with a :class:`~grader.core.errors.HarnessError`, and the next job starts
a new one.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from grader.core import HarnessError
from grader.server.cpus import unpin_child

if TYPE_CHECKING:
    from grader.core import Settings
    from grader.intake import Submission
    from grader.pipeline import Graded, GradeOptions

__all__ = ["GradingProcess"]

WATCH_S = 0.1  # how often the child looks at the cancel event, and the parent at the queue, in seconds
# a child dead this long while its job's future is still pending fails the job here: CPython's
# executor marks the pool broken at once nearly always, but once in a CI run (2026-12-08) a child
# killed mid-job left its job pending past 20 s (tests/server/test_server_child.py)
DEAD_GRACE_S = 5.0


class GradingProcess:
    """One child process that grades one job at a time for one worker thread.

    Args:
        nice: the child's CPU niceness (added to the server's: nice(2)); its runners and kernels
            inherit it, so the jobs it grades are given ``nice=0``.
    """

    def __init__(self, *, nice: int = 0) -> None:
        self.nice = nice
        self._context = multiprocessing.get_context("spawn")
        self._progress: Any = self._context.Queue()
        self._cancel: Any = self._context.Event()
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the child now (it boots and imports the pipeline while the worker waits for a job)."""
        self._executor().submit(_ready)

    def grade(self, submission: Submission, settings: Settings, options: GradeOptions, *,
              say: Callable[[str], None], cancel: threading.Event) -> Graded:
        """Grade ``submission`` in the child: its result, scorecard HTML, team scorecards (the team's
        two, :func:`grader.report.render.render_team_scorecards`) and what its cells printed
        (:attr:`grader.pipeline.job.Graded.printed`).

        ``options.on_progress`` and ``options.cancel`` are replaced: each status line of the child
        is passed to ``say`` (in this thread), and ``cancel``, once set, cancels the run as the
        pipeline's own cancel does.

        Raises:
            GraderError: as :func:`grader.pipeline.grade.grade_submission` raises it in the child.
            HarnessError: the child died during the job (killed, out of memory).
        """
        self._cancel.clear()
        _drain(self._progress, None)  # a line left by a job that ended before it was read
        sent = dataclasses.replace(options, on_progress=None, cancel=None, nice=0)
        pool = self._executor()
        future: Future[Graded] = pool.submit(_grade, submission, settings, sent)
        dead_since: float | None = None
        while not future.done():
            if cancel.is_set():
                self._cancel.set()
            try:
                say(self._progress.get(timeout=WATCH_S))
            except queue.Empty:
                pass
            if not _alive(pool):  # the executor notices a dead child itself, nearly always at once
                dead_since = dead_since if dead_since is not None else time.monotonic()
                if time.monotonic() - dead_since > DEAD_GRACE_S:
                    self.close()
                    raise HarnessError("the grading process ended in the middle of the job (killed by a signal, "
                                       "or out of memory?)", fix="re-grade the submission (the coach's page)")
        _drain(self._progress, say)
        try:
            return future.result()
        except BrokenProcessPool as err:
            self.close()
            raise HarnessError("the grading process ended in the middle of the job (killed by a signal, or out "
                               f"of memory?): {err}", fix="re-grade the submission (the coach's page)") from err

    def cancel(self) -> None:
        """Cancel the job running now, if any (the server is stopping)."""
        self._cancel.set()

    def close(self) -> None:
        """End the child (a job running in it is cancelled first: its runs end with it)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._cancel.set()
        processes = list(getattr(pool, "_processes", {}).values())  # the executor's own, to end them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.join(5)
            if proc.is_alive():
                proc.kill()

    def release(self) -> None:
        """End the child (:meth:`close`) for good and free the queue and the event it shared with
        the child now, so that their semaphores are unlinked and unregistered before the server
        exits: left to the interpreter's exit, multiprocessing's resource tracker (a process of its
        own that outlives a server stopped by a signal to its pid) sometimes reported them: "There
        appear to be 5 leaked semaphore objects to clean up at shutdown"."""
        self.close()
        progress, self._progress, self._cancel = self._progress, None, None
        if progress is not None:
            progress.close()
            progress.join_thread()
        del progress
        gc.collect()  # their finalizers (multiprocessing.util.Finalize) unlink and unregister each

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=self._context, initializer=_child_start,
                                             initargs=(self._progress, self._cancel, self.nice))
        return self._pool


def _alive(pool: ProcessPoolExecutor) -> bool:
    """Whether ``pool``'s child is running, or not started yet (the executor's own list of its
    processes: ``_processes``, a private attribute of CPython's :class:`ProcessPoolExecutor`)."""
    processes = getattr(pool, "_processes", None)
    return not processes or any(proc.is_alive() for proc in list(processes.values()))


def _drain(lines: Any, say: Callable[[str], None] | None) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if say is not None:
            say(line)


# ---------------------------------------------------------------- in the child

_CHILD: dict[str, Any] = {}


def _child_start(progress: Any, cancel: Any, nice: int) -> None:
    """The child's initializer: its queue and event, its niceness, every CPU the server was given
    (:func:`grader.server.cpus.unpin_child`: the kernels it starts inherit them), and its end with
    the parent."""
    _CHILD.update(progress=progress, cancel=cancel)
    unpin_child()
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_orphaned, args=(parent.sentinel,), name="grader-parent-watch", daemon=True).start()


def _orphaned(sentinel: int) -> None:
    wait([sentinel])  # readable once the parent has exited, however it ended
    os._exit(70)  # the runners see their lifeline close and end their kernels


def _ready() -> None:
    """The first job: it makes the executor start the child, which imports the pipeline and what
    scoring needs while it waits for a real job (:func:`grader.pipeline.prefetch.import_scoring`)."""
    from grader.pipeline import import_scoring

    import_scoring()


def _grade(submission: Submission, settings: Settings, options: GradeOptions) -> Graded:
    from grader.pipeline import grade_here

    cancel, done = threading.Event(), threading.Event()
    asked = _CHILD["cancel"]

    def watch() -> None:
        while not done.wait(WATCH_S):
            if asked.is_set():
                cancel.set()
                return

    watcher = threading.Thread(target=watch, name="grader-cancel-watch", daemon=True)
    watcher.start()
    try:
        graded = grade_here(submission, settings,
                            dataclasses.replace(options, on_progress=_CHILD["progress"].put, cancel=cancel), team=True)
        assert graded.team_scorecard is not None  # asked for: team=True
        return graded
    finally:
        done.set()
