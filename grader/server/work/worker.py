"""Worker threads that grade the queued submissions of the event server.

Each thread loops: :meth:`Store.claim` a job (once the uploads arriving together have settled:
:data:`SETTLE_S`) -> copy its upload into a workspace under
``<state>/work/`` with its original suffix -> :func:`grader.intake.submissions.intake_upload` ->
:func:`grader.pipeline.job.grade_job` (the result cache, then the pipeline ``grader check`` runs,
sandbox and limits included, and the scorecards; a practice check with ``practice``, scored on
the public practice split as ``grader check --practice`` scores it) -> :meth:`Store.finish`. The pipeline and the
scorecards run in the worker's own child process (:mod:`grader.server.work.child`: the server's
interpreter stays free for the pages), or as a Dask task with a scheduler. Beside the run, a
heartbeat renews the job's lease and records its progress (at most once a second); when the
store says the lease is lost or the coach cancelled, the run is stopped through
``GradeOptions.cancel``. An idle worker puts back in the queue, once a lease length, the jobs
whose lease expired (their worker died). A configuration fault (:class:`~grader.core.errors.GraderError`) fails the
job with its message; any other exception is logged and fails that job only; the thread goes on.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grader.core import GraderError, Settings
from grader.pipeline import GradeOptions
from grader.server.store import DatabaseUnavailable, Store, SubmissionRow
from grader.server.work.child import GradingProcess

if TYPE_CHECKING:
    from grader.intake import Submission
    from grader.score import SubmissionResult

__all__ = ["RunningJob", "WorkerPool"]

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0  # the most often a job's progress is written to the database
# uploads first: a worker claims a job once no submission has been queued for SETTLE_S seconds, or
# SETTLE_MAX_S after it first held back (a job's start is Python work in the server's interpreter:
# the claim, the upload unpacked, its cache key; issue 28). Grading starts a tenth of a second later,
# fifty uploads at once are acknowledged without waiting for it
SETTLE_S = 0.1
SETTLE_MAX_S = 1.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PATH = re.compile(r"(?<![\w.])/[^\s'\":,)]*")  # a server path in an error's text: never shown to a team
_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")


@dataclass(frozen=True)
class RunningJob:
    """A job a worker of this process is grading (for the coach's page).

    Attributes:
        submission_id: the submission.
        worker: the worker's name (``host:pid:N``).
        team: the team's name.
        challenge: the challenge id.
        since: when the worker took it (UTC).
        progress: the pipeline's last status line (the current cell).
    """

    submission_id: int
    worker: str
    team: str
    challenge: str
    since: datetime
    progress: str


class _Live:
    """What a worker knows of the job it runs; written by the pipeline's thread, read by the
    heartbeat and :meth:`WorkerPool.running`."""

    def __init__(self, job: SubmissionRow, worker: str) -> None:
        self.job, self.worker = job, worker
        self.since = datetime.now(UTC)
        self.text = "starting"
        self.cancel = threading.Event()
        self.done = threading.Event()

    def say(self, status: str) -> None:
        self.text = status


class WorkerPool:
    """``workers`` threads grading the store's queue (of every event in it).

    Args:
        store: the server's store.
        settings: the project, data and cache folders (as ``grader check`` resolves them).
        options: how to grade (profile, device, sandbox); ``challenge``, ``on_progress`` and
            ``cancel`` are set per job. With more than one worker each kernel gets
            ``cores // workers`` threads (``OMP_NUM_THREADS`` and friends), as ``--jobs`` does.
        workers: threads, at least 1.
        lease_s: how long a claimed job stays this worker's without a heartbeat, in seconds.
        poll_s: how often an idle worker looks at the queue, in seconds.
        gpus: GPU ids; worker n's kernels see only ``gpus[(n - 1) % len(gpus)]``
            (``CUDA_VISIBLE_DEVICES``), as ``grader check --gpus`` hands out slots. With a
            ``scheduler``, GPU jobs go to Dask workers offering the ``GPU`` resource instead.
            Without either, the workers leave the jobs of challenges whose profile needs a GPU
            (:attr:`gpu_challenges`) in the queue, for a server with GPUs.
        scheduler: a Dask scheduler's address (``tcp://host:8786``): each job runs there as one
            task (``grader check --executor dask``); None grades in each worker's child process.
        scoring: with a scheduler, where the hidden labels are: ``here`` (the Dask workers only
            execute; this process scores) or ``workers`` (:class:`grader.pipeline.job.CohortOptions`).

    Raises:
        ValueError: ``workers`` below 1 or ``lease_s`` not positive.
    """

    def __init__(self, store: Store, settings: Settings, options: GradeOptions, *, workers: int = 1,
                 lease_s: float = 60, poll_s: float = 0.5, gpus: Sequence[str] = (),
                 scheduler: str | None = None, scoring: Literal["here", "workers"] = "here") -> None:
        from grader.pipeline import ResultCache, gpu_challenges, kernel_env

        if workers < 1 or lease_s <= 0:
            raise ValueError(f"workers={workers}, lease_s={lease_s}: need workers >= 1 and lease_s > 0")
        self.store, self.settings, self.workers, self.lease_s, self.poll_s = store, settings, workers, lease_s, poll_s
        self.options = options
        self._prefix = f"{socket.gethostname()}:{os.getpid()}"
        # each worker's kernels: cores // workers threads, as --jobs gives; with GPUs, worker n
        # has GPU n (round robin: one submission per GPU when workers == len(gpus))
        self._kernel_env = {} if options.kernel_env else {
            f"{self._prefix}:{n}": kernel_env(gpus[(n - 1) % len(gpus)] if gpus else None, workers)
            for n in range(1, workers + 1)}
        self._cache = ResultCache(settings)
        self.scheduler, self.gpus, self.scoring = scheduler, tuple(gpus), scoring
        self.gpu_challenges = gpu_challenges(settings, options.profile)
        # threads without a GPU leave the jobs that need one to workers with one (another
        # server's, started with --gpus); with Dask, the scheduler sends those to GPU workers
        self._skip = frozenset() if scheduler or gpus else self.gpu_challenges
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._queued_at = 0.0  # time.monotonic() of the last wake(): a submission queued
        self._threads: list[threading.Thread] = []
        self._live: dict[str, _Live] = {}
        self._children: dict[str, GradingProcess] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the worker threads (daemon threads: a killed server leaves its jobs running in
        the database, and the next start requeues them)."""
        if self._threads:
            return
        self._stopping.clear()
        for n in range(1, self.workers + 1):
            worker = f"{self._prefix}:{n}"
            if self.scheduler is None:  # each worker grades in a process of its own (grader.server.work.child)
                child = self._children[worker] = GradingProcess(nice=self.options.nice)
                child.start()
            thread = threading.Thread(target=self._loop, args=(worker,), name=f"grader-worker-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """Look at the queue now (call after a submission is queued): once the uploads arriving
        together have settled (:data:`SETTLE_S`, at most :data:`SETTLE_MAX_S`)."""
        self._queued_at = time.monotonic()
        self._wake.set()

    def _settle(self) -> None:
        """Wait until no submission was queued for :data:`SETTLE_S` seconds, at most
        :data:`SETTLE_MAX_S` (or the pool stops)."""
        until = time.monotonic() + SETTLE_MAX_S
        while (quiet := self._queued_at + SETTLE_S - time.monotonic()) > 0 and time.monotonic() < until:
            if self._stopping.wait(min(quiet, until - time.monotonic())):
                return

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Stop the workers: running notebooks are killed and their jobs put back in the queue
        (their attempt not counted); waits up to ``timeout_s`` seconds for the threads."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            live = list(self._live.values())
        for job in live:
            job.cancel.set()
        for child in self._children.values():
            child.cancel()  # the server is going: the runs in the children end now (none runs here)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        for child in self._children.values():
            child.release()
        self._children = {}

    def running(self) -> list[RunningJob]:
        """The jobs this pool is grading now, oldest first."""
        with self._lock:
            live = list(self._live.values())
        return sorted((RunningJob(submission_id=j.job.id, worker=j.worker, team=j.job.team_name,
                                  challenge=j.job.challenge, since=j.since, progress=j.text) for j in live),
                      key=lambda r: r.since)

    def _loop(self, worker: str) -> None:
        swept = time.monotonic()
        while not self._stopping.is_set():
            try:
                if time.monotonic() - swept > self.lease_s:  # jobs of workers that died since the start
                    swept = time.monotonic()
                    self.store.requeue_stale()
                self._settle()  # uploads first (SETTLE_S)
                job = self.store.claim(worker, lease_s=self.lease_s, skip_challenges=self._skip)
            except DatabaseUnavailable as err:  # away for a moment: one line, and try again
                log.warning("worker %s could not claim a job: %s", worker, err.message)
                job = None
            except Exception:
                log.exception("worker %s could not claim a job", worker)
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            try:
                self._run(job, worker)
            except Exception:  # never let one job end the thread
                log.exception("worker %s: submission %s", worker, job.id)

    def _run(self, job: SubmissionRow, worker: str) -> None:
        live = _Live(job, worker)
        with self._lock:
            self._live[worker] = live
        beat = threading.Thread(target=self._heartbeat, args=(live,), name=f"{worker}-heartbeat", daemon=True)
        beat.start()
        workspace = Path(tempfile.mkdtemp(prefix=f"job{job.id}-", dir=self.store.state_dir / "work"))
        try:
            self._grade(job, worker, live, workspace)
        except DatabaseUnavailable as err:  # the job stays running: its lease expires and it is requeued
            log.warning("submission %s: the database is away (%s); the job goes back to the queue when its "
                        "lease expires", job.id, err.message)
        except GraderError as err:
            self._end(job, worker, live, str(err))
        except Exception as err:
            if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
                log.error("submission %s: the server's disk is full: %s", job.id, err)
                self._end(job, worker, live, f"the server's disk is full ({err}), under its state folder "
                          f"{self.store.state_dir}: the job could not be graded; free space, then re-grade it "
                          "(the coach's page)")
                return
            log.exception("submission %s failed in the grader", job.id)
            self._end(job, worker, live, f"internal error of the grader ({type(err).__name__}: "
                      f"{_PATH.sub('<a server path>', str(err))}); the server's log has its traceback")
        finally:
            live.done.set()
            beat.join()
            with self._lock:
                self._live.pop(worker, None)
            shutil.rmtree(workspace, ignore_errors=True)

    def _grade(self, job: SubmissionRow, worker: str, live: _Live, workspace: Path) -> None:
        from grader.core import challenge_ids
        from grader.intake import intake_upload
        from grader.pipeline import Graded, grade_job
        from grader.report import render_scorecard, render_team_scorecards

        folder = workspace / "upload"
        folder.mkdir()
        target = folder / _upload_name(job.filename)
        shutil.copyfile(self.store.upload_path(job.upload_sha256), target)
        submission = intake_upload(target, workspace=workspace, name=job.team_name,
                                   challenges=challenge_ids(self.settings.project_dir), explicit=job.challenge)
        # a practice check is scored on the public practice split (grader check --practice): the
        # pipeline labels its result and scorecards practice, and caches it apart
        options = dataclasses.replace(self.options, challenge=job.challenge, practice=job.practice,
                                      on_progress=live.say, cancel=live.cancel,
                                      kernel_env=self._kernel_env.get(worker, self.options.kernel_env))

        def run(submission: Submission, settings: Settings, options: GradeOptions) -> Graded:
            if self.scheduler is None:  # in the worker's child process, which renders too
                return self._children[worker].grade(submission, settings, options, say=live.say, cancel=live.cancel)
            result = self._on_dask(submission, options, live)
            return Graded(result, render_scorecard(result), render_team_scorecards(result))

        # the cache of grader check: the same team's unchanged upload is not run again (a
        # coach's re-grade always runs); a run the coach or the lease cancelled is kept nowhere
        graded = grade_job(submission, self.settings, options, cache=self._cache, reuse=job.regrade_of is None,
                           team=True, run=run)
        if graded.cached:
            live.say("unchanged since an earlier grading: its result is reused")
        if graded.stopped:
            self._end(job, worker, live, "cancelled")
            return
        result, team_html = graded.result, graded.team_scorecard
        assert team_html is not None  # asked for: team=True
        save_code(self.store.state_dir, job.id, submission)
        save_printed(self.store.state_dir, job.id, graded.printed)
        if not self.store.finish(job.id, worker, result_json=result.model_dump_json(), scorecard_html=graded.scorecard,
                                 team_scorecard_html=team_html, verdict=result.verdict, score=result.score,
                                 max_score=result.max_score):
            log.warning("submission %s: result dropped (lease lost or a result exists)", job.id)

    def _on_dask(self, submission: Submission, options: GradeOptions, live: _Live) -> SubmissionResult:
        """Grade ``submission`` as one task of :func:`grader.pipeline.batch.grade_cohort` on the Dask
        cluster (the submission's files must be at the same path on the workers, as for ``grader
        check --executor dask``; a running Dask task cannot be cancelled: its result is discarded).
        The Dask task's status lines (the current cell) come back as Dask events and reach
        ``live`` as a child's do; "sent to the Dask cluster" until the first.

        Raises:
            GraderError: a configuration or harness fault that stopped the job.
        """
        from grader.core import HarnessError, UsageError
        from grader.pipeline import CohortOptions, Events, Job, grade_cohort

        class Progress(Events):
            def progress(self, job: Job, status: str) -> None:
                live.say(status)

        live.say("sent to the Dask cluster")
        [outcome] = grade_cohort([Job(1, submission, submission.name)], self.settings,
                                 dataclasses.replace(options, cancel=None, on_progress=None),
                                 CohortOptions(executor="dask", scheduler=self.scheduler, use_cache=False,
                                               gpus=self.gpus, scoring=self.scoring),
                                 write=lambda _: None, events=Progress())
        if outcome.result is None:
            error = outcome.error or "the Dask task ended without a result"
            raise UsageError(error) if outcome.error_exit_code == 2 else HarnessError(error)
        return outcome.result

    def _end(self, job: SubmissionRow, worker: str, live: _Live, error: str) -> None:
        """A job that ends without a result: back in the queue when the server stops, else
        failed (or cancelled, when the coach asked) with ``error``."""
        if self._stopping.is_set():
            self.store.release(job.id, worker)
        else:
            self.store.fail(job.id, worker, error)

    def _heartbeat(self, live: _Live) -> None:
        """Renew the lease (every third of it) and write new progress (at most once a second);
        set the job's cancel when the store answers False."""
        written, last = "", time.monotonic()
        renew_s = self.lease_s / 3
        while not live.done.wait(min(PROGRESS_EVERY_S, renew_s)):
            text = live.text
            if text == written and time.monotonic() - last < renew_s:
                continue
            try:
                ok = self.store.progress(live.job.id, live.worker, text, lease_s=self.lease_s)
            except DatabaseUnavailable as err:
                log.warning("submission %s: progress not recorded: %s", live.job.id, err.message)
                continue
            except Exception:
                log.exception("submission %s: progress not recorded", live.job.id)
                continue
            written, last = text, time.monotonic()
            if not ok:
                live.cancel.set()


CODE_FOLDER = "code"
PRINTED_FOLDER = "printed"


def save_code(state_dir: Path, submission_id: int, submission: Submission) -> None:
    """Keep the code cells of each notebook of ``submission`` (:func:`grader.integrity.pairs.notebook_code`)
    as ``<state>/code/<id>.json`` (``{notebook file name: code}``), for the coach's similar pairs;
    written atomically before the result is stored."""
    from grader.core import write_atomic
    from grader.integrity import notebook_code

    code = {path.name: notebook_code(path) for path in submission.notebooks}
    write_atomic(state_dir / CODE_FOLDER / f"{submission_id}.json", json.dumps(code))


def save_printed(state_dir: Path, submission_id: int, printed: dict[str, dict[int, str]] | None) -> None:
    """Keep what the student cells of a submission printed (:attr:`grader.pipeline.job.Graded.printed`)
    as ``<state>/printed/<id>.json`` for the run's log its team downloads; nothing where the run
    did not give it (a cached result, one graded on Dask). Written atomically before the result
    is stored."""
    from grader.core import write_atomic

    if printed is not None:
        write_atomic(state_dir / PRINTED_FOLDER / f"{submission_id}.json",
                     json.dumps({name: {str(i): text for i, text in cells.items()} for name, cells in printed.items()}))


def load_printed(state_dir: Path, submission_id: int) -> dict[str, dict[int, str]] | None:
    """What :func:`save_printed` kept for a submission, or None where nothing was kept (a result
    stored before, a cached one, a file that cannot be read)."""
    try:
        data = json.loads((state_dir / PRINTED_FOLDER / f"{submission_id}.json").read_text())
        return {str(name): {int(i): str(text) for i, text in cells.items()} for name, cells in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def load_code(state_dir: Path, submission_id: int) -> dict[str, str]:
    """The code :func:`save_code` kept for a submission; ``{}`` where none was kept (a result
    stored before, or a file that cannot be read)."""
    try:
        data = json.loads((state_dir / CODE_FOLDER / f"{submission_id}.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _upload_name(filename: str) -> str:
    """A safe local name for an upload sent as ``filename``, keeping its suffix (intake tells a
    zip from a notebook by it)."""
    base = _SAFE.sub("_", Path(filename.replace("\\", "/")).name).strip("._") or "upload"
    suffix = Path(filename).suffix.lower()
    stem = base[: -len(suffix)] if suffix and base.lower().endswith(suffix) else base
    return (stem[:100] or "upload") + (suffix if _SUFFIX.fullmatch(suffix) else "")
