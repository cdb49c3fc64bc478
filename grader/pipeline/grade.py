"""Grade one submission: the pipeline's orchestration, over its stages.

For each notebook of the submission: *prepare* (:mod:`grader.execute.prepare`: read it, malformed is a
failed scorecard; tell the challenge; the public data view and hidden test set; a private working
copy with the parameters injected) -> *execute* (:mod:`grader.execute.run`: the runner process, in
the sandbox, under the deadline and the job's cancel) -> *evidence* (:mod:`grader.evidence.runfacts`: the
timeline, executed notebook and probe JSON, bounded and validated) -> *score*
(:mod:`grader.score.score`: evidence with the new images and model files; the rubric's checks; the
scorecard's :class:`~grader.score.scorecard.NotebookResult`). The CLI and the event server call
:func:`grade_submission` through :func:`grader.pipeline.job.grade_job`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from grader import __version__
from grader.core import ConfigError, HarnessError, Settings, environ_snapshot
from grader.data import check_sets, dataset_hashes, list_images, set_ids
from grader.evidence import ExecutionFacts, ModelFile, NewImage, RunResult
from grader.execute import (
    NEW_IMAGES,
    Opened,
    RunRequest,
    Unknown,
    failed_run,
    open_notebook,
    prepare_working_copy,
    probe_config,
    run_notebook,
)
from grader.execute import new_images as _new_images
from grader.intake import Submission, notebook_notes, read_answers, size_problem
from grader.pipeline.prefetch import prefetch_imports
from grader.sandbox import Sandbox, make_gate, resolve_sandbox
from grader.score import (
    Environment,
    NotebookResult,
    SubmissionResult,
    load_rubric,
    score_notebook,
    submission_reason,
    submission_verdict,
    unknown_challenge,
)
from grader.score import model_files as _model_files

__all__ = ["ExecutedNotebook", "ExecutedSubmission", "GradeOptions", "execute_submission", "grade_submission",
           "score_submission"]

log = logging.getLogger(__name__)

# platform.platform() starts `uname -p`, without env=, the first time it is called: here, at
# import, before a grading thread can be importing beside it (see settings.environ_snapshot)
PLATFORM = platform.platform()
CANCELLED = "cancelled by the coach"


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: ``profile`` passed as ``PROFILE``, ``challenge`` overrides detection,
    ``device`` passed as ``DEVICE``, ``keep_workdir`` keeps the working copies, ``on_progress``
    receives one-line status updates of a running notebook, ``sandbox`` is where the kernel runs
    (see :func:`grader.sandbox.session.resolve_sandbox`; default: none), ``kernel_env`` are variables set
    for the kernel (``CUDA_VISIBLE_DEVICES``, thread counts), ``cancel`` once set stops this
    submission's running notebook (its status ``cancelled``) and starts none of the others,
    ``practice`` scores on the practice split of the public data instead of the hidden test set
    (:mod:`grader.data.practice`), ``nice`` is the CPU niceness of the runner and its kernel (0-19,
    nice(1): ``grader serve`` runs them at :data:`grader.server.serve.KERNEL_NICE` so that its
    pages answer first)."""

    profile: str = "full"
    challenge: str | None = None
    device: str = "cpu"
    keep_workdir: bool = False
    on_progress: Callable[[str], None] | None = None
    sandbox: Sandbox = resolve_sandbox("none")
    kernel_env: tuple[tuple[str, str], ...] = ()
    cancel: threading.Event | None = None
    practice: bool = False
    nice: int = 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ExecutedNotebook:
    """One notebook after the *execute* stage: what the *score* stage needs, but the labels.

    Plain data (it crosses to a scorer pickled, from a Dask worker): nothing in it comes from
    the student's process but the validated facts and probe output of :class:`RunResult`.

    Attributes:
        path: the notebook in the submission.
        challenge: the challenge it ran against; None when it could not be told (``unknown``).
        unknown: why no challenge could be told; else None.
        facts: the run's facts; for a run that never started, its status and message.
        run: the executed notebook and the validated probe output; None when it never ran.
        models: what the run left under ``MODEL_DIR`` (listed, never loaded).
        notes: :func:`grader.intake.notebook.notebook_notes` of the working copy.
        new_files: the team's new images the probe was given, by file name.
        new_images: those images decoded before the run (None: the scorer decodes them from
            its copy of the submission, as on an ingestion worker, which has no dataset hashes).
        sets: :func:`grader.data.ingestion.set_ids` of the sets the probe predicted on.
        opened: the notebook as this process opened it; None once it crossed to another process.
    """

    path: Path
    challenge: str | None
    facts: ExecutionFacts
    unknown: Unknown | None = None
    run: RunResult | None = None
    models: tuple[ModelFile, ...] = ()
    notes: tuple[str, ...] = ()
    new_files: tuple[str, ...] = ()
    new_images: tuple[NewImage, ...] | None = None
    sets: tuple[tuple[str, str], ...] = ()
    opened: Opened | None = None


