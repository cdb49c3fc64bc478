"""A notebook's rubric criteria combined with their check results: each criterion's row of the
scorecard with its points and fix, the notebook's verdict and score, and the line that names
what decided the verdict.

Verdicts (:func:`notebook_verdict`, :func:`submission_verdict`): ``fail`` when a required criterion
is not met (failed, not measured, or graded by the coach below half its points); else
``awaiting`` when a required coach-graded criterion awaits the coach's grade (never ``pass``: a
pass never hides an ungraded required criterion); else ``pass``. Optional criteria never change
the verdict; a graded one's points count in the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.evidence import Framework
from grader.score.bars import bar_of
from grader.score.checks import CheckResult
from grader.score.rubric import Criterion
from grader.score.scorecard import CriterionResult, NotebookResult, Verdict

__all__ = ["notebook_verdict", "score_criteria", "submission_reason", "submission_verdict", "verdict_reason"]


def _fix(criterion: Criterion, result: CheckResult, framework: Framework | None) -> str:
    if result.status in ("pass", "awaiting"):
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
        the criterion results, the verdict (:func:`notebook_verdict`: pass when every required
        criterion passes; a not-measured one has not passed; awaiting when one awaits the coach),
        the points earned and the points possible (an awaiting criterion's counted).

    Raises:
        ValueError: ``results`` and ``criteria`` differ in length.
    """
    rows = [
        CriterionResult(
            id=c.id, title=c.title, status=r.status, required=c.required,
            points=c.points if r.status == "pass" else 0.0, max_points=c.points,
            message=r.message, fix=_fix(c, r, framework), measured=r.measured, short=r.short,
            decision=c.decision, borderline=r.borderline if r.status != "not_measured" else "",
            bar=bar_of(c, r, profile), of_run=r.of_run, **_written(c, r),
        )
        for c, r in zip(criteria, results, strict=True)
    ]
    return rows, notebook_verdict(rows), sum(r.points for r in rows), sum(r.max_points for r in rows)


def _written(criterion: Criterion, result: CheckResult) -> dict[str, Any]:
    """The fields of a coach-graded criterion's row: its question, rubric items and the answer found."""
    if not criterion.coach_graded:
        return {}
    answer = result.answer
    return {"coach_graded": True, "question": criterion.question or "", "rubric_items": list(criterion.items),
            "answer": answer.text if answer else None, "answer_cut": answer.cut if answer else False,
            "answer_cell": answer.cell if answer else None, "answer_sha256": answer.sha256 if answer else ""}


def notebook_verdict(rows: Sequence[CriterionResult]) -> Verdict:
    """The verdict of a notebook's criteria (module docstring): ``fail`` when a required one is
    neither met (:attr:`~grader.score.scorecard.CriterionResult.met`) nor awaiting the coach, else
    ``awaiting`` when a required one awaits the coach, else ``pass``."""
    required = [r for r in rows if r.required]
    if any(not r.met and r.status != "awaiting" for r in required):
        return "fail"
    return "awaiting" if any(r.status == "awaiting" for r in required) else "pass"


def submission_verdict(notebooks: Sequence[NotebookResult], problems: Sequence[str]) -> Verdict:
    """A submission's verdict: ``fail`` with a problem, without notebooks or with a failing one;
    else ``awaiting`` when a notebook awaits the coach; else ``pass``."""
    if problems or not notebooks or any(nb.verdict == "fail" for nb in notebooks):
        return "fail"
    return "awaiting" if any(nb.verdict == "awaiting" for nb in notebooks) else "pass"


def submission_reason(notebooks: Sequence[NotebookResult], problems: Sequence[str]) -> str:
    """What decided a submission's verdict: its problems, else the reason of each notebook that did
    not pass (``gear-cnn.ipynb: required criteria not met: accuracy (0.62 < 0.90)``)."""
    if problems:
        return "; ".join(problems)
    failing = [f"{r.notebook}: {r.verdict_reason}" for r in notebooks if r.verdict != "pass"]
    if failing:
        return "; ".join(failing)
    return "every required criterion of every notebook met" if notebooks else ""


def verdict_reason(rows: Sequence[CriterionResult]) -> str:
    """One line that names what decided the verdict.

    Returns:
        ``"required criteria not met: accuracy (0.62 < 0.90), runs"`` when required criteria
        failed (a coach-graded one below half its points as ``mnist-gap (graded 0.5 of 2)``), with
        ``"; not measured: loss-plot, saved-model"`` after it for the required ones that could not
        be measured (``"required criteria not measured: ..."`` alone) and ``"; awaiting the coach:
        mnist-gap"`` for the required ones that await the coach's grade; ``"every required
        criterion met"`` when none is missed; ``""`` for no criteria.
    """
    if not rows:
        return ""
    failed = [f"{r.id} ({r.short})" if r.short else r.id
              for r in rows if r.required and r.status == "fail"]
    failed += [f"{r.id} (graded {r.points:g} of {r.max_points:g})"
               for r in rows if r.required and r.status == "graded" and not r.met]
    unmeasured = [r.id for r in rows if r.required and r.status == "not_measured"]
    awaiting = [r.id for r in rows if r.required and r.status == "awaiting"]
    if not failed and not unmeasured and not awaiting:
        return "every required criterion met"
    parts = []
    if failed:
        parts.append(f"required criteri{'a' if len(failed) > 1 else 'on'} not met: {', '.join(failed)}")
    if unmeasured:
        head = "not measured" if failed else (
            f"required criteri{'a' if len(unmeasured) > 1 else 'on'} not measured")
        parts.append(f"{head}: {', '.join(unmeasured)}")
    if awaiting:
        parts.append(f"awaiting the coach: {', '.join(awaiting)}")
    return "; ".join(parts)
