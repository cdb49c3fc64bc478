"""Stage 4 of grading a notebook, *score*: turn what a run left (its facts, the probe's
output, the model files, the team's new images) into the evidence the rubric's checks read,
run the checks and build the notebook's :class:`~grader.score.scorecard.NotebookResult`.

Pure but for :func:`model_files`, which lists (never loads) the run's model folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from grader.core import Challenge
from grader.evidence import (
    Evidence,
    ExecutionFacts,
    ModelFile,
    ModelRun,
    NewImage,
    ProbeOutput,
    RunResult,
    cell_outputs,
    framework_of,
    notebook_claim,
)
from grader.intake import INJECTED_TAG, Answer
from grader.score.checks import CheckResult, get_check
from grader.score.measure import measure
from grader.score.rubric import Rubric
from grader.score.scorecard import (
    CellRow,
    CriterionResult,
    ExecutionSummary,
    History,
    ModelReport,
    NewImageRow,
    NotebookResult,
)
from grader.score.verdict import score_criteria, verdict_reason

__all__ = ["NOT_A_CLASS", "answers_as_classes", "model_files", "score_notebook", "summary", "unknown_challenge"]


def unknown_challenge(path: Path, candidates: list[str], profile: str,
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
        notebook=path.name, challenge=None, profile=profile, verdict="fail",
        verdict_reason="no challenge to grade against: " + told.split(";")[0], score=0,
        max_score=0, criteria=[],
        execution=ExecutionSummary(status="unknown_challenge", message=message,
                                   failed_cell=None, wall_s=0, sandboxed=False,
                                   probe_status="not_run", cells=[]))


STRAY_SCAN = 2_000  # entries of the working copy looked at for model files outside MODEL_DIR


def model_files(folder: Path, started_at: float, *, copy: Path | None = None) -> tuple[ModelFile, ...]:
    """What the run left under ``MODEL_DIR`` (``folder``): each file, or TensorFlow SavedModel
    folder as one entry, with the model format its signature shows (:mod:`grader.evidence.modelfile`;
    nothing is loaded). Symbolic links are skipped; at most 1,000 entries. With ``copy`` (the
    working copy), also the model files the run wrote in it outside ``folder`` (at most 5, of
    the first ``STRAY_SCAN`` entries), marked :attr:`ModelFile.outside`."""
    from grader.evidence import explain, identify, is_saved_model_dir

    stray = _stray_models(copy, folder, started_at) if copy is not None else ()
    if not folder.is_dir() or folder.is_symlink():
        return stray
    entries: list[ModelFile] = list(stray)

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


def _stray_models(copy: Path, model_dir: Path, started_at: float) -> tuple[ModelFile, ...]:
    """Model files (a recognised signature) the run wrote in the working copy ``copy`` outside
    ``model_dir``: ``model.save('best.h5')`` beside the notebook."""
    from itertools import islice

    from grader.evidence import identify

    found: list[ModelFile] = []
    for p in islice(copy.rglob("*"), STRAY_SCAN):
        if len(found) >= 5:
            break
        try:
            if p.is_symlink() or not p.is_file() or p.is_relative_to(model_dir):
                continue
            st = p.stat()
        except OSError:
            continue
        if st.st_mtime < started_at - 1:
            continue
        kind = identify(p)
        if kind is not None:
            found.append(ModelFile(path=str(p.relative_to(copy)), size=st.st_size, written_during_run=True,
                                   format=kind.name, description=kind.description, outside=True))
    return tuple(found)


def _output_text(run: RunResult | None) -> str:
    """Printed text of the executed notebook: streams and ``text/plain`` results, in order
    (:func:`grader.evidence.claims.cell_outputs`, joined)."""
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


NOT_A_CLASS = "(not a class name)"


def answers_as_classes(probe: ProbeOutput, challenge: Challenge) -> ProbeOutput:
    """``probe`` with every answer on a held-out set that is not a class name replaced by
    :data:`NOT_A_CLASS`. Class names: the notebook's ``CLASS_NAMES`` (read by the probe's visible
    step, before the hidden images were given), the challenge's classes, its added class and
    MNIST's digits. Any other text came from the kernel once it held the hidden images: it is
    counted, never kept or shown (:mod:`grader.sandbox.gate`)."""
    from grader.data import MNIST_CLASSES

    known = {*(probe.class_names or ()), *challenge.dataset.classes, *MNIST_CLASSES}
    if challenge.dataset.added_class is not None:
        known.add(challenge.dataset.added_class.name)

    def clean(run: ModelRun) -> ModelRun:
        if run.predictions is None or all(p in known for p in run.predictions):
            return run
        return run.model_copy(update={"predictions": [p if p in known else NOT_A_CLASS for p in run.predictions]})

    return probe.model_copy(update={"models": {role: clean(run) for role, run in probe.models.items()},
                                    "extra_sets": {role: clean(run) for role, run in probe.extra_sets.items()}})


def score_notebook(path: Path, challenge: Challenge, rubric: Rubric, profile: str,
           facts: ExecutionFacts, run: RunResult | None, labels: tuple[str, ...],
           new_images: tuple[NewImage, ...], models: tuple[ModelFile, ...],
           added_labels: tuple[str, ...], *, notes: Sequence[str] = (),
           hidden_public: tuple[bool, ...] | None = None, practice: bool = False,
           mnist_labels: tuple[str, ...] = (), answers: tuple[Answer, ...] = ()) -> NotebookResult:
    """Check the notebook at ``path`` against ``rubric`` on what its run left and score it.

    Args:
        facts: how the run went (a run that never started: :func:`grader.execute.prepare.failed_run`).
        run: the run's result, None when it never started.
        labels: the hidden test set's labels, in its fixed order; ``hidden_public`` per image
            whether it is in the public part (None: no public/private split).
        new_images: the team's new images; ``models`` the model files the run left.
        added_labels: the labels of the added class's held-out images (empty: none).
        notes: notes about the notebook shown on its scorecard.
        practice: ``labels`` are the practice split's (``grader check --practice``).
        mnist_labels: the labels of the MNIST test images (:mod:`grader.data.mnist`; empty: none).
        answers: the written answers of the notebook as submitted (:func:`grader.intake.read_answers`),
            for the rubric's coach-graded criteria.
    """
    probe = answers_as_classes(run.probe, challenge) if run and run.probe else None
    ev = Evidence(notebook=path.name, challenge=challenge, profile=profile,
                  execution=facts, probe=probe,
                  probe_error=run.probe_error if run else facts.message, hidden_labels=labels,
                  new_images=new_images, model_files=models, output_text=_output_text(run),
                  added_labels=added_labels, code=_student_code(run), hidden_public=hidden_public,
                  practice=practice, mnist_labels=mnist_labels, answers=answers)
    results: list[CheckResult] = []
    for criterion in rubric.criteria:
        spec = get_check(criterion.check)
        results.append(spec.evaluate(ev, criterion.params_for(profile)))
    rows, verdict, score, max_score = score_criteria(rubric.criteria, results, profile=profile,
                                                     framework=framework_of(ev.code))
    from grader.score.plots import loss_curve_svg

    history = None
    if ev.probe and ev.probe.history and ev.probe.history.loss is not None:
        h = ev.probe.history
        history = History(source=h.source, loss=h.loss or [], val_loss=h.val_loss or [])
    reports = _model_reports(ev)
    ci = next((m.accuracy_ci for m in reports if m.role == "predict"), None)
    claim = notebook_claim(run.executed.cells if run and run.executed else [], ci.value if ci else None,
                           high=ci.high if ci else None, margin=rubric.claim_margin, predict=challenge.contract.predict)
    return NotebookResult(
        notebook=path.name, challenge=challenge.id, profile=profile, verdict=verdict,
        verdict_reason=verdict_reason(rows),
        score=score, max_score=max_score, criteria=rows, execution=_with_problem(summary(facts), ev, results),
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


def _with_problem(execution: ExecutionSummary, ev: Evidence, results: Sequence[CheckResult]) -> ExecutionSummary:
    """``execution`` with the run's problem and its fix, said once for every criterion it left
    unmeasured (:func:`grader.score.checks.registry.run_problem`), and whether the run was scored
    as it stood when a time limit stopped it (:func:`grader.score.checks.registry.partial_run`)."""
    from grader.score.checks.registry import partial_run, run_problem

    problem = run_problem(ev) if any(r.of_run for r in results) else None
    restore = ev.execution.restore
    return execution.model_copy(update={"problem": problem.reason if problem else "",
                                        "problem_fix": problem.fix if problem else "",
                                        "partial": partial_run(ev),
                                        "restored_cells": list(restore.cells) if restore and restore.status == "ok"
                                        else []})


def summary(facts: ExecutionFacts) -> ExecutionSummary:
    """The run as the scorecard shows it, cells named by the student's numbers (see
    :mod:`grader.score.scorecard`); the injected cell is a row of its own, without a number. The
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
    roles: tuple[tuple[Literal["predict", "transfer", "mlp"], str | None], ...] = (
        ("predict", contract.predict), ("transfer", contract.transfer), ("mlp", contract.mlp))
    for role, name in roles:
        run = ev.probe.models.get(role)
        if name and run and run.predictions is not None and len(run.predictions) == len(ev.hidden_labels):
            m = measure(ev.hidden_labels, run.predictions, ev.challenge.dataset.classes)
            correct = [p == label for p, label in zip(run.predictions, ev.hidden_labels, strict=True)]
            reports.append(ModelReport.of(role, name, m, run.seconds, run.inference_s,
                                          correct=correct, public=ev.hidden_public,
                                          predictions=run.predictions, labels=ev.hidden_labels))
    mnist = ev.probe.extra_sets.get("mnist")
    if (contract.mnist and mnist and mnist.predictions is not None and ev.mnist_labels
            and len(mnist.predictions) == len(ev.mnist_labels)):  # seed 001's comparison: not on leaderboards
        from grader.data import MNIST_CLASSES

        m = measure(ev.mnist_labels, mnist.predictions, MNIST_CLASSES)
        reports.append(ModelReport.of("mnist", contract.mnist, m, mnist.seconds, mnist.inference_s))
    return reports


def _new_image_rows(ev: Evidence) -> list[NewImageRow]:
    run = ev.probe.new_images if ev.probe else None
    predicted = dict(zip(run.files, run.predictions, strict=False)) if run and run.predictions else {}
    extra = ev.probe.new_images_extra.get("imagenet") if ev.probe else None
    imagenet = (dict(zip(run.files, extra.predictions, strict=False))
                if run and extra and extra.predictions else {})
    return [NewImageRow(file=im.file, prediction=predicted.get(im.file),
                        imagenet=imagenet.get(im.file), dataset_match=im.dataset_match,
                        error=im.error, thumbnail=im.thumbnail, hidden_match=im.hidden_match)
            for im in ev.new_images]

