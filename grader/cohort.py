"""Grade a cohort: many submissions at once, in local threads or on a Dask cluster, cached.

Each submission is one job. A job runs :func:`grader.grade.grade_submission`, whose notebooks
each run in their own sandboxed runner process, so the threads here (or the Dask workers) only
wait on processes. GPUs are handed out as slots: a job takes one, its kernels see only that GPU
(``CUDA_VISIBLE_DEVICES``), and gives it back when done. CPU threads are shared out too: with N
jobs on C cores each kernel gets ``max(1, C // N)`` threads (``OMP_NUM_THREADS`` and friends), so
parallel jobs do not oversubscribe the cores.

The cache is content-addressed: the key hashes everything a result depends on (see
:func:`cache_key`); an unchanged submission is not run again. Outputs are written atomically by
:mod:`grader.report` as each job finishes, so Ctrl-C or a crash keeps every finished result and
never leaves half of one.

Method: a thread pool as in ``concurrent.futures``; Dask ``distributed`` futures with worker
resources (https://distributed.dask.org/en/stable/resources.html), each Dask job's status lines
(its running cell) sent back as Dask events on a topic of its own
(https://distributed.dask.org/en/stable/logging.html).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from grader import __version__
from grader.errors import EXIT_FAIL, EXIT_HARNESS, EXIT_PASS, GraderError, UsageError, exit_code_of
from grader.grade import (
    ExecutedSubmission,
    GradeOptions,
    Submission,
    execute_submission,
    grade_submission,
    score_submission,
)
from grader.scorecard import SubmissionResult
from grader.settings import Settings

__all__ = ["CohortOptions", "Job", "Outcome", "cache_key", "gpu_challenges", "grade_cohort"]

log = logging.getLogger(__name__)

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS")
CACHE_FOLDER = "results"
# on a Dask worker: the data folder its tasks use instead of the client's (an ingestion folder)
WORKER_DATA_DIR_ENV = "GRADER_WORKER_DATA_DIR"
# a Dask job's status lines travel as Dask events on the topic "<this>-<task key>", one per job
PROGRESS_TOPIC = "grader-progress"
DASK_PROGRESS_EVERY_S = 0.5  # the most often a Dask job sends a status line, in seconds
MAX_STATUS_CHARS = 300  # the longest status line that crosses back (a cell's line is at most 120)


@dataclass(frozen=True)
class CohortOptions:
    """How to spread the jobs.

    Attributes:
        jobs: submissions graded at once.
        gpus: GPU ids handed out as slots, one per running job (empty: no GPU pinning).
        executor: ``local`` (threads here) or ``dask`` (futures on a Dask cluster).
        scheduler: the Dask scheduler's address (``tcp://host:8786``), for ``dask``.
        use_cache: reuse cached results of unchanged submissions (results are stored either
            way: ``False`` grades again and refreshes the cache).
        dask_timeout_s: longest a Dask job may take from submission to result, in seconds;
            ``None``: twice the sum of its notebooks' deadlines, plus 10 minutes.
        scoring: for ``dask``, where the hidden labels are: ``here`` (the workers only execute
            the notebooks, :func:`grader.grade.execute_submission`, and send back the probe's
            predictions; this process scores them, so a worker may hold an ingestion folder,
            :mod:`grader.ingestion`) or ``workers`` (each worker grades whole submissions and
            needs the full datasets).
    """

    jobs: int = 1
    gpus: tuple[str, ...] = ()
    executor: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    use_cache: bool = True
    dask_timeout_s: float | None = None
    scoring: Literal["here", "workers"] = "here"


@dataclass(frozen=True)
class Job:
    """One submission to grade: its number in the batch (from 1) and its output folder name."""

    number: int
    submission: Submission
    folder: str


@dataclass(frozen=True)
class Outcome:
    """What became of a job: a result (``cached`` when reused), or the fault that stopped it.

    A student-side fault is never a fault here: it is a result with a failing scorecard. A job
    without a result was stopped by an exception of the grader's; the outcome keeps what the
    CLI needs of it, picklable: ``error`` (its text, with the fix), ``error_type`` (the
    exception's class name) and ``error_exit_code`` (the class's exit status: 2 for a
    configuration error, 3 for a harness fault or anything unexpected).

    Attributes:
        job: the job.
        result: the scorecard's data, or None when the job was stopped.
        scorecard: the rendered HTML, once rendered.
        cached: the result was reused from the cache.
        seconds: wall time of the job, in seconds.
        error: why the job has no result.
        gpu: the GPU slot it ran on.
        error_type: class name of the exception that stopped it.
        error_exit_code: exit status that exception stands for.
    """

    job: Job
    result: SubmissionResult | None
    scorecard: str | None = None
    cached: bool = False
    seconds: float = 0.0
    error: str | None = None
    gpu: str | None = None
    error_type: str | None = None
    error_exit_code: int = EXIT_HARNESS

    @classmethod
    def fault(cls, job: Job, err: BaseException, *, seconds: float = 0.0,
              gpu: str | None = None) -> Outcome:
        """The outcome of ``job`` stopped by ``err``; an exception that is not a
        :class:`~grader.errors.GraderError` is an internal error (exit 3) whose traceback the
        caller has logged."""
        if isinstance(err, GraderError):
            text = str(err)
        else:
            text = (f"internal error ({type(err).__name__}: {err}); its traceback is logged: "
                    "please report it")
        return cls(job, None, seconds=seconds, error=text[:4000], gpu=gpu,
                   error_type=type(err).__name__, error_exit_code=exit_code_of(err))

    @property
    def exit_code(self) -> int:
        """0 passed, 1 failed (a failing scorecard), else the exit status of the fault."""
        if self.result is None:
            return self.error_exit_code
        return EXIT_PASS if self.result.verdict == "pass" else EXIT_FAIL


class Events:
    """Receives a cohort's progress; the CLI's progress display implements it."""

    def started(self, job: Job, gpu: str | None) -> None:
        """``job`` began (on GPU slot ``gpu``)."""

    def progress(self, job: Job, status: str) -> None:
        """A one-line status of ``job``'s running notebook."""

    def finished(self, outcome: Outcome) -> None:
        """A job ended; its outputs are already written."""


