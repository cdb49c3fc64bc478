"""A job of a batch, its options, its outcome and its events; and the one step that grades a job.

:func:`grade_job` is that step: look the submission up in the result cache, else execute,
score and render it, and store the result (never a cancelled run's). ``grader check``'s threads
and its Dask futures, ``grader verify-references`` and the event server's workers all grade
through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from grader.core import ExitStatus, GraderError, Settings, exit_code_of
from grader.intake import Submission
from grader.pipeline.cache import ResultCache, cache_key
from grader.pipeline.grade import ExecutedSubmission, GradeOptions, grade_submission
from grader.score import SubmissionResult

__all__ = ["CohortOptions", "Events", "Graded", "Interrupted", "Job", "Outcome", "Run", "grade_here", "grade_job"]


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
            the notebooks, :func:`grader.pipeline.grade.execute_submission`, and send back the probe's
            predictions; this process scores them, so a worker may hold an ingestion folder,
            :mod:`grader.data.ingestion`) or ``workers`` (each worker grades whole submissions and
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
    error_exit_code: int = ExitStatus.HARNESS

    @classmethod
    def fault(cls, job: Job, err: BaseException, *, seconds: float = 0.0,
              gpu: str | None = None) -> Outcome:
        """The outcome of ``job`` stopped by ``err``; an exception that is not a
        :class:`~grader.core.errors.GraderError` is an internal error (exit 3) whose traceback the
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
        return ExitStatus.PASSED if self.result.verdict == "pass" else ExitStatus.FAILED


class Events:
    """Receives a cohort's progress; the CLI's progress display implements it."""

    def started(self, job: Job, gpu: str | None) -> None:
        """``job`` began (on GPU slot ``gpu``)."""

    def progress(self, job: Job, status: str) -> None:
        """A one-line status of ``job``'s running notebook."""

    def finished(self, outcome: Outcome) -> None:
        """A job ended; its outputs are already written."""



class Interrupted(Exception):
    """Ctrl-C: ``outcomes`` are the jobs that finished (their outputs are written)."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes


# ---------------------------------------------------------------- one job


@dataclass(frozen=True)
class Graded:
    """A graded submission: its result and rendered scorecards.

    Attributes:
        result: the scorecard's data.
        scorecard: the scorecard's HTML (:func:`grader.report.render.render_scorecard`).
        team_scorecard: the team's scorecards' HTML (:func:`grader.report.render.render_team_scorecards`),
            where they were asked for.
        cached: reused from the result cache, not run.
        stopped: ``GradeOptions.cancel`` was set by the end of the run: nothing was stored, and
            the result says nothing of the submission.
        printed: where the team's scorecards were asked for and the notebooks ran here, what
            each student cell printed (:func:`printed_of`): notebook file name -> cell index ->
            text; None otherwise (a cached result, one graded on Dask).
    """

    result: SubmissionResult
    scorecard: str
    team_scorecard: str | None = None
    cached: bool = False
    stopped: bool = False
    printed: dict[str, dict[int, str]] | None = None


def printed_of(executed: ExecutedSubmission) -> dict[str, dict[int, str]]:
    """What each student cell of each notebook of ``executed`` printed
    (:func:`grader.evidence.printed_cells`: the copy of the executed notebook made before the hidden
    images' gate opened, the grader's injected cell left out), server folders cut
    (:func:`grader.evidence.without_folders`): for the run's log a team downloads."""
    from grader.evidence import printed_cells, without_folders

    out: dict[str, dict[int, str]] = {}
    for nb in executed.notebooks:
        if nb.run is None or nb.run.executed is None:
            continue
        cells = printed_cells(nb.run.executed.cells, skip=nb.run.facts.injected_cell)
        out[nb.path.name] = {i: without_folders(text) for i, text in cells.items()}
    return out


Run = Callable[[Submission, Settings, GradeOptions], Graded]
"""How :func:`grade_job` executes, scores and renders a submission the cache does not hold."""


def grade_here(submission: Submission, settings: Settings, options: GradeOptions, *,
               team: bool = False) -> Graded:
    """Execute and score ``submission`` in this process (:func:`grader.pipeline.grade.grade_submission`)
    and render its scorecard, and with ``team`` the team's scorecards and what its
    cells printed (:attr:`Graded.printed`): here, so that a failure to render is this job's only.

    Raises:
        GraderError: as :func:`grader.pipeline.grade.grade_submission` raises it.
    """
    from grader.report import render_scorecard, render_team_scorecards

    if not team:
        result = grade_submission(submission, settings, options)
        return Graded(result, render_scorecard(result))
    printed: dict[str, dict[int, str]] = {}
    result = grade_submission(submission, settings, options, on_executed=lambda run: printed.update(printed_of(run)))
    return Graded(result, render_scorecard(result), render_team_scorecards(result), printed=printed)


def grade_job(submission: Submission, settings: Settings, options: GradeOptions, *,
              cache: ResultCache | None = None, reuse: bool = True, team: bool = False,
              run: Run | None = None) -> Graded:
    """Grade one submission: the step every grader of submissions takes.

    1. With a ``cache`` and ``reuse``: the result stored under the submission's
       :func:`~grader.pipeline.cache.cache_key`, where there is one (with ``team``: only where its
       team's scorecards were stored beside it).
    2. Else ``run`` executes, scores and renders it (default: :func:`grade_here`, with ``team``).
    3. A run during which ``options.cancel`` was set is returned :attr:`~Graded.stopped`, stored
       nowhere.
    4. With a ``cache``: the result is stored (:meth:`~grader.pipeline.cache.ResultCache.keep`:
       never a run with a cancelled notebook), whether or not ``reuse`` looked it up.

    Its callers: ``grader check``'s threads (:func:`grader.pipeline.batch.grade_cohort`, with no
    cache: the batch looks every job up before any runs, so that cached ones come first, and
    stores each result as it writes it, on its own thread, so that a run Ctrl-C killed is never
    stored); ``grader check`` on Dask (:func:`grader.pipeline.dask.run_dask`: no cache, as the
    threads, and a ``run`` that takes the finished future's result, scores it here where the
    labels are here, and renders it); ``grader verify-references``
    (:func:`grader.pipeline.verify.verify`, no cache); the event server's workers
    (:class:`grader.server.work.worker.WorkerPool`: the cache, ``team``, and a ``run`` in the
    worker's child process or on the Dask cluster).

    Raises:
        GraderError: a configuration or harness fault, as ``run`` raises it.
    """
    key = cache_key(submission, settings, options) if cache is not None else ""
    if cache is not None and reuse:
        hit = cache.get(key)
        team_html = cache.team_scorecard(key) if hit is not None and team else None
        if hit is not None and (team_html is not None or not team):
            return Graded(hit[0], hit[1], team_html, cached=True)
    graded = run(submission, settings, options) if run is not None else grade_here(submission, settings, options,
                                                                                    team=team)
    if options.cancel is not None and options.cancel.is_set():
        return dataclasses.replace(graded, stopped=True)
    if cache is not None:
        cache.keep(key, graded.result, graded.scorecard, team_scorecard=graded.team_scorecard)
    return graded