@dataclass(frozen=True)
class ExecutedSubmission:
    """A submission after the *execute* stage: each notebook's :class:`ExecutedNotebook`, when
    its grading started (UTC, ISO 8601) and where it ran (the executing machine's Python,
    platform, device and sandbox)."""

    notebooks: tuple[ExecutedNotebook, ...]
    started: str
    environment: Environment

    def portable(self) -> ExecutedSubmission:
        """This record without the opened notebooks (challenge, rubric, dataset listing): what a
        worker sends to its scorer, which opens them itself."""
        return dataclasses.replace(self, notebooks=tuple(dataclasses.replace(nb, opened=None)
                                                         for nb in self.notebooks))


def grade_submission(submission: Submission, settings: Settings, options: GradeOptions, *,
                     on_executed: Callable[[ExecutedSubmission], None] | None = None) -> SubmissionResult:
    """Grade every notebook of ``submission``: :func:`execute_submission`, then
    :func:`score_submission`. One with :attr:`~grader.intake.submissions.Submission.problems`
    (an empty folder, a refused zip) fails with them; what intake ignored is listed.

    Every student-side fault (a crash, a malformed file, an unknown challenge in the notebook's
    metadata, a forged run record) is a failing result, never an exception. Once
    ``options.cancel`` is set, the running notebook is stopped and the others are not started:
    each is a failing result with status ``cancelled``. ``on_executed``, where given, is called
    with the executed submission before it is scored.

    Raises:
        ConfigError: a challenge, rubric or dataset problem (a fault of the setup, not of the
            student), or a data folder without labels (an ingestion folder); a student's
            failure is always a failed criterion instead.
        UsageError: ``options.challenge`` is not a known challenge (the CLI checks it first).
    """
    executed = execute_submission(submission, settings, options)
    if on_executed is not None:  # a hook on the run before it is scored (the event server keeps what cells printed)
        on_executed(executed)
    return score_submission(executed, submission, settings, options)


def execute_submission(submission: Submission, settings: Settings, options: GradeOptions) -> ExecutedSubmission:
    """The *prepare* and *execute* stages of every notebook of ``submission``: each run in the
    sandbox with its probe, nothing scored. Works on a data folder without labels (an
    ingestion folder, :mod:`grader.data.ingestion`): the labels are needed only by
    :func:`score_submission`.

    Raises:
        ConfigError: a challenge, rubric or dataset problem.
        UsageError: ``options.challenge`` is not a known challenge.
    """
    started = _now()
    notebooks = tuple(_execute_notebook(nb, submission, settings, options) for nb in submission.notebooks)
    return ExecutedSubmission(notebooks, started, Environment(
        grader=__version__, python=platform.python_version(), platform=PLATFORM,
        device=_device_label(options.device), sandbox=options.sandbox.description,
        sandbox_warning=options.sandbox.warning))


def score_submission(executed: ExecutedSubmission, submission: Submission, settings: Settings,
                     options: GradeOptions) -> SubmissionResult:
    """The *evidence* and *score* stages of an :class:`ExecutedSubmission`, where the labels
    are: on this process's data folder, whichever process executed it. ``submission`` is the
    same submission, at the paths the executing process saw (its new images are decoded here
    when the executing process did not).

    Raises:
        ConfigError: this data folder holds no labels (an ingestion folder), or a challenge,
            rubric or dataset problem.
        HarnessError: the run predicted on other hidden images than those this data folder
            labels (an out-of-date ingestion folder), or its challenge is unknown here.
    """
    results = [_score_notebook(nb, submission, settings, options) for nb in executed.notebooks]
    problems = list(submission.problems) or ([] if results else ["the submission holds no notebook"])
    return SubmissionResult(
        submission=submission.name, path=str(submission.source or submission.root),
        verdict=submission_verdict(results, problems),  # awaiting: a required written answer awaits the coach
        verdict_reason=submission_reason(results, problems),
        score=sum(r.score for r in results), max_score=sum(r.max_score for r in results),
        notebooks=results, problems=problems, ignored=list(submission.ignored), started=executed.started,
        finished=_now(), environment=executed.environment, practice=options.practice,
    )