# ---------------------------------------------------------------- cache


@cache
def _source_digest() -> str:
    """Hash of the grader's own code and templates: a new grader grades anew."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(__version__.encode())
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.j2")]):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _hash_file(h: Any, path: Path, label: str) -> None:
    h.update(f"\0{label}\0".encode())
    h.update(path.read_bytes() if path.is_file() else b"<missing>")


def cache_key(submission: Submission, settings: Settings, options: GradeOptions) -> str:
    """The content address of a submission's result (sha256, hex).

    Hashes: the submission's name, the notebooks it grades, what intake ignored or found wrong,
    and every one of the team's files (:attr:`~grader.intake.Submission.files`: path and bytes,
    helper files included, since a notebook may read them); for every challenge
    (``challenge.toml``, its rubric, its hidden split file); the dataset folder's listing
    (every file name and size under the challenge sources); the grader's version and source;
    the profile, challenge override, device and sandbox; whether it is a practice check.
    """
    h = hashlib.sha256()
    h.update(json.dumps([submission.name, options.profile, options.challenge, options.device,
                         options.sandbox.kind, _source_digest(),
                         *(["practice"] if options.practice else [])]).encode())
    h.update(json.dumps([[str(nb.relative_to(submission.root)) for nb in submission.notebooks],
                         str(submission.new_images.relative_to(submission.root))
                         if submission.new_images else None,
                         list(submission.ignored), list(submission.problems)]).encode())
    for rel in submission.files:
        h.update(b"\0file:" + os.fsencode(rel) + b"\0")
        try:
            with open(submission.root / rel, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            h.update(b"<missing>")
    h.update(_project_digest(settings.project_dir).encode())
    h.update(_data_digest(settings.require_data_dir(), settings.project_dir).encode())
    return h.hexdigest()


@cache
def _project_digest(project: Path) -> str:
    """Every challenge's ``challenge.toml``, rubric, hidden split and public split file (once per
    process)."""
    from grader.challenge import challenge_ids, load_challenge

    h = hashlib.sha256()
    for cid in challenge_ids(project):
        challenge = load_challenge(project, cid)
        _hash_file(h, project / "challenges" / cid / "challenge.toml", f"challenge:{cid}")
        _hash_file(h, project / "rubrics" / f"{challenge.rubric}.toml", f"rubric:{cid}")
        if challenge.dataset.hidden_split:
            _hash_file(h, project / "challenges" / challenge.dataset.hidden_split, f"split:{cid}")
        if challenge.dataset.public_split:
            _hash_file(h, project / "challenges" / challenge.dataset.public_split, f"public:{cid}")
        if challenge.dataset.practice_split:
            _hash_file(h, project / "challenges" / challenge.dataset.practice_split, f"practice:{cid}")
    return h.hexdigest()


@cache
def _data_digest(data_dir: Path, project: Path) -> str:
    """Names and sizes of every file of every challenge's data sources (once per process)."""
    from grader.challenge import challenge_ids, load_challenge

    h = hashlib.sha256()
    sources: set[str] = set()
    for cid in challenge_ids(project):
        ds = load_challenge(project, cid).dataset
        sources.update([ds.source, *ds.extra])
        if ds.added_class is not None:
            sources.add(ds.added_class.source)
        if ds.idx is not None:  # the idx files' system folder, used when <data dir>/<source> lacks them
            sources.add(ds.idx.system_dir)
    for source in sorted(sources):
        for dirpath, dirnames, filenames in os.walk(data_dir / source):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                h.update(f"{os.path.relpath(path, data_dir)}\0{os.path.getsize(path)}\n".encode())
    return h.hexdigest()


