"""A batch on a Dask cluster: each job one task, its status lines sent back as Dask events.

The client submits one task per job (a GPU job asks for the workers' ``GPU`` resource); a task
executes the notebooks on a worker (:func:`grader.pipeline.grade.execute_submission`) and this
process scores them, or the worker grades the whole submission (``CohortOptions.scoring``).

Method: Dask ``distributed`` futures with worker resources
(https://distributed.dask.org/en/stable/resources.html), each job's status lines (its running
cell) sent back as Dask events on a topic of its own
(https://distributed.dask.org/en/stable/logging.html).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from grader.core import GraderError, Settings, UsageError, worker_data_dir
from grader.intake import Submission
from grader.pipeline.grade import (
    ExecutedSubmission,
    GradeOptions,
    execute_submission,
    grade_submission,
    score_submission,
)
from grader.pipeline.job import CohortOptions, Events, Graded, Job, Outcome, grade_job
from grader.pipeline.resources import gpu_challenges, longest_deadline, needs_gpu, worker_kernel_env
from grader.score import SubmissionResult

__all__ = ["DASK_PROGRESS_EVERY_S", "MAX_STATUS_CHARS", "PROGRESS_TOPIC", "DaskProgress", "run_dask"]

log = logging.getLogger(__name__)

# a Dask job's status lines travel as Dask events on the topic "<this>-<task key>", one per job
PROGRESS_TOPIC = "grader-progress"
DASK_PROGRESS_EVERY_S = 0.5  # the most often a Dask job sends a status line, in seconds
MAX_STATUS_CHARS = 300  # the longest status line that crosses back (a cell's line is at most 120)


def _remote(submission: Submission, settings: Settings, options: dict[str, Any],
            progress_topic: str | None = None) -> SubmissionResult:
    """Runs on a Dask worker: grade one submission with the worker's Python and sandbox. The
    :class:`~grader.intake.submissions.Submission` (a frozen dataclass of paths and strings) crosses
    pickled; its paths must exist on the worker (a shared file system, or a LocalCluster).
    Its status lines go to the client on ``progress_topic`` (:class:`DaskProgress`)."""
    opts, local = _on_worker(settings, options, progress_topic)
    return grade_submission(submission, local, opts)


def _remote_execute(submission: Submission, settings: Settings, options: dict[str, Any],
                    progress_topic: str | None = None) -> ExecutedSubmission:
    """Runs on a Dask worker: execute one submission's notebooks
    (:func:`grader.pipeline.grade.execute_submission`), scoring nothing: the record of the runs goes back
    to the client, which holds the labels (``CohortOptions.scoring == "here"``). Its status
    lines go to the client on ``progress_topic`` (:class:`DaskProgress`)."""
    opts, local = _on_worker(settings, options, progress_topic)
    return execute_submission(submission, local, opts).portable()


def _on_worker(settings: Settings, options: dict[str, Any],
               progress_topic: str | None = None) -> tuple[GradeOptions, Settings]:
    """The grading options and settings of a task on this Dask worker: its sandbox, kernel
    variables and Python; the client's folders, but for the data folder where the worker was
    started with ``GRADER_WORKER_DATA_DIR`` (an ingestion folder, :mod:`grader.data.ingestion`);
    with ``progress_topic``, ``on_progress`` sends the status lines to the client."""
    import sys

    from grader.sandbox import resolve_sandbox

    options = dict(options)
    sandbox = resolve_sandbox(options.pop("sandbox"))
    progress = DaskProgress(progress_topic) if progress_topic else None
    opts = GradeOptions(**options, sandbox=sandbox, kernel_env=worker_kernel_env(), on_progress=progress)
    local = dataclasses.replace(settings, python=sys.executable, data_dir=worker_data_dir() or settings.data_dir)
    if progress is not None:
        progress("started on a Dask worker")
    return opts, local


class DaskProgress:
    """On a Dask worker: ``GradeOptions.on_progress`` of one task, sending each status line to
    the client as a Dask event on the task's own topic, at most one every
    :data:`DASK_PROGRESS_EVERY_S` seconds (a line sooner is dropped: the next one replaces it).
    A line that cannot be sent is logged and dropped: progress never fails the grading.

    Method: Dask's structured logs (https://distributed.dask.org/en/stable/logging.html):
    ``Worker.log_event``, which the scheduler passes to the clients subscribed with ``Client.subscribe_topic``; from a
    task's thread it is queued on the worker's event loop, never blocking the task. The
    scheduler keeps the last ``distributed.admin.low-level-log-length`` (1,000) events of each
    topic: a job sends one line per cell change, a few dozen in all.
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.sent_at = -DASK_PROGRESS_EVERY_S
        self.warned = False

    def __call__(self, status: str) -> None:
        now = time.monotonic()
        if now - self.sent_at < DASK_PROGRESS_EVERY_S:
            return
        self.sent_at = now
        try:
            import distributed

            worker: Any = distributed.get_worker()
            worker.log_event(self.topic, str(status)[:MAX_STATUS_CHARS])
        except Exception as err:  # no worker, a closing one: the grading goes on without progress
            if not self.warned:
                log.warning("could not send the progress of %s to the Dask client: %s", self.topic, err)
            self.warned = True



