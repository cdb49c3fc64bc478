"""Checks of the models the notebook defines, measured by the grader on the hidden test set.

The threshold checks (``hidden_accuracy``, ``per_class_report`` here; ``transfer_learning``,
``added_class_recall`` and ``mnist_accuracy`` in :mod:`grader.score.checks.transfer`) measure
shares of images and report each with its 95% Wilson score interval and ``n``
(:func:`grader.score.stats.wilson_interval`); they decide as the criterion's ``decision`` says
(:class:`grader.score.checks.registry.ThresholdParams`, :func:`judge`) and mark the result
borderline when the interval contains the threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from grader.evidence import Evidence
from grader.score.checks.registry import (
    CheckResult,
    Decision,
    NoParams,
    ThresholdParams,
    fail,
    passed,
    register,
    run_problem,
)
from grader.score.measure import measure
from grader.score.stats import TOO_FEW_WIDTH, Interval, wilson_interval

__all__ = ["AccuracyParams", "Judgement", "PerClassParams", "below", "hidden_accuracy", "interval_fields", "judge",
           "notebook_runs", "per_class_report", "same_model", "span"]


@register("notebook_runs", NoParams, needs_run=False)
def notebook_runs(ev: Evidence, params: NoParams) -> CheckResult:
    """Reads the execution facts and what the probe found defined. Passes when every cell ran
    without error inside its time limit, the kernel stayed alive, the probe ran to its end and
    the contract is defined: ``CLASS_NAMES`` a list of str and the predict function callable
    (as :func:`grader.score.checks.registry.run_problem` finds no problem)."""
    ex = ev.execution
    if ex.status == "malformed":  # the message names the file's fault and its own fix
        return dataclasses.replace(fail(ex.message or "the notebook is not a valid notebook",
                                        status=ex.status), fix="")
    if ex.status != "ok":  # the scorecard says it once, above the criteria (CheckResult.of_run)
        return dataclasses.replace(fail(ex.message or f"the run ended with status {ex.status}", status=ex.status),
                                   of_run=True)
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
    private part (:class:`grader.core.challenge.Challenge`) and the hidden set records the split; a
    set without one (a practice run) is judged whole.
    """
    part = ev.challenge.verdict_part
    if part == "all" or ev.hidden_public is None:
        return predictions, ev.hidden_labels, _images(ev)
    keep = [i for i, public in enumerate(ev.hidden_public) if public == (part == "public")]
    return ([predictions[i] for i in keep], tuple(ev.hidden_labels[i] for i in keep),
            f"images of the {part} part of the hidden test set")


def below(value: float, threshold: float) -> str:
    """``value`` to two decimals, or three where two would read as ``threshold`` (0.897)."""
    two = f"{value:.2f}"
    return f"{value:.3f}" if two == f"{threshold:.2f}" else two


def span(ci: Interval) -> str:
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
        return (f"{self.ci.value:.3f}, {span(self.ci)} over {self.ci.n} images: the threshold "
                f"{self.threshold:.2f} is inside it; another draw of test images could "
                f"{'fail' if self.ok else 'pass'}")


def judge(k: int, n: int, threshold: float, decision: Decision = "point") -> Judgement:
    """Judge ``k`` successes in ``n`` images (n >= 1) against ``threshold``.

    Raises:
        ValueError: ``n`` < 1 or ``k`` outside 0..n (:func:`grader.score.stats.wilson_interval`).
    """
    return Judgement(ci=wilson_interval(k, n), threshold=threshold, decision=decision)


def interval_fields(prefix: str, ci: Interval) -> dict[str, float | int | str]:
    """``{prefix: value, prefix_low: ..., prefix_high: ..., "n": n}``, rounded to 4 decimals."""
    return {prefix: round(ci.value, 4), f"{prefix}_low": round(ci.low, 4),
            f"{prefix}_high": round(ci.high, 4), "n": ci.n}


class AccuracyParams(ThresholdParams):
    model: Literal["predict", "transfer", "mlp"] = "predict"
    threshold: float = Field(ge=0, le=1)
    # a second model (transfer, mlp) may answer exactly as predict: where a challenge means one
    # model to earn both criteria
    allow_same_model: bool = False
    decision: Decision = "point"