class ResultCache:
    """Finished results by content address: ``CACHE_DIR/results/<key>/{result.json,scorecard.html}``,
    and ``team_scorecard.html`` where the event server stored the team's view beside them."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.cache_dir / CACHE_FOLDER

    def get(self, key: str) -> tuple[SubmissionResult, str] | None:
        folder = self.root / key
        try:
            result = SubmissionResult.model_validate_json((folder / "result.json").read_text())
            return result, (folder / "scorecard.html").read_text()
        except (OSError, ValueError):
            return None

    def team_scorecard(self, key: str) -> str | None:
        """The team's view of a cached result (:func:`grader.report.render_scorecard`,
        ``audience="team"``), or None where none was stored."""
        try:
            return (self.root / key / "team_scorecard.html").read_text()
        except OSError:
            return None

    def put(self, key: str, result: SubmissionResult, scorecard: str, *,
            team_scorecard: str | None = None) -> None:
        from grader.report import write_atomic

        folder = self.root / key
        write_atomic(folder / "scorecard.html", scorecard)
        if team_scorecard is not None:
            write_atomic(folder / "team_scorecard.html", team_scorecard)
        write_atomic(folder / "result.json", result.model_dump_json(indent=2))  # last: it marks the entry whole


# ---------------------------------------------------------------- execution


def _kernel_env(gpu: str | None, jobs: int) -> tuple[tuple[str, str], ...]:
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    env = [(name, threads) for name in THREAD_ENV] if jobs > 1 else []
    if gpu is not None:
        env.append(("CUDA_VISIBLE_DEVICES", gpu))
    return tuple(env)


def _slots(gpus: Sequence[str], jobs: int) -> queue.Queue[str | None]:
    """GPU slots: each GPU as often as needed for ``jobs`` jobs at once; ``None`` without GPUs."""
    slots: queue.Queue[str | None] = queue.Queue()
    if not gpus:
        for _ in range(jobs):
            slots.put(None)
        return slots
    for i in range(max(jobs, len(gpus))):
        slots.put(gpus[i % len(gpus)])
    return slots


def grade_cohort(jobs: Sequence[Job], settings: Settings, options: GradeOptions,
                 cohort: CohortOptions, *, write: Callable[[Outcome], None],
                 events: Events | None = None) -> list[Outcome]:
    """Grade ``jobs``; call ``write`` with each outcome as it ends, cached ones first. Every
    result graded here is stored in the cache, whether or not ``cohort.use_cache`` reused any.

    Returns the outcomes in job order (those that finished). On KeyboardInterrupt every running
    notebook is killed, unfinished jobs are dropped (nothing is written for them) and
    :class:`Interrupted` is raised, carrying the outcomes that finished.

    Raises:
        UsageError: a Dask scheduler that cannot be reached, or GPU jobs no worker can take.
    """
    events = events or Events()
    cache_store = ResultCache(settings)
    outcomes: dict[int, Outcome] = {}
    todo: list[tuple[Job, str]] = []
    for job in jobs:
        key = cache_key(job.submission, settings, options)
        hit = cache_store.get(key) if cohort.use_cache else None
        if hit is not None:
            outcome = Outcome(job, hit[0], scorecard=hit[1], cached=True)
            write(outcome)
            events.finished(outcome)
            outcomes[job.number] = outcome
        else:
            todo.append((job, key))

    def done(outcome: Outcome, key: str) -> None:
        if outcome.result is not None and outcome.scorecard is None:
            from grader.report import render_scorecard

            outcome = dataclasses.replace(outcome, scorecard=render_scorecard(outcome.result))
        write(outcome)
        # a cancelled run (GradeOptions.cancel) says nothing of the submission: never reused
        if outcome.result is not None and not any(nb.execution.status == "cancelled"
                                                  for nb in outcome.result.notebooks):
            cache_store.put(key, outcome.result, outcome.scorecard or "")
        events.finished(outcome)
        outcomes[outcome.job.number] = outcome

    if todo:
        run = _run_dask if cohort.executor == "dask" else _run_local
        try:
            run(todo, settings, options, cohort, events, done)
        except KeyboardInterrupt:
            raise Interrupted([outcomes[n] for n in sorted(outcomes)]) from None
    return [outcomes[n] for n in sorted(outcomes)]


class Interrupted(Exception):
    """Ctrl-C: ``outcomes`` are the jobs that finished (their outputs are written)."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes


def _grade_one(job: Job, settings: Settings, options: GradeOptions, gpu: str | None,
               jobs: int, events: Events) -> Outcome:
    events.started(job, gpu)
    opts = dataclasses.replace(options, kernel_env=_kernel_env(gpu, jobs),
                               on_progress=lambda status: events.progress(job, status))
    t0 = time.monotonic()
    try:
        result = grade_submission(job.submission, settings, opts)
        from grader.report import render_scorecard

        scorecard = render_scorecard(result)  # here, so that a failure stops this job only
    except GraderError as err:  # a configuration or harness fault: this job only
        log.info("grading %s stopped: %s", job.submission.name, err)
        return Outcome.fault(job, err, seconds=time.monotonic() - t0, gpu=gpu)
    except Exception as err:  # a bug of the grader's: this job only, with its traceback logged
        log.exception("grading %s failed", job.submission.name)
        return Outcome.fault(job, err, seconds=time.monotonic() - t0, gpu=gpu)
    return Outcome(job, result, scorecard=scorecard, seconds=time.monotonic() - t0, gpu=gpu)


def _run_local(todo: list[tuple[Job, str]], settings: Settings, options: GradeOptions,
               cohort: CohortOptions, events: Events,
               done: Callable[[Outcome, str], None]) -> None:
    from grader.executor import stop_all_runs

    slots = _slots(cohort.gpus, cohort.jobs)
    stopping = threading.Event()

    def work(job: Job) -> Outcome:
        gpu = slots.get()
        try:
            return _grade_one(job, settings, options, gpu, cohort.jobs, events)
        except Exception as err:  # from the progress display: this job only
            log.exception("grading %s failed", job.submission.name)
            return Outcome.fault(job, err, gpu=gpu)
        finally:
            slots.put(gpu)

    pool = ThreadPoolExecutor(max_workers=cohort.jobs, thread_name_prefix="grade")
    futures: dict[Future[Outcome], str] = {pool.submit(work, job): key
                                                  for job, key in todo}
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                if not stopping.is_set():
                    done(future.result(), futures[future])
    except KeyboardInterrupt:
        stopping.set()
        for future in futures:
            future.cancel()
        stop_all_runs()  # the running notebooks end now; their results are dropped
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _remote(submission: Submission, settings: Settings, options: dict[str, Any],
            progress_topic: str | None = None) -> SubmissionResult:
    """Runs on a Dask worker: grade one submission with the worker's Python and sandbox. The
    :class:`~grader.intake.Submission` (a frozen dataclass of paths and strings) crosses
    pickled; its paths must exist on the worker (a shared file system, or a LocalCluster).
    Its status lines go to the client on ``progress_topic`` (:class:`_DaskProgress`)."""
    opts, local = _on_worker(settings, options, progress_topic)
    return grade_submission(submission, local, opts)


