"""Checks of the models the notebook defines, measured by the grader on the hidden test set."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.checks.registry import CheckResult, NoParams, Params, fail, passed, register
from grader.evidence import Evidence
from grader.measure import measure


@register("notebook_runs", NoParams)
def notebook_runs(ev: Evidence, params: NoParams) -> CheckResult:
    """Reads the execution facts. Passes when every cell ran without error inside its time
    limit, the kernel stayed alive and the probe ran to its end."""
    ex = ev.execution
    if ex.status != "ok":
        return fail(ex.message or f"the run ended with status {ex.status}", status=ex.status)
    if ex.probe is None or ex.probe.status != "ok":
        detail = ex.probe.message if ex.probe else "it did not run"
        return fail(f"the notebook ran, but calling its contract failed: {detail}")
    if ev.probe_error:
        return fail(ev.probe_error)
    return passed(True, f"all cells ran in {ex.wall_s:.0f} s", wall_s=round(ex.wall_s, 1))


def _predictions(ev: Evidence, role: str, name: str) -> tuple[list[str] | None, str]:
    """The predictions of ``role`` on the hidden test set, or None and why not."""
    if ev.probe is None:
        return None, f"`{name}` could not be called: {ev.probe_error or ev.execution.message}"
    run = ev.probe.models.get(role)  # type: ignore[call-overload]
    if run is None:
        return None, f"`{name}` was not called"
    if run.error is not None or run.predictions is None:
        return None, f"`{name}` {run.error or 'returned nothing'}"
    if len(run.predictions) != len(ev.hidden_labels):
        return None, (
            f"`{name}` returned {len(run.predictions)} predictions for "
            f"{len(ev.hidden_labels)} hidden test images"
        )
    return run.predictions, ""


class AccuracyParams(Params):
    model: Literal["predict", "transfer"] = "predict"
    threshold: float = Field(ge=0, le=1)


@register("hidden_accuracy", AccuracyParams)
def hidden_accuracy(ev: Evidence, params: AccuracyParams) -> CheckResult:
    """Reads the probe's predictions of ``model`` on the hidden test set and the hidden labels.
    Passes when every prediction is one of the challenge's class names and accuracy (share of
    correct predictions) >= ``threshold``."""
    contract = ev.challenge.contract
    name = contract.predict if params.model == "predict" else contract.transfer or "predict_transfer"
    predictions, why = _predictions(ev, params.model, name)
    if predictions is None:
        return fail(why)
    m = measure(ev.hidden_labels, predictions, ev.challenge.dataset.classes)
    if m.unknown_labels:
        shown = ", ".join(repr(u) for u in m.unknown_labels[:5])
        return fail(
            f"`{name}` returned names that are not classes: {shown}; return names from "
            f"{contract.class_names}",
            accuracy=round(m.accuracy, 4),
        )
    ok = m.accuracy >= params.threshold
    verdict = "at least" if ok else "below"
    return passed(
        ok,
        f"`{name}` scored {m.accuracy:.3f} on {m.n} hidden test images, {verdict} "
        f"{params.threshold:.2f}",
        accuracy=round(m.accuracy, 4),
    )


class PerClassParams(Params):
    min_recall: float = Field(default=0.0, ge=0, le=1)


@register("per_class_report", PerClassParams)
def per_class_report(ev: Evidence, params: PerClassParams) -> CheckResult:
    """Reads ``predict``'s predictions on the hidden test set. The grader computes precision,
    recall (per-class accuracy) and the confusion matrix with scikit-learn. Passes when every
    class present in the hidden test set has recall >= ``min_recall``."""
    predictions, why = _predictions(ev, "predict", ev.challenge.contract.predict)
    if predictions is None:
        return fail(why)
    m = measure(ev.hidden_labels, predictions, ev.challenge.dataset.classes)
    present = [r for r in m.rows if r.support > 0]
    weak = [r for r in present if r.recall < params.min_recall]
    worst = min(present, key=lambda r: r.recall)
    if weak:
        names = ", ".join(f"{r.name} ({r.recall:.2f})" for r in weak)
        return fail(f"classes below recall {params.min_recall:.2f}: {names}",
                     worst_recall=round(worst.recall, 4))
    return passed(True, f"every class at recall {params.min_recall:.2f} or more; lowest: "
                   f"{worst.name} {worst.recall:.2f}", worst_recall=round(worst.recall, 4))


class NewImagesParams(Params):
    min_images: int = Field(default=5, ge=1)


@register("new_image_predictions", NewImagesParams)
def new_image_predictions(ev: Evidence, params: NewImagesParams) -> CheckResult:
    """Reads the submission's ``new_images/`` (dataset matches by content and perceptual hash)
    and ``predict``'s answers on them. Passes when at least ``min_images`` readable images are
    there, none is a dataset image, and ``predict`` returned a class name for each."""
    readable = [im for im in ev.new_images if im.error is None]
    if len(readable) < params.min_images:
        return fail(f"{len(readable)} readable images in new_images/; add at least "
                     f"{params.min_images} photos that are not in the dataset",
                     images=len(readable))
    copies = [f"{im.file} = {im.dataset_match}" for im in readable if im.dataset_match]
    if copies:
        return fail("these are dataset images, not new ones: " + "; ".join(copies[:5]),
                     images=len(readable))
    run = ev.probe.new_images if ev.probe else None
    name = ev.challenge.contract.predict
    if run is None or run.predictions is None:
        return fail(f"`{name}` gave no predictions for new_images/: "
                     f"{run.error if run else 'it was not called'}")
    unknown = sorted(set(run.predictions) - set(ev.challenge.dataset.classes))
    if unknown:
        return fail(f"`{name}` returned names that are not classes: {unknown[:5]}")
    return passed(True, f"{len(run.predictions)} new images classified", images=len(readable))


class TransferParams(Params):
    threshold: float = Field(ge=0, le=1)


@register("transfer_learning", TransferParams)
def transfer_learning(ev: Evidence, params: TransferParams) -> CheckResult:
    """Reads the probe's predictions of the transfer-learning model on the hidden test set.
    Passes when the contract's transfer function is defined, returns class names and reaches
    accuracy >= ``threshold``."""
    return hidden_accuracy(ev, AccuracyParams(model="transfer", threshold=params.threshold))


class SavedModelParams(Params):
    min_bytes: int = Field(default=1024, ge=1)


@register("saved_model", SavedModelParams)
def saved_model(ev: Evidence, params: SavedModelParams) -> CheckResult:
    """Reads the listing of ``MODEL_DIR`` after the run (files are never loaded). Passes when
    a file of at least ``min_bytes`` bytes was written there during this run."""
    fresh = [f for f in ev.model_files if f.written_during_run and f.size >= params.min_bytes]
    if not fresh:
        return fail(f"no model file of {params.min_bytes} bytes or more was saved under "
                     "MODEL_DIR during this run; save your best model there "
                     "(torch.save(model.state_dict(), os.path.join(MODEL_DIR, 'best.pt')))",
                     files=len(ev.model_files))
    names = ", ".join(f"{f.path} ({f.size / 1e6:.1f} MB)" for f in fresh[:3])
    return passed(True, f"saved: {names}", files=len(fresh))


class ImagenetParams(Params):
    min_images: int = Field(default=1, ge=1)


@register("imagenet_labels", ImagenetParams)
def imagenet_labels(ev: Evidence, params: ImagenetParams) -> CheckResult:
    """Reads the answers of the contract's pretrained ImageNet classifier on ``new_images/``.
    Passes when at least ``min_images`` new images are there and the classifier returned a
    non-empty label for every one of them."""
    name = ev.challenge.contract.imagenet or "the ImageNet classifier"
    readable = [im for im in ev.new_images if im.error is None]
    if len(readable) < params.min_images:
        return fail(f"{len(readable)} readable images in new_images/; add at least {params.min_images}")
    run = ev.probe.new_images_extra.get("imagenet") if ev.probe else None
    if run is None or run.predictions is None:
        return fail(f"`{name}` gave no labels for new_images/: {run.error if run else 'it was not called'}")
    if not all(label.strip() for label in run.predictions):
        return fail(f"`{name}` returned an empty label")
    files = [im.file for im in ev.new_images]
    shown = ", ".join(f"{f}: {label}" for f, label in list(zip(files, run.predictions, strict=False))[:3])
    return passed(True, f"{len(run.predictions)} photos labelled ({shown})", images=len(run.predictions))


class AddedClassParams(Params):
    min_recall: float = Field(default=0.5, ge=0, le=1)


@register("added_class_recall", AddedClassParams)
def added_class_recall(ev: Evidence, params: AddedClassParams) -> CheckResult:
    """Reads the answers of the contract's added-class model on the held-out images of the
    added class (the grader alone knows they all belong to it). Passes when the share called
    by the added class's name (its recall) is >= ``min_recall``."""
    added = ev.challenge.dataset.added_class
    name = ev.challenge.contract.added or "the added-class model"
    if added is None or not ev.added_labels:
        return fail("this challenge has no added class to measure")
    run = ev.probe.extra_sets.get("added") if ev.probe else None
    if run is None or run.predictions is None:
        why = run.error if run else (ev.probe_error or "it was not called")
        return fail(f"`{name}` {why}")
    if len(run.predictions) != len(ev.added_labels):
        return fail(f"`{name}` returned {len(run.predictions)} answers for {len(ev.added_labels)} images")
    hits = sum(p == added.name for p in run.predictions)
    recall = hits / len(ev.added_labels)
    return passed(recall >= params.min_recall,
                  f"`{name}` called {hits} of {len(ev.added_labels)} held-out {added.name} photos "
                  f"{added.name!r} (recall {recall:.2f}, needed {params.min_recall:.2f})",
                  recall=round(recall, 4))