def run_dask(todo: list[tuple[Job, str]], settings: Settings, options: GradeOptions,
              cohort: CohortOptions, events: Events,
              done: Callable[[Outcome, str], None]) -> None:
    """Run the jobs of ``todo`` (each with its cache key) as tasks on the Dask scheduler
    ``cohort.scheduler``, calling ``done`` with each outcome and its key as the job ends (a job
    with no result in ``cohort.dask_timeout_s`` is cancelled and fails). On KeyboardInterrupt,
    or an error of ``done``, the tasks still out are cancelled and the exception raised.

    Raises:
        UsageError: no scheduler given, one that cannot be reached, or GPU jobs no worker can take.
    """
    import distributed

    dask: Any = distributed  # untyped library

    if cohort.scheduler is None:
        raise UsageError("--executor dask needs --scheduler ADDRESS (tcp://host:8786)")
    try:
        client: Any = dask.Client(cohort.scheduler, timeout=30)
    except (OSError, TimeoutError) as err:
        raise UsageError(f"cannot reach the Dask scheduler {cohort.scheduler}: {err}",
                         fix="start one with `dask scheduler` and workers with "
                         "`dask worker ADDRESS`, or check the address") from err
    futures: dict[Any, tuple[Job, str]] = {}  # before anything can be interrupted
    try:
        every = options.device == "cuda" or bool(cohort.gpus)
        needing = gpu_challenges(settings, options.profile)
        gpu_jobs = {job.folder for job, _ in todo if every or needs_gpu(job.submission, settings, options, needing)}
        if gpu_jobs:
            workers = client.scheduler_info()["workers"].values()
            if not any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers):
                raise UsageError("GPU jobs, but no Dask worker offers the GPU resource",
                                 fix="start GPU workers with `dask worker ADDRESS --resources "
                                 "GPU=1` (one per GPU, with CUDA_VISIBLE_DEVICES set)")
        plain = {"profile": options.profile, "challenge": options.challenge,
                 "device": options.device, "keep_workdir": options.keep_workdir,
                 "sandbox": options.sandbox.requested, "practice": options.practice}
        started: dict[Any, float] = {}
        relay = _ProgressRelay(client, events)
        for job, key in todo:
            gpu = job.folder in gpu_jobs  # on a GPU worker, whose kernel is told DEVICE=cuda
            task = f"grade-{job.folder}-{os.urandom(4).hex()}"
            topic = relay.subscribe(task)  # before the task exists: no line of it is missed
            future = client.submit(
                _remote_execute if cohort.scoring == "here" else _remote, job.submission, settings,
                dict(plain, device="cuda") if gpu else dict(plain), topic,
                resources={"GPU": 1} if gpu else None, pure=False, key=task)
            futures[future] = (job, key)
            started[future] = time.monotonic()
            events.started(job, None)
            relay.follow(topic, job)
        longest = longest_deadline(settings, options.profile)
        deadline = {f: started[f] + (cohort.dask_timeout_s
                                     or 2 * len(j.submission.notebooks) * longest + 600)
                    for f, (j, _) in futures.items()}
        pending = set(futures)
        finished = dask.as_completed(list(futures))
        while pending:
            batch = finished.next_batch(block=False) if finished.has_ready() else []
            for future in batch:
                pending.discard(future)
                job, key = futures[future]
                relay.stop(future.key)  # no line of a job after its outcome
                # outside the try: an error of done() (writing the outputs) is not the job's,
                # and stops the run as on the local path; done() runs once per job
                done(_dask_outcome(job, future, settings, options, seconds=time.monotonic() - started[future],
                                   score_here=cohort.scoring == "here"), key)
            now = time.monotonic()
            for future in [f for f in pending if now > deadline[f]]:
                pending.discard(future)
                job, key = futures[future]
                relay.stop(future.key)
                future.cancel()
                done(Outcome(job, None, seconds=now - started[future], error=(
                    f"no result from the Dask cluster after {now - started[future]:.0f} s: no "
                    "worker took the job, or it hung; it was cancelled")), key)
            if not batch:
                time.sleep(0.2)
    except BaseException:  # Ctrl-C, or an error of done(): the jobs still out are not wanted
        try:
            client.cancel(list(futures))
        except Exception as err:  # a scheduler already gone must not hide why the run stopped
            log.warning("could not cancel the Dask jobs still out: %s", err)
        raise
    finally:
        client.close()