def _device_label(device: str) -> str:
    """``cpu (2 cores)`` or ``cuda (NVIDIA H100 80GB HBM3)``: what the notebook was given."""
    if device != "cuda":
        return f"{device} ({os.cpu_count()} cores)"
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=10, check=True,
                               env=environ_snapshot()).stdout
    except (OSError, subprocess.SubprocessError):
        return "cuda"
    return f"cuda ({', '.join(n.strip() for n in names.splitlines() if n.strip())})"


def _cancelled(options: GradeOptions) -> bool:
    return options.cancel is not None and options.cancel.is_set()


def _execute_notebook(path: Path, submission: Submission, settings: Settings,
                      options: GradeOptions) -> ExecutedNotebook:
    opened = open_notebook(path, settings, explicit=options.challenge, practice=options.practice)
    if isinstance(opened, Unknown):
        return ExecutedNotebook(path=path, challenge=None, unknown=opened,
                                facts=failed_run("unknown_challenge", opened.reason or ""))
    challenge, hidden = opened.challenge, opened.hidden
    load_rubric(settings.project_dir, challenge.rubric)  # a broken rubric stops the run before it starts
    sets = tuple(set_ids(hidden, opened.added, opened.mnist).items())

    def never_ran(status: str, message: str) -> ExecutedNotebook:
        return ExecutedNotebook(path=path, challenge=challenge.id, facts=failed_run(status, message),
                                sets=sets, opened=opened)

    if opened.notebook is None:
        return never_ran("malformed", opened.malformed or "")
    if _cancelled(options):
        return never_ran("cancelled", f"{CANCELLED} before this notebook started")
    disk_mb = challenge.execution.disk_mb
    too_large = size_problem(submission, limit_mb=disk_mb)  # before any copy: no ENOSPC
    if too_large is not None:
        return never_ran("too_large", too_large)
    new_src = submission.new_images or submission.root / NEW_IMAGES
    new_files = [p.name for p in list_images(new_src)] if submission.new_images and new_src.is_dir() else []
    # read from the submission itself, before its code runs and could swap them; an ingestion
    # folder has no dataset hashes: its scorer decodes them from its own copy of the submission
    decoded = (_decode_new_images(submission, new_files, settings, opened)
               if opened.labelled or not new_files else None)
    # a team's name is any text ("AC/DC", "../x", 64 characters of Unicode): never a path here
    box = Path(tempfile.mkdtemp(prefix=f"grader-{re.sub(r'[^A-Za-z0-9._-]+', '_', submission.name)[:40]}-"))
    workdir, run_dir = box / "submission", box / "run"
    # the held-out images wait behind a gate the cells cannot pass (grader.sandbox.gate)
    held_out = [hidden.images_dir, *([opened.added.images_dir] if opened.added else []),
                *([opened.mnist.images_dir] if opened.mnist else [])]
    gate = make_gate(box, held_out, mounted=options.sandbox.sandboxed)
    deadline = challenge.deadline_for(options.profile)
    saved: list[tuple[ModelFile, ...]] = []  # the models the cells saved, listed at the gate
    try:
        with options.sandbox.session(workdir=workdir, run_dir=run_dir,
                                     limits=challenge.execution.limits(), readonly=[opened.view],
                                     device=options.device, limit_disk=not options.keep_workdir,
                                     gate=gate) as session:
            copy = prepare_working_copy(path, opened.notebook, submission, workdir, view=opened.view,
                                        device=options.device, profile=options.profile, limit_mb=disk_mb)
            if isinstance(copy, str):
                return never_ran("copy_failed", copy)
            session.hand_over(workdir, run_dir, start=copy.start)
            notes = notebook_notes(copy.notebook, sandboxed=options.sandbox.kind != "none")
            request = RunRequest(
                notebook=copy.notebook, workdir=copy.start, run_dir=run_dir,
                cell_timeout_s=challenge.cell_timeout_for(options.profile), deadline_s=deadline,
                probe_timeout_s=challenge.execution.probe_timeout_s,
                max_output_bytes=challenge.execution.max_output_bytes, python=settings.python,
                probe=probe_config(challenge, hidden, opened.added, copy.new_dir, new_files, mnist=opened.mnist,
                                   folder_of=gate.path_of),
                on_progress=options.on_progress, sandbox=session,
                extra_env=dict(options.kernel_env), cancel=options.cancel, nice=options.nice,
                gate=gate, at_gate=lambda started: saved.append(_model_files(copy.model_dir, started, copy=workdir)),
            )
            log.info("running %s (%s, profile %s, deadline %s s, sandbox %s)", path,
                     challenge.id, options.profile, deadline, options.sandbox.kind)
            prefetch_over = prefetch_imports()
            try:
                run = run_notebook(request)
            finally:
                prefetch_over.set()
            # listed when the runner asked for the hidden images: what the kernel wrote after
            # that may not reach a team; a run that never asked leaves its folder as it ended
            models = saved[0] if saved else _model_files(copy.model_dir, run.started_at, copy=workdir)
        return ExecutedNotebook(path=path, challenge=challenge.id, facts=run.facts, run=run, models=models,
                                notes=tuple(notes), new_files=tuple(new_files), new_images=decoded, sets=sets,
                                opened=opened)
    finally:
        gate.open()  # its owner may remove it then (without root, a closed gate could not be)
        if not options.keep_workdir:
            shutil.rmtree(box, ignore_errors=True)


