"""Grade one submission: discover notebooks, run each, gather evidence, check, score.

The pipeline, for each notebook: read (malformed is a failed scorecard) -> tell the challenge ->
prepare a private working copy and the public data view -> execute with parameters injected ->
gather evidence (probe JSON, timeline, new images, model files) -> run the rubric's checks.
"""

from __future__ import annotations

import importlib
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
from typing import Literal

from grader import __version__
from grader.challenge import Challenge, challenge_ids, load_challenge
from grader.checks import CheckResult, get_check
from grader.claims import cell_outputs, notebook_claim
from grader.data import (
    HiddenTestSet,
    dataset_hashes,
    ensure_added_test_set,
    ensure_hidden_test_set,
    ensure_public_view,
    list_dataset,
    list_images,
)
from grader.errors import UsageError
from grader.evidence import Evidence, ExecutionFacts, ModelFile, NewImage
from grader.executor import RunRequest, RunResult, run_notebook
from grader.frameworks import framework_of
from grader.intake import Submission, copy_submission, discover, size_problem
from grader.measure import measure
from grader.notebook import (
    INJECTED_TAG,
    MalformedNotebook,
    challenge_of,
    inject_parameters,
    notebook_notes,
    read_notebook,
)
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Sandbox, resolve_sandbox
from grader.scorecard import (
    CellRow,
    CriterionResult,
    Environment,
    ExecutionSummary,
    History,
    ModelReport,
    NewImageRow,
    NotebookResult,
    SubmissionResult,
    score_criteria,
    verdict_reason,
)
from grader.settings import Settings, environ_snapshot

__all__ = ["GradeOptions", "Submission", "discover", "grade_submission"]

log = logging.getLogger(__name__)