def same_model(ev: Evidence, role: str, predictions: list[str]) -> str:
    """Why ``role``'s ``predictions`` on the hidden test set are the ``predict`` model's own, or "".

    Two functions a rubric treats as different models (``predict`` and ``predict_transfer``, or
    ``predict_mlp``) that answer identically on every hidden image are one model (``predict =
    predict_transfer``): the criterion of the second fails, so that one model earns one
    criterion. The test is on the answers, not on the names: nothing of the kernel's objects
    leaves it. It is decided on the public part of the hidden test set where it has one: its
    outcome reaches the team's scorecard as it is, and the private part steers nothing a team
    reads (:mod:`grader.report.teamcard`).
    """
    if role == "predict" or ev.probe is None:
        return ""
    first = ev.probe.models.get("predict")
    if first is None or first.predictions is None or len(first.predictions) != len(predictions):
        return ""
    keep = (range(len(predictions)) if ev.hidden_public is None or len(ev.hidden_public) != len(predictions)
            else [i for i, public in enumerate(ev.hidden_public) if public])
    if not keep or any(first.predictions[i] != predictions[i] for i in keep):
        return ""
    images = _images(ev) if len(keep) == len(predictions) else "images of the public part of the hidden test set"
    contract = ev.challenge.contract
    name = {"transfer": contract.transfer or "predict_transfer", "mlp": contract.mlp or "predict_mlp"}[role]
    kind = {"transfer": "a transfer-learning model", "mlp": "a multilayer perceptron"}[role]
    return (f"`{name}` answered exactly as `{contract.predict}` on all {len(keep)} {images}: it is "
            f"the same model, and it earns one criterion; this one needs a second model, {kind}, of its own")


@register("hidden_accuracy", AccuracyParams)
def hidden_accuracy(ev: Evidence, params: AccuracyParams) -> CheckResult:
    """Reads the probe's predictions of ``model`` on the hidden test set and the hidden labels.
    Passes when every prediction is one of the challenge's class names and accuracy (share of
    correct predictions) >= ``threshold``; with ``decision = "lower_bound"``, when the lower end
    of the accuracy's 95% Wilson interval >= ``threshold``. Borderline when the interval contains
    ``threshold``. A second model (``transfer``, ``mlp``) that answers exactly as ``predict`` on
    every hidden image fails, unless ``allow_same_model`` (:func:`same_model`)."""
    contract = ev.challenge.contract
    name = {"predict": contract.predict, "transfer": contract.transfer or "predict_transfer",
            "mlp": contract.mlp or "predict_mlp"}[params.model]
    predictions, why = _predictions(ev, params.model, name)
    if predictions is None:
        return fail(why)
    same = "" if params.allow_same_model else same_model(ev, params.model, predictions)
    if same:
        return fail(same, short="same model as predict")
    m = measure(ev.hidden_labels, predictions, ev.challenge.dataset.classes)
    if m.unknown_labels:  # neither echoed nor counted: the kernel held the hidden images (grader.sandbox.gate)
        return fail(
            f"`{name}` returned answers that are not a class name of this challenge; return names from "
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
        message = (f"{scored} ({span(ci)}); the interval's lower end {ci.low:.3f} is {verdict} "
                   f"{params.threshold:.2f}, which this criterion decides on")
        short = f"lower end {below(ci.low, params.threshold)} < {params.threshold:.2f}"
    else:
        message = f"{scored}, {verdict} {params.threshold:.2f} ({span(ci)})"
        short = f"{below(ci.value, params.threshold)} < {params.threshold:.2f}"
    return passed(j.ok, message, short=short, borderline=j.borderline, **interval_fields("accuracy", ci))


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
        names = ", ".join(f"{r.name} {r.recall:.2f} ({j.ci.k} of {j.ci.n} images, {span(j.ci)})"
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
                       f"{worst.recall:.2f} ({worst_j.ci.k} of {worst_j.ci.n} images, {span(worst_j.ci)})",
                       measured=fields,
                       borderline=_classes_borderline([r.name for r, _ in close], [j.borderline for _, j in close]))


def _classes_borderline(names: list[str], words: list[str]) -> str:
    """The borderline words of the classes ``names`` (one :attr:`Judgement.borderline` each)."""
    if not names:
        return ""
    return "; ".join(f"{name}: {w}" for name, w in zip(names[:3], words[:3], strict=True)) + (
        f"; and {len(names) - 3} more" if len(names) > 3 else "")
