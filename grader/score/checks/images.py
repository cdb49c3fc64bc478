"""Checks of the submission's own photos in ``new_images/``: ``predict``'s answers on them and the
labels of the contract's pretrained ImageNet classifier."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from grader.evidence import Evidence, ModelRun
from grader.score.checks.registry import CheckResult, Params, fail, passed, register, run_problem

__all__ = ["ImagenetParams", "NewImagesParams", "imagenet_labels", "new_image_predictions"]


class NewImagesParams(Params):
    min_images: int = Field(default=5, ge=1)
    # the notebook's own outputs must show the predictions too, not only answer the grader's call
    shown: bool = False


STEM_CHARS = 12  # how much of a file's name (without its suffix) a shown prediction must carry


def shown_predictions(ev: Evidence, answers: dict[str, str]) -> list[str]:
    """The new images whose prediction the notebook showed in its own outputs, in the order of
    ``answers`` (``{file: class predict gave it when the grader called it}``).

    Shown: a matplotlib axes drawing an image whose title holds the class ``predict`` gave that
    image (each axes counted once), or whose title holds the file's name (its first
    ``STEM_CHARS`` characters, without the suffix) and any class name; or a printed line that
    holds the file's name and a class name. Read from the captured figures
    (:mod:`grader.student.kernel.capture`) and the printed text, both from the cells' own run.
    """
    classes = set(ev.challenge.dataset.classes)
    titles = [ax.title for fig in (ev.probe.figures if ev.probe else []) for ax in fig.axes if ax.images]
    lines = ev.output_text.splitlines()
    used: set[int] = set()
    shown: list[str] = []

    def names_a_class(text: str) -> bool:
        return any(c in text for c in classes)

    for file, answer in answers.items():
        stem = Path(file).stem[:STEM_CHARS]
        by_file = next((i for i, t in enumerate(titles) if i not in used and stem in t and names_a_class(t)), None)
        by_answer = next((i for i, t in enumerate(titles) if i not in used and answer in t), None)
        axes = by_file if by_file is not None else by_answer
        if axes is not None:
            used.add(axes)
            shown.append(file)
        elif any(stem in line and names_a_class(line) for line in lines):
            shown.append(file)
    return shown


def _images_summary(ev: Evidence) -> str:
    """``5 images`` or ``5 images, 1 unreadable (x.jpg: truncated)``: the folder as the grader read it."""
    n = len(ev.new_images)
    counted = f"{n} image{'' if n == 1 else 's'} in new_images/"
    bad = [im for im in ev.new_images if im.error is not None]
    if not bad:
        return counted
    shown = "; ".join(f"{im.file}: {im.error}" for im in bad[:3]) + ("; ..." if len(bad) > 3 else "")
    return f"{counted}, {len(bad)} unreadable ({shown})"


def _not_called(ev: Evidence, name: str) -> CheckResult | None:
    """A not_measured result saying why ``name`` has no answers on new_images/ when the run
    left nothing to measure (:func:`grader.score.checks.registry.run_problem`), else None."""
    problem = run_problem(ev)
    if problem is None:
        return None
    # with no images listed the folder may not have been read at all (the grader stops before
    # reading it for a malformed notebook or a submission too large to copy): no count then
    counted = f"; {_images_summary(ev)}" if ev.new_images else ""
    if ev.execution.status == "ok":
        why = f": {problem.reason}"
    else:  # no cell record: the grader stopped before running it (not a notebook, too large...)
        why = (f" because the notebook {'did not run to its end' if ev.execution.cells else 'was not run'} "
               f"({problem.reason})")
    return CheckResult(status="not_measured", fix=problem.fix, of_run=True,
                       message=f"not measured: `{name}` was not called on new_images/{why}{counted}")


def _answers(ev: Evidence, run: ModelRun | None, files: list[str], name: str,
             what: str) -> tuple[dict[str, str] | None, str]:
    """``{file: answer}`` of ``run`` on new_images/ (``files`` the ones it was called on, in
    order), or None and why there are none."""
    if run is None:
        defined = ev.probe.models.get("predict") if ev.probe else None
        if what == "predictions" and defined is not None and defined.error:
            return None, f"`{name}` {defined.error}, so it was not called on new_images/"
        return None, f"`{name}` was not called on new_images/"
    if run.error is not None or run.predictions is None:
        return None, f"`{name}` gave no {what} for new_images/: it {run.error or 'returned nothing'}"
    if len(run.predictions) != len(files):
        return None, f"`{name}` returned {len(run.predictions)} {what} for {len(files)} images"
    return dict(zip(files, run.predictions, strict=True)), ""


def _unanswered(ev: Evidence, run: ModelRun | None, answers: dict[str, str], name: str) -> str:
    """Why some images the grader read got no answer (the probe could not read them), or ""."""
    missing = [im.file for im in ev.new_images if im.error is None and im.file not in answers]
    if not missing:
        return ""
    probe_errors = {u.file: u.error for u in run.unreadable} if run else {}
    shown = "; ".join(f"{f}: {probe_errors.get(f, 'not sent')}" for f in missing[:3])
    return f"`{name}` was not called on {len(missing)} of them, which the probe could not read ({shown})"


@register("new_image_predictions", NewImagesParams, needs_run=False)
def new_image_predictions(ev: Evidence, params: NewImagesParams) -> CheckResult:
    """Reads the submission's ``new_images/`` as the grader decoded it (:mod:`grader.data.images`;
    dataset matches by perceptual hash) and ``predict``'s answers on them from the probe.
    Passes when at least ``min_images`` images decode, none is a dataset image, and ``predict``
    returned one of the challenge's class names for each of them; with ``shown``, also when the
    notebook's own outputs show the predictions of at least ``min_images`` of them
    (:func:`shown_predictions`): the grader's call stays the measurement. Unreadable images are named
    on their rows and in the message, and fail the criterion only by leaving too few. Too few
    images, or dataset copies, fail whatever became of the run; any other failure is
    not_measured, saying why, when the run left nothing to measure."""
    name = ev.challenge.contract.predict
    stopped = _not_called(ev, name)
    if stopped is not None and not ev.new_images:
        return stopped
    summary = _images_summary(ev)
    readable = [im for im in ev.new_images if im.error is None]
    if len(readable) < params.min_images:
        return fail(f"{summary}: {len(readable)} readable, {params.min_images} needed; add photos "
                    "you took or found that are not in the dataset", images=len(readable))
    copies = [f"{im.file} = {im.dataset_match}" for im in readable if im.dataset_match]
    if copies:
        return fail("these are dataset images, not new ones: " + "; ".join(copies[:5]), images=len(readable))
    run = ev.probe.new_images if ev.probe else None
    answers, why = _answers(ev, run, run.files if run else [], name, "predictions")
    if answers is None:
        return stopped or fail(f"{summary}; {why}", images=len(readable))
    unanswered = _unanswered(ev, run, answers, name)
    if unanswered:
        return stopped or fail(f"{summary}; {unanswered}", images=len(readable))
    unknown = sorted({answers[im.file] for im in readable} - set(ev.challenge.dataset.classes))
    if unknown:
        return stopped or fail(f"`{name}` returned names that are not classes: {unknown[:5]}",
                               images=len(readable))
    if params.shown:
        shown = shown_predictions(ev, {im.file: answers[im.file] for im in readable})
        if len(shown) < params.min_images:
            return stopped or fail(
                f"{summary}; {len(readable)} classified by `{name}` when the grader called it, but the notebook's "
                f"own outputs show the predictions of {len(shown)} of them, {params.min_images} needed: show "
                "each image with its predicted class and file name (plt.imshow(image); plt.title(f'{label} "
                "{file}')), or print the file name beside its prediction", images=len(readable), shown=len(shown))
        return passed(True, f"{summary}; {len(readable)} classified by `{name}`, {len(shown)} shown by the notebook",
                      images=len(readable), shown=len(shown))
    return passed(True, f"{summary}; {len(readable)} classified by `{name}`", images=len(readable))


class ImagenetParams(Params):
    min_images: int = Field(default=1, ge=1)


@register("imagenet_labels", ImagenetParams, needs_run=False)
def imagenet_labels(ev: Evidence, params: ImagenetParams) -> CheckResult:
    """Reads the answers of the contract's pretrained ImageNet classifier on ``new_images/``
    from the probe. Passes when at least ``min_images`` new images decode and the classifier
    returned a non-empty label for every one of them. Too few images fail whatever became of
    the run; any other failure is not_measured, saying why, when the run left nothing to measure."""
    name = ev.challenge.contract.imagenet or "the ImageNet classifier"
    stopped = _not_called(ev, name)
    if stopped is not None and not ev.new_images:
        return stopped
    summary = _images_summary(ev)
    readable = [im for im in ev.new_images if im.error is None]
    if len(readable) < params.min_images:
        return fail(f"{summary}: {len(readable)} readable, {params.min_images} needed", images=len(readable))
    run = ev.probe.new_images_extra.get("imagenet") if ev.probe else None
    skipped = {u.file for u in run.unreadable} if run else set()
    files = [im.file for im in ev.new_images if im.file not in skipped]  # the probe's order
    answers, why = _answers(ev, run, files, name, "labels")
    if answers is None:
        return stopped or fail(f"{summary}; {why}", images=len(readable))
    unanswered = _unanswered(ev, run, answers, name)
    if unanswered:
        return stopped or fail(f"{summary}; {unanswered}", images=len(readable))
    empty = [f for f in files if not answers[f].strip()]
    if empty:
        return stopped or fail(f"`{name}` returned an empty label for {', '.join(empty[:3])}",
                               images=len(readable))
    shown = ", ".join(f"{f}: {answers[f]}" for f in files[:3])
    return passed(True, f"{len(files)} photos labelled ({shown})", images=len(files))
