"""What a threshold criterion on the hidden test set compares, kept with its result (``result.json``
schema 3) so that a team's view decides it again on the public part (:mod:`grader.report.teamcard`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from grader.score.checks import CheckResult
from grader.score.rubric import Criterion

__all__ = ["Bar", "bar_of"]


class Bar(BaseModel):
    """What a threshold criterion on the hidden test set compared (schema 3): ``figure``
    ``accuracy`` (the ``role`` model's accuracy) or ``worst_recall`` (the lowest per-class recall
    of the ``role`` model over the classes with images), against ``threshold`` (0..1), decided as
    the criterion's ``decision`` says. Set only where the check judged that share (not where it
    failed before, e.g. on answers that are no class names), so that a view can decide the
    criterion again on one part of the hidden test set (:func:`grader.report.teamcard.decide_on`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    figure: Literal["accuracy", "worst_recall"]
    role: Literal["predict", "transfer", "mlp"]
    threshold: float


# the threshold checks on the hidden test set: check -> (figure, role, the parameter holding the
# threshold, the measured key present only where the check judged the share against it)
_BARS: dict[str, tuple[Literal["accuracy", "worst_recall"], str, str, str]] = {
    "hidden_accuracy": ("accuracy", "", "threshold", "accuracy_low"),
    "transfer_learning": ("accuracy", "transfer", "threshold", "accuracy_low"),
    "per_class_report": ("worst_recall", "predict", "min_recall", "worst_recall_low"),
}


def bar_of(criterion: Criterion, result: CheckResult, profile: str | None) -> Bar | None:
    """The :class:`Bar` of a threshold criterion on the hidden test set whose check judged its
    share (module's :data:`_BARS`); None for any other."""
    known = _BARS.get(criterion.check)
    if known is None or known[3] not in result.measured:
        return None
    figure, role, key = known[:3]
    params = criterion.params_for(profile)
    role = role or str(getattr(params, "model", "predict"))
    threshold = getattr(params, key, None)
    if role not in ("predict", "transfer", "mlp") or not isinstance(threshold, float | int):
        return None
    return Bar(figure=figure, role=role, threshold=float(threshold))  # type: ignore[arg-type]
