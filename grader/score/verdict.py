"""A notebook's rubric criteria combined with their check results: each criterion's row of the
scorecard with its points and fix, the notebook's verdict and score, and the line that names
what decided the verdict."""

from __future__ import annotations

from collections.abc import Sequence

from grader.evidence import Framework
from grader.score.bars import bar_of
from grader.score.checks import CheckResult
from grader.score.rubric import Criterion
from grader.score.scorecard import CriterionResult, Verdict

__all__ = ["score_criteria", "verdict_reason"]


def _fix(criterion: Criterion, result: CheckResult, framework: Framework | None) -> str:
    if result.status == "pass":
        return ""
    if result.fix is not None:  # a not-measured criterion: the run's fix, not the criterion's
        return result.fix
    return criterion.fix_for(framework)


def score_criteria(
    criteria: Sequence[Criterion], results: Sequence[CheckResult], *,
    framework: Framework | None = None, profile: str | None = None,
) -> tuple[list[CriterionResult], Verdict, float, float]:
    """Combine rubric criteria with their check results.

    Args:
        criteria: the rubric's criteria.
        results: one check result per criterion, in the same order.
        framework: the notebook's framework (:func:`grader.evidence.frameworks.framework_of`): a
            criterion that misses gets its fix for that framework where it has one.
        profile: the profile the checks ran with (their parameters, for each threshold
            criterion's :attr:`CriterionResult.bar`).

    Returns:
        the criterion results, the verdict (pass when every required criterion passes; a
        not-measured one has not passed), the points earned and the points possible.

    Raises:
        ValueError: ``results`` and ``criteria`` differ in length.
    """
    rows = [
        CriterionResult(
            id=c.id, title=c.title, status=r.status, required=c.required,
            points=c.points if r.status == "pass" else 0.0, max_points=c.points,
            message=r.message, fix=_fix(c, r, framework), measured=r.measured, short=r.short,
            decision=c.decision, borderline=r.borderline if r.status != "not_measured" else "",
            bar=bar_of(c, r, profile), of_run=r.of_run,
        )
        for c, r in zip(criteria, results, strict=True)
    ]
    verdict: Verdict = "pass" if all(r.status == "pass" for r in rows if r.required) else "fail"
    return rows, verdict, sum(r.points for r in rows), sum(r.max_points for r in rows)


def verdict_reason(rows: Sequence[CriterionResult]) -> str:
    """One line that names what decided the verdict.

    Returns:
        ``"required criteria not met: accuracy (0.62 < 0.90), runs"`` when required criteria
        failed, with ``"; not measured: loss-plot, saved-model"`` after it for the required
        ones that could not be measured (``"required criteria not measured: ..."`` alone);
        ``"every required criterion met"`` when none is missed; ``""`` for no criteria.
    """
    if not rows:
        return ""
    failed = [f"{r.id} ({r.short})" if r.short else r.id
              for r in rows if r.required and r.status == "fail"]
    unmeasured = [r.id for r in rows if r.required and r.status == "not_measured"]
    if not failed and not unmeasured:
        return "every required criterion met"
    parts = []
    if failed:
        parts.append(f"required criteri{'a' if len(failed) > 1 else 'on'} not met: {', '.join(failed)}")
    if unmeasured:
        head = "not measured" if failed else (
            f"required criteri{'a' if len(unmeasured) > 1 else 'on'} not measured")
        parts.append(f"{head}: {', '.join(unmeasured)}")
    return "; ".join(parts)
