"""Grade a cohort: many submissions at once, in local threads or on a Dask cluster, cached.

Each submission is one job. A job runs :func:`grader.pipeline.job.grade_job`, whose notebooks
each run in their own sandboxed runner process, so the threads here (or the Dask workers,
:mod:`grader.pipeline.dask`) only wait on processes. GPUs are handed out as slots and CPU threads
shared out (:mod:`grader.pipeline.resources`): a job takes a slot, its kernels see only that GPU,
and gives it back when done.

The cache is content-addressed (:mod:`grader.pipeline.cache`); an unchanged submission is not
run again. Outputs are written atomically by :mod:`grader.report.render` as each job finishes, so
Ctrl-C or a crash keeps every finished result and never leaves half of one.

Method: a thread pool as in ``concurrent.futures``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from grader.core import GraderError, Settings
from grader.pipeline.cache import ResultCache, cache_key
from grader.pipeline.dask import run_dask
from grader.pipeline.grade import GradeOptions
from grader.pipeline.job import CohortOptions, Events, Interrupted, Job, Outcome, grade_job
from grader.pipeline.resources import gpu_slots, kernel_env

__all__ = ["grade_cohort"]

log = logging.getLogger(__name__)


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
        if outcome.result is not None:  # never a cancelled run (GradeOptions.cancel): ResultCache.keep
            cache_store.keep(key, outcome.result, outcome.scorecard or "")
        events.finished(outcome)
        outcomes[outcome.job.number] = outcome

    if todo:
        run = run_dask if cohort.executor == "dask" else _run_local
        try:
            run(todo, settings, options, cohort, events, done)
        except KeyboardInterrupt:
            raise Interrupted([outcomes[n] for n in sorted(outcomes)]) from None
    return [outcomes[n] for n in sorted(outcomes)]


def _grade_one(job: Job, settings: Settings, options: GradeOptions, gpu: str | None,
               jobs: int, events: Events) -> Outcome:
    events.started(job, gpu)
    opts = dataclasses.replace(options, kernel_env=kernel_env(gpu, jobs),
                               on_progress=lambda status: events.progress(job, status))
    t0 = time.monotonic()
    try:
        # the one step of grading a job, with no cache: grade_cohort looked every job up before
        # any ran, and stores each result as it writes it (done, on the batch's own thread)
        graded = grade_job(job.submission, settings, opts)
    except GraderError as err:  # a configuration or harness fault: this job only
        log.info("grading %s stopped: %s", job.submission.name, err)
        return Outcome.fault(job, err, seconds=time.monotonic() - t0, gpu=gpu)
    except Exception as err:  # a bug of the grader's: this job only, with its traceback logged
        log.exception("grading %s failed", job.submission.name)
        return Outcome.fault(job, err, seconds=time.monotonic() - t0, gpu=gpu)
    return Outcome(job, graded.result, scorecard=graded.scorecard, seconds=time.monotonic() - t0, gpu=gpu)


def _run_local(todo: list[tuple[Job, str]], settings: Settings, options: GradeOptions,
               cohort: CohortOptions, events: Events,
               done: Callable[[Outcome, str], None]) -> None:
    from grader.execute import stop_all_runs

    slots = gpu_slots(cohort.gpus, cohort.jobs)
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