def _remote_execute(submission: Submission, settings: Settings, options: dict[str, Any],
                    progress_topic: str | None = None) -> ExecutedSubmission:
    """Runs on a Dask worker: execute one submission's notebooks
    (:func:`grader.grade.execute_submission`), scoring nothing: the record of the runs goes back
    to the client, which holds the labels (``CohortOptions.scoring == "here"``). Its status
    lines go to the client on ``progress_topic`` (:class:`_DaskProgress`)."""
    opts, local = _on_worker(settings, options, progress_topic)
    return execute_submission(submission, local, opts).portable()


def _on_worker(settings: Settings, options: dict[str, Any],
               progress_topic: str | None = None) -> tuple[GradeOptions, Settings]:
    """The grading options and settings of a task on this Dask worker: its sandbox, kernel
    variables and Python; the client's folders, but for the data folder where the worker was
    started with ``GRADER_WORKER_DATA_DIR`` (an ingestion folder, :mod:`grader.ingestion`);
    with ``progress_topic``, ``on_progress`` sends the status lines to the client."""
    import sys

    from grader.sandbox import resolve_sandbox

    options = dict(options)
    sandbox = resolve_sandbox(options.pop("sandbox"))
    progress = _DaskProgress(progress_topic) if progress_topic else None
    opts = GradeOptions(**options, sandbox=sandbox, kernel_env=_worker_kernel_env(), on_progress=progress)
    data = os.environ.get(WORKER_DATA_DIR_ENV)
    local = dataclasses.replace(settings, python=sys.executable,
                                data_dir=Path(data).resolve() if data else settings.data_dir)
    if progress is not None:
        progress("started on a Dask worker")
    return opts, local


class _DaskProgress:
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


