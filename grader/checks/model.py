"""Checks of the models the notebook defines, measured by the grader on the hidden test set.

The threshold checks (``hidden_accuracy``, ``transfer_learning``, ``per_class_report``,
``added_class_recall``) measure shares of images and report each with its 95% Wilson score
interval and ``n`` (:func:`grader.stats.wilson_interval`); they decide as the criterion's
``decision`` says (:class:`grader.checks.registry.ThresholdParams`) and mark the result
borderline when the interval contains the threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from grader.checks.registry import (
    CheckResult,
    Decision,
    NoParams,
    Params,
    ThresholdParams,
    fail,
    passed,
    register,
    run_problem,
)
from grader.evidence import Evidence, ModelRun
from grader.frameworks import framework_of
from grader.measure import measure
from grader.modelfile import human_size
from grader.stats import Interval, wilson_interval

# a class whose recall interval is wider than this has too few images to tell whether it is
# below the bar (8 images at recall 0.62: 0.31-0.86, width 0.56; 40 at 0.62: width 0.29)
TOO_FEW_WIDTH = 0.4


@register("notebook_runs", NoParams, needs_run=False)
def notebook_runs(ev: Evidence, params: NoParams) -> CheckResult:
    """Reads the execution facts and what the probe found defined. Passes when every cell ran
    without error inside its time limit, the kernel stayed alive, the probe ran to its end and
    the contract is defined: ``CLASS_NAMES`` a list of str and the predict function callable
    (as :func:`grader.checks.registry.run_problem` finds no problem)."""
    ex = ev.execution
    if ex.status == "malformed":  # the message names the file's fault and its own fix
        return dataclasses.replace(fail(ex.message or "the notebook is not a valid notebook",
                                        status=ex.status), fix="")
    if ex.status != "ok":
        return fail(ex.message or f"the run ended with status {ex.status}", status=ex.status)
    problem = run_problem(ev)
    if problem is not None:
        return fail(problem.reason)
    return passed(True, f"all cells ran in {ex.wall_s:.0f} s and the contract is defined",
                  wall_s=round(ex.wall_s, 1))


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
            f"{len(ev.hidden_labels)} {_images(ev)}"
        )
    return run.predictions, ""


def _images(ev: Evidence) -> str:
    """What the images scored are called: ``hidden test images``, or ``practice images`` for a
    practice run (the practice split of the public data)."""
    return "practice images" if ev.practice else "hidden test images"


def _verdict_set(ev: Evidence, predictions: list[str]) -> tuple[list[str], tuple[str, ...], str]:
    """The predictions and labels the verdict is decided on, and what they are in words.

    The whole hidden test set, unless the challenge's ``verdict_part`` names its public or
    private part (:class:`grader.challenge.Challenge`) and the hidden set records the split; a
    set without one (a practice run) is judged whole.
    """
    part = ev.challenge.verdict_part
    if part == "all" or ev.hidden_public is None:
        return predictions, ev.hidden_labels, _images(ev)
    keep = [i for i, public in enumerate(ev.hidden_public) if public == (part == "public")]
    return ([predictions[i] for i in keep], tuple(ev.hidden_labels[i] for i in keep),
            f"images of the {part} part of the hidden test set")


def _below(value: float, threshold: float) -> str:
    """``value`` to two decimals, or three where two would read as ``threshold`` (0.897)."""
    two = f"{value:.2f}"
    return f"{value:.3f}" if two == f"{threshold:.2f}" else two


def _span(ci: Interval) -> str:
    """``95% interval 0.864-0.922``."""
    return f"{ci.confidence:.0%} interval {ci.low:.3f}-{ci.high:.3f}"


@dataclass(frozen=True)
class Judgement:
    """A share judged against a threshold.

    Attributes:
        ci: the share with its 95% Wilson interval.
        threshold: the bar (0..1).
        decision: ``point`` (``ci.value >= threshold``) or ``lower_bound`` (``ci.low >= threshold``).
    """

    ci: Interval
    threshold: float
    decision: Decision

    @property
    def ok(self) -> bool:
        """Whether the share clears the threshold as ``decision`` says (ends included)."""
        return (self.ci.low if self.decision == "lower_bound" else self.ci.value) >= self.threshold

    @property
    def borderline(self) -> str:
        """What it means that the interval contains the threshold, in words; "" when it does not."""
        if not self.ci.contains(self.threshold):
            return ""
        return (f"{self.ci.value:.3f}, {_span(self.ci)} over {self.ci.n} images: the threshold "
                f"{self.threshold:.2f} is inside it; another draw of test images could "
                f"{'fail' if self.ok else 'pass'}")


def judge(k: int, n: int, threshold: float, decision: Decision = "point") -> Judgement:
    """Judge ``k`` successes in ``n`` images (n >= 1) against ``threshold``.

    Raises:
        ValueError: ``n`` < 1 or ``k`` outside 0..n (:func:`grader.stats.wilson_interval`).
    """
    return Judgement(ci=wilson_interval(k, n), threshold=threshold, decision=decision)


def _interval_fields(prefix: str, ci: Interval) -> dict[str, float | int | str]:
    """``{prefix: value, prefix_low: ..., prefix_high: ..., "n": n}``, rounded to 4 decimals."""
    return {prefix: round(ci.value, 4), f"{prefix}_low": round(ci.low, 4),
            f"{prefix}_high": round(ci.high, 4), "n": ci.n}


class AccuracyParams(ThresholdParams):
    model: Literal["predict", "transfer", "mlp"] = "predict"
    threshold: float = Field(ge=0, le=1)
    decision: Decision = "point"


@register("hidden_accuracy", AccuracyParams)
def hidden_accuracy(ev: Evidence, params: AccuracyParams) -> CheckResult:
    """Reads the probe's predictions of ``model`` on the hidden test set and the hidden labels.
    Passes when every prediction is one of the challenge's class names and accuracy (share of
    correct predictions) >= ``threshold``; with ``decision = "lower_bound"``, when the lower end
    of the accuracy's 95% Wilson interval >= ``threshold``. Borderline when the interval contains
    ``threshold``."""
    contract = ev.challenge.contract
    name = {"predict": contract.predict, "transfer": contract.transfer or "predict_transfer",
            "mlp": contract.mlp or "predict_mlp"}[params.model]
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
    predictions, labels, images = _verdict_set(ev, predictions)
    if not labels:
        return fail(f"no {_images(ev)}: nothing to measure")
    hits = sum(p == label for p, label in zip(predictions, labels, strict=True))
    j = judge(hits, len(labels), params.threshold, params.decision)
    ci = j.ci
    scored = f"`{name}` scored {ci.value:.3f} on {ci.n} {images}"
    verdict = "at least" if j.ok else "below"
    if params.decision == "lower_bound":
        message = (f"{scored} ({_span(ci)}); the interval's lower end {ci.low:.3f} is {verdict} "
                   f"{params.threshold:.2f}, which this criterion decides on")
        short = f"lower end {_below(ci.low, params.threshold)} < {params.threshold:.2f}"
    else:
        message = f"{scored}, {verdict} {params.threshold:.2f} ({_span(ci)})"
        short = f"{_below(ci.value, params.threshold)} < {params.threshold:.2f}"
    return passed(j.ok, message, short=short, borderline=j.borderline, **_interval_fields("accuracy", ci))


class PerClassParams(ThresholdParams):
    min_recall: float = Field(default=0.0, ge=0, le=1)
    decision: Decision = "point"


@register("per_class_report", PerClassParams)
def per_class_report(ev: Evidence, params: PerClassParams) -> CheckResult:
    """Reads ``predict``'s predictions on the hidden test set. The grader computes precision,
    recall (per-class accuracy) and the confusion matrix with scikit-learn, and each class's
    recall interval (95% Wilson, over the class's images). Passes when every class present in
    the hidden test set has recall >= ``min_recall`` (``decision = "lower_bound"``: the lower end
    of its interval). The failure names the classes below the bar and which of them have too
    few images to tell (an interval wider than ``TOO_FEW_WIDTH``, 0.4). Borderline when the
    interval of a class that decided the verdict contains ``min_recall``."""
    predictions, why = _predictions(ev, "predict", ev.challenge.contract.predict)
    if predictions is None:
        return fail(why)
    predictions, labels, _ = _verdict_set(ev, predictions)
    m = measure(labels, predictions, ev.challenge.dataset.classes)
    judged = [(r, judge(m.confusion[i][i], r.support, params.min_recall, params.decision))
              for i, r in enumerate(m.rows) if r.support > 0 and i < len(m.confusion)]
    if not judged:
        return fail(f"no {_images(ev)}: nothing to measure")
    weak = [(r, j) for r, j in judged if not j.ok]
    worst, worst_j = min(judged, key=lambda rj: rj[0].recall)
    fields: dict[str, float | int | str] = {"worst_recall": round(worst.recall, 4),
                                            "worst_recall_low": round(worst_j.ci.low, 4),
                                            "worst_recall_high": round(worst_j.ci.high, 4),
                                            "worst_n": worst.support}
    bar = f"recall {params.min_recall:.2f}" + (" (the lower end of its interval)"
                                               if params.decision == "lower_bound" else "")
    if weak:
        names = ", ".join(f"{r.name} {r.recall:.2f} ({j.ci.k} of {j.ci.n} images, {_span(j.ci)})"
                          for r, j in weak)
        message = f"classes below {bar}: {names}"
        few = [r.name for r, j in weak if j.ci.width > TOO_FEW_WIDTH]
        if few:
            message += (f"; too few images to tell for {', '.join(few)}: "
                        f"{'its interval is' if len(few) == 1 else 'their intervals are'} wider than "
                        f"{TOO_FEW_WIDTH:.1f}")
        doubt = [j.borderline for _, j in weak if j.borderline]
        short = f"{len(weak)} class{'es' if len(weak) > 1 else ''} below {params.min_recall:.2f}"
        return CheckResult(status="fail", message=message, measured=fields, short=short,
                           borderline=_classes_borderline([r.name for r, j in weak if j.borderline], doubt))
    close = [(r, j) for r, j in judged if j.borderline]
    return CheckResult(status="pass", message=f"every class at {bar} or more; lowest: {worst.name} "
                       f"{worst.recall:.2f} ({worst_j.ci.k} of {worst_j.ci.n} images, {_span(worst_j.ci)})",
                       measured=fields,
                       borderline=_classes_borderline([r.name for r, _ in close], [j.borderline for _, j in close]))


def _classes_borderline(names: list[str], words: list[str]) -> str:
    """The borderline words of the classes ``names`` (one :attr:`Judgement.borderline` each)."""
    if not names:
        return ""
    return "; ".join(f"{name}: {w}" for name, w in zip(names[:3], words[:3], strict=True)) + (
        f"; and {len(names) - 3} more" if len(names) > 3 else "")


class NewImagesParams(Params):
    min_images: int = Field(default=5, ge=1)


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
    left nothing to measure (:func:`grader.checks.registry.run_problem`), else None."""
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
    return CheckResult(status="not_measured", fix=problem.fix,
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
    """Reads the submission's ``new_images/`` as the grader decoded it (:mod:`grader.images`;
    dataset matches by perceptual hash) and ``predict``'s answers on them from the probe.
    Passes when at least ``min_images`` images decode, none is a dataset image, and ``predict``
    returned one of the challenge's class names for each of them. Unreadable images are named
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
    return passed(True, f"{summary}; {len(readable)} classified by `{name}`", images=len(readable))


class TransferParams(ThresholdParams):
    threshold: float = Field(ge=0, le=1)
    decision: Decision = "point"


@register("transfer_learning", TransferParams)
def transfer_learning(ev: Evidence, params: TransferParams) -> CheckResult:
    """Reads the probe's predictions of the transfer-learning model on the hidden test set.
    Passes when the contract's transfer function is defined, returns class names and reaches
    accuracy >= ``threshold`` (``decision = "lower_bound"``: the lower end of its 95% interval),
    as ``hidden_accuracy`` decides."""
    return hidden_accuracy(ev, AccuracyParams(model="transfer", threshold=params.threshold,
                                              decision=params.decision))


class SavedModelParams(Params):
    min_bytes: int = Field(default=1024, ge=1)


_SAVE_HINTS = {
    "pytorch": "torch.save(model.state_dict(), os.path.join(MODEL_DIR, 'best.pt'))",
    "tensorflow": "model.save(os.path.join(MODEL_DIR, 'best.keras'))",
    "sklearn": "joblib.dump(model, os.path.join(MODEL_DIR, 'model.joblib'))",
}


def _save_hint(ev: Evidence) -> str:
    """How to save a model in the framework the notebook imports (:func:`grader.frameworks.framework_of`)."""
    framework = framework_of(ev.code)
    if framework is not None:
        return f"save your best model there: {_SAVE_HINTS[framework]}"
    return ("save your best model there: " + _SAVE_HINTS["pytorch"] + " in PyTorch, "
            + _SAVE_HINTS["tensorflow"] + " in Keras, " + _SAVE_HINTS["sklearn"] + " in scikit-learn")


@register("saved_model", SavedModelParams)
def saved_model(ev: Evidence, params: SavedModelParams) -> CheckResult:
    """Reads the listing of ``MODEL_DIR`` after the run, with each file's format as its
    signature shows it (:mod:`grader.modelfile`: nothing is unpickled or loaded). Passes when a
    file (or TensorFlow SavedModel folder) of a recognised model format and at least
    ``min_bytes`` bytes was written there during this run. The failure names what was found
    instead and how to save a model in the framework the notebook imports."""
    fresh = [f for f in ev.model_files if f.written_during_run]
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
    older = [f.path for f in ev.model_files]
    before = f" ({', '.join(older[:3])} {'is' if len(older) == 1 else 'are'} older than the run)" if older else ""
    return fail(f"no model file was saved under MODEL_DIR during this run{before}; {hint}", files=0)


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
                  f"{added.name!r} (recall {j.ci.value:.2f}, {_span(j.ci)}; {needed})",
                  short=f"recall {_below(j.ci.value, params.min_recall)} < {params.min_recall:.2f}",
                  borderline=j.borderline, **_interval_fields("recall", j.ci))


class MnistParams(ThresholdParams):
    threshold: float = Field(default=0.9, ge=0, le=1)
    decision: Decision = "point"


@register("mnist_accuracy", MnistParams)
def mnist_accuracy(ev: Evidence, params: MnistParams) -> CheckResult:
    """Reads the answers of the contract's ``mnist`` function (``predict_mnist``: the notebook's
    MLP trained on MNIST, :mod:`grader.mnist`) on the 10,000 MNIST test images, whose labels
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
    return passed(j.ok, f"`{name}` scored {j.ci.value:.3f} on {j.ci.n} MNIST test images ({_span(j.ci)}; {needed})",
                  short=f"{_below(j.ci.value, params.threshold)} < {params.threshold:.2f}",
                  borderline=j.borderline, **_interval_fields("accuracy", j.ci))