NEW_IMAGES = "new_images"
MODEL_DIR = "saved_model"
PHASH_MAX_DISTANCE = 4
# platform.platform() starts `uname -p`, without env=, the first time it is called: here, at
# import, before a grading thread can be importing beside it (see settings.environ_snapshot)
PLATFORM = platform.platform()


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: ``profile`` passed as ``PROFILE``, ``challenge`` overrides detection,
    ``device`` passed as ``DEVICE``, ``keep_workdir`` keeps the working copies, ``on_progress``
    receives one-line status updates of a running notebook, ``sandbox`` is where the kernel runs
    (see :func:`grader.sandbox.resolve_sandbox`; default: none), ``kernel_env`` are variables set
    for the kernel (``CUDA_VISIBLE_DEVICES``, thread counts)."""

    profile: str = "full"
    challenge: str | None = None
    device: str = "cpu"
    keep_workdir: bool = False
    on_progress: Callable[[str], None] | None = None
    sandbox: Sandbox = resolve_sandbox("none")
    kernel_env: tuple[tuple[str, str], ...] = ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def grade_submission(submission: Submission, settings: Settings,
                     options: GradeOptions) -> SubmissionResult:
    """Grade every notebook of ``submission``. One with :attr:`~grader.intake.Submission.problems`
    (an empty folder, a refused zip) fails with them; what intake ignored is listed.

    Every student-side fault (a crash, a malformed file, an unknown challenge in the notebook's
    metadata, a forged run record) is a failing result, never an exception.

    Raises:
        ConfigError: a challenge, rubric or dataset problem (a fault of the setup, not of the
            student); a student's failure is always a failed criterion instead.
        UsageError: ``options.challenge`` is not a known challenge (the CLI checks it first).
    """
    started = _now()
    results = [_grade_notebook(nb, submission, settings, options) for nb in submission.notebooks]
    problems = list(submission.problems) or ([] if results else ["the submission holds no notebook"])
    verdict: Literal["pass", "fail"] = (
        "pass" if results and not problems and all(r.verdict == "pass" for r in results) else "fail")
    return SubmissionResult(
        submission=submission.name, path=str(submission.source or submission.root), verdict=verdict,
        verdict_reason=_submission_reason(results, problems),
        score=sum(r.score for r in results), max_score=sum(r.max_score for r in results),
        notebooks=results, problems=problems, ignored=list(submission.ignored), started=started,
        finished=_now(),
        environment=Environment(grader=__version__, python=platform.python_version(),
                                platform=PLATFORM, device=_device_label(options.device),
                                sandbox=options.sandbox.description,
                                sandbox_warning=options.sandbox.warning),
    )


def _submission_reason(results: Sequence[NotebookResult], problems: Sequence[str]) -> str:
    """What decided a submission's verdict: its problems, else each failing notebook's reason
    (``gear-cnn.ipynb: required criteria not met: accuracy (0.62 < 0.90)``)."""
    if problems:
        return "; ".join(problems)
    failing = [f"{r.notebook}: {r.verdict_reason}" for r in results if r.verdict != "pass"]
    if failing:
        return "; ".join(failing)
    return "every required criterion of every notebook met" if results else ""


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


def _failed_run(status: str, message: str) -> ExecutionFacts:
    return ExecutionFacts(status=status, message=message, failed_cell=None, cells=(),
                          sources=(), wall_s=0.0, sandboxed=False, probe=None)


def _grade_notebook(path: Path, submission: Submission, settings: Settings,
                    options: GradeOptions) -> NotebookResult:
    known = challenge_ids(settings.project_dir)
    nb, malformed = None, None
    try:
        nb = read_notebook(path)
    except MalformedNotebook as err:
        # what the file is and a fix that can work for that kind (grader.notebook.diagnose)
        fix = f" {err.fix[:1].upper()}{err.fix[1:]}." if err.fix else ""
        malformed = f"{path.name}: {err.reason}.{fix}"
    found = challenge_of(path, nb, known, explicit=options.challenge)
    if isinstance(found, list):
        return _unknown_challenge(path, found, options, reason=malformed)
    if found not in known:
        if options.challenge:  # the coach's option: the CLI checks it before anything runs
            raise UsageError(f"--challenge {options.challenge}: no such challenge; known: "
                             f"{', '.join(known) or 'none'}", fix="pass one of the known ids")
        # the notebook's own metadata names it: the student's mistake, a failing scorecard
        return _unknown_challenge(path, known, options, reason=malformed, named=found)
    challenge = load_challenge(settings.project_dir, found)
    rubric = load_rubric(settings.project_dir, challenge.rubric)
    listing = list_dataset(settings.require_data_dir(), challenge)  # listed once, used thrice
    view = ensure_public_view(settings, challenge, listing=listing)
    hidden = ensure_hidden_test_set(settings, challenge, listing=listing)
    added = ensure_added_test_set(settings, challenge)
    if nb is None:
        facts = _failed_run("malformed", malformed or "")
        return _score(path, challenge, rubric, options, facts, None, hidden.labels, (), (),
                      added.labels if added else ())

    disk_mb = challenge.execution.disk_mb
    too_large = size_problem(submission, limit_mb=disk_mb)  # before any copy: no ENOSPC
    if too_large is not None:
        return _score(path, challenge, rubric, options, _failed_run("too_large", too_large), None,
                      hidden.labels, (), (), added.labels if added else ())
    new_src = submission.new_images or submission.root / NEW_IMAGES
    new_files = [p.name for p in list_images(new_src)] if submission.new_images and new_src.is_dir() else []
    # read from the submission itself, before its code runs and could swap them
    new_images = (_new_images(new_src, new_files,
                              dataset_hashes(settings, challenge, listing=listing))
                  if new_files else ())
    box = Path(tempfile.mkdtemp(prefix=f"grader-{submission.name}-"))
    workdir, run_dir = box / "submission", box / "run"
    readonly = [view, hidden.images_dir, *([added.images_dir] if added else [])]
    deadline = challenge.deadline_for(options.profile)
    try:
        with options.sandbox.session(workdir=workdir, run_dir=run_dir,
                                     limits=challenge.execution.limits(), readonly=readonly,
                                     device=options.device,
                                     limit_disk=not options.keep_workdir) as session:
            copy_failed = copy_submission(submission, workdir, limit_mb=disk_mb)  # its files only
            if copy_failed is not None:
                return _score(path, challenge, rubric, options, _failed_run("copy_failed", copy_failed),
                              None, hidden.labels, (), (), added.labels if added else ())
            model_dir = workdir / MODEL_DIR
            shutil.rmtree(model_dir, ignore_errors=True)
            model_dir.mkdir()
            if not (workdir / NEW_IMAGES).exists():  # NEW_IMAGES_DIR exists even when the team sent none
                (workdir / NEW_IMAGES).mkdir()
            # the kernel starts in the notebook's own folder, as Jupyter starts it
            # (team3/code/gear.ipynb reads ../new_images and its own helper files)
            start = workdir / path.relative_to(submission.root).parent
            session.hand_over(workdir, run_dir, start=start)
            new_dir = workdir / (submission.new_images.relative_to(submission.root)
                                 if submission.new_images else NEW_IMAGES)
            prepared = inject_parameters(nb, {
                "DATA_DIR": str(view), "DEVICE": options.device, "PROFILE": options.profile,
                "NEW_IMAGES_DIR": str(new_dir), "MODEL_DIR": str(model_dir),
            })
            notes = notebook_notes(prepared, sandboxed=options.sandbox.kind != "none")
            request = RunRequest(
                notebook=prepared, workdir=start, run_dir=run_dir,
                cell_timeout_s=challenge.execution.cell_timeout_s, deadline_s=deadline,
                probe_timeout_s=challenge.execution.probe_timeout_s,
                max_output_bytes=challenge.execution.max_output_bytes, python=settings.python,
                probe=_probe_config(challenge, hidden, added, new_dir, new_files),
                on_progress=options.on_progress, sandbox=session,
                extra_env=dict(options.kernel_env),
            )
            log.info("running %s (%s, profile %s, deadline %s s, sandbox %s)", path,
                     challenge.id, options.profile, deadline, options.sandbox.kind)
            prefetch_over = _prefetch_imports()
            try:
                run = run_notebook(request)
            finally:
                prefetch_over.set()
            models = _model_files(model_dir, run.started_at)
        return _score(path, challenge, rubric, options, run.facts, run, hidden.labels,
                      new_images, models, added.labels if added else (), notes=notes,
                      hidden_public=hidden.public)
    finally:
        if not options.keep_workdir:
            shutil.rmtree(box, ignore_errors=True)


def _compile_templates() -> None:
    from grader.report import compile_templates

    compile_templates()


# what scoring needs, in order, each with how long the run must have lasted more before it starts
_PREFETCH: tuple[tuple[float, Callable[[], object]], ...] = (
    (0.0, lambda: importlib.import_module("sklearn.metrics")),
    (0.0, _compile_templates),
    (1.0, lambda: importlib.import_module("matplotlib.figure")),
    (0.0, lambda: importlib.import_module("matplotlib.backends.backend_svg")),
)


def _prefetch_imports() -> threading.Event:
    """Import what scoring needs (scikit-learn: about 0.6 s here, matplotlib 0.3 s) and compile
    the scorecard's templates in a background thread while the notebook runs in its own
    process, so the grader's fixed cost per notebook does not include them.

    Returns an event to set when the run is over: from then on the thread starts no further
    step, since each would hold the GIL against the scoring that follows (what is missing is
    imported when used). matplotlib, needed only for a loss history, waits until the run has
    lasted a second more: a notebook that trains lasts longer, and a one-cell notebook is not
    slowed by an import it does not need. The thread runs at nice 19 (Linux: per thread),
    behind the notebook. A step already done costs a dictionary lookup; the import lock makes a
    later ``import`` wait for one in progress; a failure is left for that import.
    """
    over = threading.Event()

    def load() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        for delay, step in _PREFETCH:
            if over.wait(delay) if delay else over.is_set():
                return
            try:
                step()
            except Exception:  # the real import reports it
                return

    threading.Thread(target=load, name="grader-prefetch", daemon=True).start()
    return over


def _probe_config(challenge: Challenge, hidden: HiddenTestSet, added: HiddenTestSet | None,
                  new_dir: Path, new_files: list[str]) -> dict[str, object]:
    """What the probe is told: contract names, image folders and file names; never labels."""
    contract = challenge.contract
    models = {"predict": contract.predict}
    if contract.transfer:
        models["transfer"] = contract.transfer
    return {
        "class_names": contract.class_names, "models": models,
        "hidden_dir": str(hidden.images_dir), "hidden_files": list(hidden.files),
        "new_images_dir": str(new_dir), "new_images": new_files,
        "new_image_models": {"imagenet": contract.imagenet} if contract.imagenet else {},
        "extra_sets": ({"added": {"fn": contract.added, "dir": str(added.images_dir),
                                  "files": list(added.files)}}
                       if added is not None and contract.added else {}),
        "batch_size": challenge.execution.probe_batch_size,
        "max_label_chars": 200, "max_classes": 1000,
    }


def _unknown_challenge(path: Path, candidates: list[str], options: GradeOptions,
                       reason: str | None = None, named: str | None = None) -> NotebookResult:
    """The failing result of a notebook whose challenge cannot be told: none of ``candidates``
    fits, or its metadata names a challenge (``named``) that does not exist."""
    if named is not None:
        told = (f"{path.name} names challenge {named[:100]!r} in its metadata "
                "(metadata.grader.challenge), and there is no such challenge; known: "
                f"{', '.join(candidates) or 'none'}. Set it to one of them (the challenge's starter "
                "notebook has it right), or the coach can pass --challenge.")
    else:
        told = (f"cannot tell which challenge {path.name} is for; candidates: "
                f"{', '.join(candidates)}. Start from the challenge's starter notebook "
                "(it names the challenge in its metadata), or pass --challenge.")
    message = (f"{reason} " if reason else "") + told
    return NotebookResult(
        notebook=path.name, challenge=None, profile=options.profile, verdict="fail",
        verdict_reason="no challenge to grade against: " + told.split(";")[0], score=0,
        max_score=0, criteria=[],
        execution=ExecutionSummary(status="unknown_challenge", message=message,
                                   failed_cell=None, wall_s=0, sandboxed=False,
                                   probe_status="not_run", cells=[]))


def _new_images(folder: Path, files: list[str], hashes: dict[str, str]) -> tuple[NewImage, ...]:
    """Decode each of the team's new images (:func:`grader.images.decode`: EXIF orientation,
    16-bit, alpha, HEIC; bomb and truncation limits) for its thumbnail and dataset match
    (pHash within ``PHASH_MAX_DISTANCE`` of a dataset image's); a file that does not decode is
    its own row with ``error`` set, the others are unaffected."""
    import imagehash

    from grader.images import decode, thumbnail_uri

    known = [(entry, imagehash.hex_to_hash(h)) for entry, h in hashes.items()]
    out = []
    for name in files:
        decoded = decode(folder / name)
        if decoded.image is None:
            out.append(NewImage(file=name, thumbnail="", dataset_match=None, error=decoded.error))
            continue
        digest = imagehash.phash(decoded.image)
        match = next((e for e, h in known if digest - h <= PHASH_MAX_DISTANCE), None)
        out.append(NewImage(file=name, thumbnail=thumbnail_uri(decoded.image), dataset_match=match))
    return tuple(out)


def _model_files(folder: Path, started_at: float) -> tuple[ModelFile, ...]:
    """What the run left under ``MODEL_DIR``: each file, or TensorFlow SavedModel folder as one
    entry, with the model format its signature shows (:mod:`grader.modelfile`; nothing is
    loaded). Symbolic links are skipped; at most 1,000 entries."""
    from grader.modelfile import explain, identify, is_saved_model_dir

    if not folder.is_dir() or folder.is_symlink():
        return ()
    entries: list[ModelFile] = []

    def add(path: Path, members: list[Path]) -> None:
        stats = [m.stat() for m in members]
        found = identify(path)
        entries.append(ModelFile(
            path=str(path.relative_to(folder)), size=sum(st.st_size for st in stats),
            written_during_run=any(st.st_mtime >= started_at - 1 for st in stats),
            format=found.name if found else None,
            description=found.description if found else explain(path)))

    if is_saved_model_dir(folder):  # model.save(MODEL_DIR) in TensorFlow: the folder is the model
        add(folder, [m for m in folder.rglob("*") if m.is_file() and not m.is_symlink()])
        return tuple(entries)
    saved_models: list[Path] = []
    for p in sorted(folder.rglob("*")):
        if len(entries) >= 1000:
            break
        if p.is_symlink() or any(p.is_relative_to(d) for d in saved_models):
            continue
        if p.is_dir() and is_saved_model_dir(p):
            saved_models.append(p)
            add(p, [m for m in p.rglob("*") if m.is_file() and not m.is_symlink()])
        elif p.is_file():
            add(p, [p])
    return tuple(entries)


def _output_text(run: RunResult | None) -> str:
    """Printed text of the executed notebook: streams and ``text/plain`` results, in order
    (:func:`grader.claims.cell_outputs`, joined)."""
    if run is None or run.executed is None:
        return ""
    return "".join(cell_outputs(run.executed.cells))


def _student_code(run: RunResult | None) -> str:
    """The sources of the notebook's own code cells, joined (the injected parameters left out)."""
    if run is None or run.executed is None:
        return ""
    return "\n".join(str(cell.get("source", "")) for cell in run.executed.cells
                     if cell.get("cell_type") == "code"
                     and INJECTED_TAG not in cell.get("metadata", {}).get("tags", []))


def _score(path: Path, challenge: Challenge, rubric: Rubric, options: GradeOptions,
           facts: ExecutionFacts, run: RunResult | None, labels: tuple[str, ...],
           new_images: tuple[NewImage, ...], models: tuple[ModelFile, ...],
           added_labels: tuple[str, ...], *, notes: Sequence[str] = (),
           hidden_public: tuple[bool, ...] | None = None) -> NotebookResult:
    ev = Evidence(notebook=path.name, challenge=challenge, profile=options.profile,
                  execution=facts, probe=run.probe if run else None,
                  probe_error=run.probe_error if run else facts.message, hidden_labels=labels,
                  new_images=new_images, model_files=models, output_text=_output_text(run),
                  added_labels=added_labels, code=_student_code(run), hidden_public=hidden_public)
    results: list[CheckResult] = []
    for criterion in rubric.criteria:
        spec = get_check(criterion.check)
        results.append(spec.evaluate(ev, criterion.params_for(options.profile)))
    rows, verdict, score, max_score = score_criteria(rubric.criteria, results,
                                                     framework=framework_of(ev.code))
    from grader.plots import loss_curve_svg

    history = None
    if ev.probe and ev.probe.history and ev.probe.history.loss is not None:
        h = ev.probe.history
        history = History(source=h.source, loss=h.loss or [], val_loss=h.val_loss or [])
    reports = _model_reports(ev)
    ci = next((m.accuracy_ci for m in reports if m.role == "predict"), None)
    claim = notebook_claim(run.executed.cells if run and run.executed else [], ci.value if ci else None,
                           high=ci.high if ci else None, margin=rubric.claim_margin, predict=challenge.contract.predict)
    return NotebookResult(
        notebook=path.name, challenge=challenge.id, profile=options.profile, verdict=verdict,
        verdict_reason=verdict_reason(rows),
        score=score, max_score=max_score, criteria=rows, execution=_summary(facts),
        claimed_accuracy=claim.claimed if claim else None,
        claim_flagged=claim.flagged if claim else False,
        claim_line=claim.claim.line if claim else None, claim_kind=claim.claim.kind if claim else None,
        claim_cell=facts.number_of(claim.cell) if claim and claim.cell is not None else None,
        claim_margin=rubric.claim_margin,
        models=reports, new_images=_new_image_rows(ev), history=history,
        figures_captured=len(ev.probe.figures) if ev.probe else 0,
        notebook_loss_plot=_cell_png(run, rows),
        loss_plot_svg=loss_curve_svg(history.loss, history.val_loss) if history and history.loss
        else "", notes=list(notes),
    )


_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def _cell_png(run: RunResult | None, rows: list[CriterionResult]) -> str:
    """The notebook's own picture of its loss plot: a PNG data URI, or "" if there is none.

    Reads the first ``image/png`` output of the cell the ``loss_plot`` check found; the data is
    the student's, so it is accepted only as plain base64 of at most 3 MB.
    """
    number = next((r.measured.get("cell") for r in rows if "cell" in r.measured), None)
    if run is None or run.executed is None or not isinstance(number, int):
        return ""
    cell = run.facts.index_of(number)  # measured["cell"] is the student's cell number
    if not 0 <= cell < len(run.executed.cells):
        return ""
    for output in run.executed.cells[cell].get("outputs", []):
        data = output.get("data", {}).get("image/png")
        if isinstance(data, str) and len(data) < 3_000_000 and _BASE64.match(data):
            return "data:image/png;base64," + "".join(data.split())
    return ""


def _summary(facts: ExecutionFacts) -> ExecutionSummary:
    """The run as the scorecard shows it, cells named by the student's numbers (see
    :mod:`grader.scorecard`); the injected cell is a row of its own, without a number. The
    timeline came from the student's side: a row whose index is not a cell of the notebook
    has no source, and a failed cell that is not one is not named."""
    cells = [
        CellRow(index=c.index, status=c.status, seconds=c.seconds,
                source=facts.sources[c.index] if 0 <= c.index < len(facts.sources) else "",
                error=(f"{c.error.get('ename', '')}: {c.error.get('evalue', '')}"
                       if c.error else None),
                number=facts.number_of(c.index) if 0 <= c.index < len(facts.sources) else None,
                injected=c.index == facts.injected_cell)
        for c in facts.cells
    ]
    failed = facts.failed_cell
    failed_number = (facts.number_of(failed)
                     if failed is not None and 0 <= failed < len(facts.sources) else None)
    return ExecutionSummary(status=facts.status, message=facts.message,
                            failed_cell=failed_number, wall_s=facts.wall_s,
                            sandboxed=facts.sandboxed,
                            probe_status=facts.probe.status if facts.probe else "not_run",
                            cells=cells, probe_s=facts.probe.seconds if facts.probe else None)


def _model_reports(ev: Evidence) -> list[ModelReport]:
    reports: list[ModelReport] = []
    if ev.probe is None:
        return reports
    contract = ev.challenge.contract
    roles: tuple[tuple[Literal["predict", "transfer"], str | None], ...] = (
        ("predict", contract.predict), ("transfer", contract.transfer))
    for role, name in roles:
        run = ev.probe.models.get(role)
        if name and run and run.predictions is not None and len(run.predictions) == len(ev.hidden_labels):
            m = measure(ev.hidden_labels, run.predictions, ev.challenge.dataset.classes)
            correct = [p == label for p, label in zip(run.predictions, ev.hidden_labels, strict=True)]
            reports.append(ModelReport.of(role, name, m, run.seconds, run.inference_s,
                                          correct=correct, public=ev.hidden_public))
    return reports


def _new_image_rows(ev: Evidence) -> list[NewImageRow]:
    run = ev.probe.new_images if ev.probe else None
    predicted = dict(zip(run.files, run.predictions, strict=False)) if run and run.predictions else {}
    extra = ev.probe.new_images_extra.get("imagenet") if ev.probe else None
    imagenet = (dict(zip(run.files, extra.predictions, strict=False))
                if run and extra and extra.predictions else {})
    return [NewImageRow(file=im.file, prediction=predicted.get(im.file),
                        imagenet=imagenet.get(im.file), dataset_match=im.dataset_match,
                        error=im.error, thumbnail=im.thumbnail)
            for im in ev.new_images]