def _decode_new_images(submission: Submission, new_files: Sequence[str], settings: Settings,
                       opened: Opened) -> tuple[NewImage, ...]:
    if not new_files:
        return ()
    new_src = submission.new_images or submission.root / NEW_IMAGES
    return _new_images(new_src, list(new_files), dataset_hashes(settings, opened.challenge, listing=opened.listing),
                       hidden={entry for entry, _ in opened.listing.hidden})


def _score_notebook(nb: ExecutedNotebook, submission: Submission, settings: Settings,
                    options: GradeOptions) -> NotebookResult:
    if nb.unknown is not None:
        return unknown_challenge(nb.path, nb.unknown.candidates, options.profile, reason=nb.unknown.reason,
                                 named=nb.unknown.named)
    assert nb.challenge is not None
    opened = nb.opened
    if opened is None or not opened.labelled:  # executed elsewhere, or here without the labels
        found = open_notebook(nb.path, settings, explicit=nb.challenge, practice=options.practice)
        if isinstance(found, Unknown):
            raise HarnessError(f"{nb.path.name} ran against challenge {nb.challenge}, which is unknown here: "
                               "the worker's checkout differs from the scorer's", path=nb.path)
        opened = found
    if not opened.labelled:
        raise ConfigError("the data folder holds no labels (an ingestion folder): it can execute notebooks for a "
                          "scorer, not grade them", path=settings.data_dir,
                          fix="point GRADER_DATA_DIR at the full datasets to grade here")
    check_sets(dict(nb.sets), set_ids(opened.hidden, opened.added, opened.mnist), notebook=nb.path.name)
    challenge, hidden = opened.challenge, opened.hidden
    rubric = load_rubric(settings.project_dir, challenge.rubric)
    answers = read_answers(opened.notebook)  # the notebook as submitted: its written answers (student text)
    if nb.run is None:
        return score_notebook(nb.path, challenge, rubric, options.profile, nb.facts, None, hidden.labels,
                              (), (), opened.added_labels, practice=options.practice, answers=answers)
    new_images = (nb.new_images if nb.new_images is not None
                  else _decode_new_images(submission, nb.new_files, settings, opened))
    return score_notebook(nb.path, challenge, rubric, options.profile, nb.facts, nb.run, hidden.labels,
                          new_images, nb.models, opened.added_labels, notes=nb.notes, hidden_public=hidden.public,
                          practice=options.practice, mnist_labels=opened.mnist_labels, answers=answers)