def _worker_kernel_env() -> tuple[tuple[str, str], ...]:
    """On a Dask worker: the variables its kernels get, as :func:`_kernel_env` gives them here.

    Threads (``OMP_NUM_THREADS`` and friends) are the worker's cores shared by the tasks it runs
    at once (its ``nthreads``): the cores are its ``CPU`` resource where it declares one
    (``dask worker --resources CPU=8``), else this machine's usable cores shared among every
    worker thread on the same host (``--nworkers 2`` starts two workers on one machine). They are
    always set: Dask's nanny sets ``OMP_NUM_THREADS=1`` and friends in its workers
    (``distributed.nanny.pre-spawn-environ``), which a kernel would otherwise inherit. The GPU is
    the one the worker was started with: its own ``CUDA_VISIBLE_DEVICES``, where set.

    Method: ``distributed.get_worker()`` (https://distributed.dask.org/en/stable/worker.html),
    ``WorkerState.nthreads`` and ``total_resources``; the host's workers from the scheduler's
    ``Client.scheduler_info``.
    """
    import distributed

    worker: Any = distributed.get_worker()
    slots = max(1, int(worker.state.nthreads))
    cpu = worker.state.total_resources.get("CPU")
    if cpu:
        cores = int(cpu)
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        try:
            workers = distributed.get_client().scheduler_info(n_workers=-1)["workers"].values()
            slots = max(slots, sum(int(w.get("nthreads", 1)) for w in workers if w.get("host") == worker.ip))
        except Exception as err:  # the scheduler's view refines the share: without it, this worker's own
            log.warning("could not count the Dask workers on this host (%s); kernels get %d cores / "
                        "%d threads", err, cores, slots)
    threads = str(max(1, cores // slots))
    env = [(name, threads) for name in THREAD_ENV]
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpu is not None:
        env.append(("CUDA_VISIBLE_DEVICES", gpu))
    return tuple(env)


def gpu_challenges(settings: Settings, profile: str) -> frozenset[str]:
    """The challenges of the project whose notebooks need a GPU under ``profile``
    (:meth:`grader.challenge.Challenge.needs_gpu`).

    Raises:
        ChallengeError: a challenge.toml that does not load.
    """
    from grader.challenge import challenge_ids, load_challenge

    return frozenset(cid for cid in challenge_ids(settings.project_dir)
                     if load_challenge(settings.project_dir, cid).needs_gpu(profile))


def _longest_deadline(settings: Settings, profile: str) -> int:
    """The longest notebook deadline of any challenge for ``profile``, in seconds."""
    from grader.challenge import challenge_ids, load_challenge

    return max((load_challenge(settings.project_dir, cid).deadline_for(profile)
                for cid in challenge_ids(settings.project_dir)), default=1800)


def _run_dask(todo: list[tuple[Job, str]], settings: Settings, options: GradeOptions,
              cohort: CohortOptions, events: Events,
              done: Callable[[Outcome, str], None]) -> None:
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
        gpu_jobs = {job.folder for job, _ in todo if every or _needs_gpu(job.submission, settings, options, needing)}
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
        longest = _longest_deadline(settings, options.profile)
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
                done(_dask_outcome(job, future, seconds=time.monotonic() - started[future],
                                   score=(settings, options) if cohort.scoring == "here" else None), key)
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
    """On the Dask client: the status lines each job's task sends (:class:`_DaskProgress`), passed
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


def _needs_gpu(submission: Submission, settings: Settings, options: GradeOptions, needing: frozenset[str]) -> bool:
    """Whether a notebook of ``submission`` is for a challenge of ``needing`` (those whose
    profile needs a GPU), told as grading tells it (``options.challenge``, else the notebook's
    metadata or file name); a notebook that does not read needs none."""
    if not needing:
        return False
    from grader.challenge import challenge_ids
    from grader.notebook import MalformedNotebook, challenge_of, read_notebook

    known = challenge_ids(settings.project_dir)
    for path in submission.notebooks:
        try:
            nb = read_notebook(path) if not options.challenge else None
        except MalformedNotebook:
            nb = None
        if challenge_of(path, nb, known, explicit=options.challenge) in needing:
            return True
    return False


def _dask_outcome(job: Job, future: Any, *, seconds: float,
                  score: tuple[Settings, GradeOptions] | None = None) -> Outcome:
    """The outcome of ``job``'s finished Dask ``future``: its result with the scorecard rendered
    (here, as :func:`_grade_one` does, so that a failure to render stops this job only), or the
    remote error that stopped it (a :class:`~grader.errors.GraderError` keeps its exit status).
    With ``score`` (this process's settings and options) the future holds an
    :class:`~grader.grade.ExecutedSubmission`, scored here (:func:`grader.grade.score_submission`)."""
    try:
        done = future.result()
    except GraderError as err:
        return Outcome.fault(job, err, seconds=seconds)
    except Exception as err:  # a remote error of any kind fails this job only
        return Outcome(job, None, seconds=seconds, error=_dask_error(err), error_type=type(err).__name__)
    try:
        result: SubmissionResult = score_submission(done, job.submission, *score) if score else done
    except Exception as err:  # a fault of the setup, or a bug of the grader's: this job only
        if not isinstance(err, GraderError):
            log.exception("scoring %s failed", job.submission.name)
        return Outcome.fault(job, err, seconds=seconds)
    try:
        from grader.report import render_scorecard

        return Outcome(job, result, scorecard=render_scorecard(result), seconds=seconds)
    except Exception as err:  # a bug of the grader's: this job only, with its traceback logged
        log.exception("rendering the scorecard of %s failed", job.submission.name)
        return Outcome.fault(job, err, seconds=seconds)


def _dask_error(err: BaseException) -> str:
    name = type(err).__name__
    if name == "KilledWorker":
        return ("the Dask worker grading it died (every worker that tried it died); see the "
                f"workers' logs: {err}")
    return f"{name}: {err}"[:2000]