class _ProgressRelay:
    """On the Dask client: the status lines each job's task sends (:class:`DaskProgress`), passed
    to ``events.progress`` while the job runs. A topic per task (:data:`PROGRESS_TOPIC` and the
    task's key), so that two jobs, or two clients' jobs, never mix.

    The handlers run on the client's event loop thread; a lock keeps a line from reaching
    ``events`` after :meth:`stop` (the job's outcome). An error of the handler or of ``events`` is
    logged, never raised: progress never fails the grading.

    Method: Dask's structured logs, ``Client.subscribe_topic`` and ``unsubscribe_topic``
    (https://distributed.dask.org/en/stable/logging.html).
    """

    def __init__(self, client: Any, events: Events) -> None:
        self.client, self.events = client, events
        self.jobs: dict[str, Job] = {}  # topic -> its running job
        self.lock = threading.Lock()

    def subscribe(self, task: str) -> str:
        """Subscribe to the topic of the task keyed ``task`` and return the topic; its lines are
        dropped until :meth:`follow` names their job."""
        topic = f"{PROGRESS_TOPIC}-{task}"

        def handler(event: Any) -> None:
            self._line(topic, event)

        self.client.subscribe_topic(topic, handler)
        return topic

    def follow(self, topic: str, job: Job) -> None:
        """Pass the lines of ``topic`` on as ``job``'s progress."""
        with self.lock:
            self.jobs[topic] = job

    def stop(self, task: str) -> None:
        """No more lines of the task keyed ``task``: its job has an outcome."""
        topic = f"{PROGRESS_TOPIC}-{task}"
        with self.lock:
            self.jobs.pop(topic, None)
        try:
            self.client.unsubscribe_topic(topic)
        except Exception as err:  # a client already closing: its subscriptions end with it
            log.debug("could not unsubscribe from %s: %s", topic, err)

    def _line(self, topic: str, event: Any) -> None:
        try:
            _, status = event  # (the scheduler's time, the message)
            if not isinstance(status, str):
                return
            with self.lock:
                job = self.jobs.get(topic)
                if job is not None:
                    self.events.progress(job, status[:MAX_STATUS_CHARS])
        except Exception:  # the display's fault, or a malformed event: the job goes on
            log.warning("the progress of %s was not shown", topic, exc_info=True)



def _dask_outcome(job: Job, future: Any, settings: Settings, options: GradeOptions, *, seconds: float,
                  score_here: bool) -> Outcome:
    """The outcome of ``job``'s finished Dask ``future``, through the one per-job step
    (:func:`grader.pipeline.job.grade_job`, with no cache: the batch looked every job up before
    any was sent, and stores each result as it writes it), whose run is the future's: its result
    (with ``score_here``, an :class:`~grader.pipeline.grade.ExecutedSubmission` scored here by
    :func:`grader.pipeline.grade.score_submission` with this process's ``settings`` and
    ``options``) with the scorecard rendered here, as :func:`grader.pipeline.job.grade_here` does,
    so that a failure to score or render stops this job only; or the remote error that stopped it
    (a :class:`~grader.core.errors.GraderError` keeps its exit status)."""
    try:
        done = future.result()
    except GraderError as err:
        return Outcome.fault(job, err, seconds=seconds)
    except Exception as err:  # a remote error of any kind fails this job only
        return Outcome(job, None, seconds=seconds, error=_dask_error(err), error_type=type(err).__name__)

    def finish(submission: Submission, settings: Settings, options: GradeOptions) -> Graded:
        try:
            result: SubmissionResult = (score_submission(done, submission, settings, options) if score_here
                                        else done)
        except Exception as err:  # a fault of the setup, or a bug of the grader's: this job only
            if not isinstance(err, GraderError):
                log.exception("scoring %s failed", submission.name)
            raise
        try:
            from grader.report import render_scorecard

            return Graded(result, render_scorecard(result))
        except Exception:  # a bug of the grader's: this job only, with its traceback logged
            log.exception("rendering the scorecard of %s failed", submission.name)
            raise

    try:
        graded = grade_job(job.submission, settings, options, run=finish)
    except Exception as err:
        return Outcome.fault(job, err, seconds=seconds)
    return Outcome(job, graded.result, scorecard=graded.scorecard, seconds=seconds)


def _dask_error(err: BaseException) -> str:
    name = type(err).__name__
    if name == "KilledWorker":
        return ("the Dask worker grading it died (every worker that tried it died); see the "
                f"workers' logs: {err}")
    return f"{name}: {err}"[:2000]
