"""Checks of the models beside the classifier: the transfer-learning model, the saved model file,
the added-class model and the MNIST model, each measured by the grader on its own held-out images."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from grader.evidence import Evidence, framework_of, human_size
from grader.score.checks.accuracy import AccuracyParams, below, hidden_accuracy, interval_fields, judge, span
from grader.score.checks.registry import CheckResult, Decision, Params, ThresholdParams, fail, passed, register

__all__ = ["AddedClassParams", "MnistParams", "SavedModelParams", "TransferParams", "added_class_recall",
           "mnist_accuracy", "saved_model", "transfer_learning"]


class TransferParams(ThresholdParams):
    threshold: float = Field(ge=0, le=1)
    allow_same_model: bool = False
    decision: Decision = "point"


@register("transfer_learning", TransferParams)
def transfer_learning(ev: Evidence, params: TransferParams) -> CheckResult:
    """Reads the probe's predictions of the transfer-learning model on the hidden test set.
    Passes when the contract's transfer function is defined, returns class names and reaches
    accuracy >= ``threshold`` (``decision = "lower_bound"``: the lower end of its 95% interval),
    as ``hidden_accuracy`` decides; it fails when it answers exactly as ``predict`` on every
    hidden image (``predict_transfer = predict``), unless ``allow_same_model``."""
    return hidden_accuracy(ev, AccuracyParams(model="transfer", threshold=params.threshold,
                                              allow_same_model=params.allow_same_model,
                                              decision=params.decision))


class SavedModelParams(Params):
    min_bytes: int = Field(default=1024, ge=1)


_SAVE_HINTS = {
    "pytorch": "torch.save(model.state_dict(), os.path.join(MODEL_DIR, 'best.pt'))",
    "tensorflow": "model.save(os.path.join(MODEL_DIR, 'best.keras'))",
    "sklearn": "joblib.dump(model, os.path.join(MODEL_DIR, 'model.joblib'))",
}


def _save_hint(ev: Evidence) -> str:
    """How to save a model in the framework the notebook imports (:func:`grader.evidence.frameworks.framework_of`)."""
    framework = framework_of(ev.code)
    if framework is not None:
        return f"save your best model there: {_SAVE_HINTS[framework]}"
    return ("save your best model there: " + _SAVE_HINTS["pytorch"] + " in PyTorch, "
            + _SAVE_HINTS["tensorflow"] + " in Keras, " + _SAVE_HINTS["sklearn"] + " in scikit-learn")


@register("saved_model", SavedModelParams)
def saved_model(ev: Evidence, params: SavedModelParams) -> CheckResult:
    """Reads the listing of ``MODEL_DIR`` after the run, with each file's format as its
    signature shows it (:mod:`grader.evidence.modelfile`: nothing is unpickled or loaded). Passes when a
    file (or TensorFlow SavedModel folder) of a recognised model format and at least
    ``min_bytes`` bytes was written there during this run. The failure names what was found
    instead and how to save a model in the framework the notebook imports."""
    fresh = [f for f in ev.model_files if f.written_during_run and not f.outside]
    models = [f for f in fresh if f.format is not None]
    big = [f for f in models if f.size >= params.min_bytes]
    if big:
        names = ", ".join(f"{f.path} ({f.description}, {human_size(f.size)})" for f in big[:3])
        return passed(True, f"saved: {names}", files=len(big))
    hint = _save_hint(ev)
    if models:
        small = "; ".join(f"{f.path} is a {f.description} of {human_size(f.size)}" for f in models[:3])
        return fail(f"{small}: under the {human_size(params.min_bytes)} a trained model takes; {hint}",
                    files=0)
    if fresh:
        junk = "; ".join(f"{f.path} ({human_size(f.size)}) is not a model file: {f.description}" for f in fresh[:3])
        return fail(f"{junk}; {hint}", files=0)
    older = [f.path for f in ev.model_files if not f.outside]
    before = f" ({', '.join(older[:3])} {'is' if len(older) == 1 else 'are'} older than the run)" if older else ""
    stray = [f for f in ev.model_files if f.outside]
    if stray:
        where = "; ".join(f"{f.path} ({f.description}, {human_size(f.size)})" for f in stray[:3])
        return fail(f"no model file was saved under MODEL_DIR during this run{before}, but the notebook saved "
                    f"{where} outside it: save it under MODEL_DIR instead, "
                    f"os.path.join(MODEL_DIR, {Path(stray[0].path).name!r})", files=0)
    return fail(f"no model file was saved under MODEL_DIR during this run{before}; {hint}", files=0)


class AddedClassParams(ThresholdParams):
    min_recall: float = Field(default=0.5, ge=0, le=1)
    decision: Decision = "point"


@register("added_class_recall", AddedClassParams)
def added_class_recall(ev: Evidence, params: AddedClassParams) -> CheckResult:
    """Reads the answers of the contract's added-class model on the held-out images of the
    added class (the grader alone knows they all belong to it). Passes when the share called
    by the added class's name (its recall) is >= ``min_recall`` (``decision = "lower_bound"``:
    the lower end of its 95% Wilson interval). Borderline when the interval contains
    ``min_recall``."""
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
    j = judge(hits, len(ev.added_labels), params.min_recall, params.decision)
    needed = (f"its lower end needed {params.min_recall:.2f}" if params.decision == "lower_bound"
              else f"needed {params.min_recall:.2f}")
    return passed(j.ok,
                  f"`{name}` called {hits} of {len(ev.added_labels)} held-out {added.name} photos "
                  f"{added.name!r} (recall {j.ci.value:.2f}, {span(j.ci)}; {needed})",
                  short=f"recall {below(j.ci.value, params.min_recall)} < {params.min_recall:.2f}",
                  borderline=j.borderline, **interval_fields("recall", j.ci))


class MnistParams(ThresholdParams):
    threshold: float = Field(default=0.9, ge=0, le=1)
    decision: Decision = "point"


@register("mnist_accuracy", MnistParams)
def mnist_accuracy(ev: Evidence, params: MnistParams) -> CheckResult:
    """Reads the answers of the contract's ``mnist`` function (``predict_mnist``: the notebook's
    MLP trained on MNIST, :mod:`grader.data.mnist`) on the 10,000 MNIST test images, whose labels
    ("0" to "9") the grader alone holds. Passes when its accuracy is >= ``threshold``
    (``decision = "lower_bound"``: the lower end of its 95% Wilson interval). Borderline when the
    interval contains ``threshold``. Seed 001's comparison: optional, off in the rubric unless
    enabled."""
    name = ev.challenge.contract.mnist or "predict_mnist"
    if ev.challenge.dataset.mnist is None or not ev.mnist_labels:
        return fail("this challenge has no MNIST test set to measure")
    run = ev.probe.extra_sets.get("mnist") if ev.probe else None
    if run is None:
        return fail(f"`{name}` is not defined" if ev.probe else f"`{name}` {ev.probe_error or 'was not called'}")
    if run.predictions is None:
        return fail(f"`{name}` {run.error or 'returned nothing'}")
    if len(run.predictions) != len(ev.mnist_labels):
        return fail(f"`{name}` returned {len(run.predictions)} answers for {len(ev.mnist_labels)} images")
    hits = sum(p == label for p, label in zip(run.predictions, ev.mnist_labels, strict=True))
    j = judge(hits, len(ev.mnist_labels), params.threshold, params.decision)
    needed = (f"its lower end needed {params.threshold:.2f}" if params.decision == "lower_bound"
              else f"needed {params.threshold:.2f}")
    return passed(j.ok, f"`{name}` scored {j.ci.value:.3f} on {j.ci.n} MNIST test images ({span(j.ci)}; {needed})",
                  short=f"{below(j.ci.value, params.threshold)} < {params.threshold:.2f}",
                  borderline=j.borderline, **interval_fields("accuracy", j.ci))
