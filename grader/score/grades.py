"""The coach's grades of written answers, applied to a graded submission.

A coach-graded criterion (:mod:`grader.score.checks.answers`) is ``awaiting`` once its answer is
present; :func:`apply_grades` turns it into ``graded`` with the coach's points, comment and checked
rubric items, and computes the notebook's and the submission's verdict and score again
(:mod:`grader.score.verdict`). No notebook runs for it: grades apply to a stored result.

A grade is the coach's reading of one answer text: it carries the SHA-256 of the answer it was
given to (:attr:`CriterionResult.graded_sha256`). :func:`carry_grades` keeps the grades of an
earlier result of the same submission where the answer is unchanged, and marks the criterion
``answer_changed`` (awaiting again) where it changed. :func:`hide_unreleased` shows a team only
the grades the coach has released.

Pure: results in, results out (frozen: copies are returned).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from grader.intake import is_placeholder
from grader.score.checks.answers import AWAITING
from grader.score.scorecard import CriterionResult, NotebookResult, SubmissionResult
from grader.score.verdict import notebook_verdict, submission_reason, submission_verdict, verdict_reason

__all__ = ["Grade", "apply_grades", "carry_grades", "grade_key", "hide_unreleased", "rescored"]


@dataclass(frozen=True)
class Grade:
    """The coach's grade of one written answer.

    Attributes:
        points: the points given (0 to the criterion's points); None: the sum of the checked
            ``items``' points.
        comment: the coach's comment for the team ("" for none).
        items: the checked rubric items, 1-based numbers of the criterion's items.
        answer_sha256: the hash of the answer text the coach read (:func:`grader.intake.answer_sha256`);
            where it differs from the answer's now, the grade is not applied ("answer changed").
            None: not checked.
    """

    points: float | None
    comment: str = ""
    items: tuple[int, ...] = ()
    answer_sha256: str | None = None


def grade_key(challenge: str | None, criterion: str) -> str:
    """The key that names a question across a cohort: ``<challenge>:<criterion id>`` (the
    gradebook's column)."""
    return f"{challenge}:{criterion}"


def _graded_row(c: CriterionResult, grade: Grade) -> CriterionResult | str:
    """``c`` graded with ``grade``, or why it cannot be."""
    if not c.coach_graded:
        return "not a coach-graded criterion"
    if c.answer is None or not c.answer or is_placeholder(c.answer):
        return "no answer to grade (the cell is missing or still the placeholder)"
    if grade.answer_sha256 is not None and grade.answer_sha256 != c.answer_sha256:
        return "answer changed"
    bad = [i for i in grade.items if not 1 <= i <= len(c.rubric_items)]
    if bad:
        return (f"rubric item {bad[0]} does not exist (the criterion has {len(c.rubric_items)} "
                f"item{'' if len(c.rubric_items) == 1 else 's'})")
    points = grade.points if grade.points is not None else sum(c.rubric_items[i - 1].points for i in set(grade.items))
    if not 0 <= points <= c.max_points:
        return f"points {points:g} out of range (0 to {c.max_points:g})"
    return c.model_copy(update={
        "status": "graded", "points": float(points), "comment": grade.comment.strip(),
        "items": sorted(set(grade.items)), "graded_sha256": c.answer_sha256, "answer_changed": False, "fix": "",
        "message": f"graded by the coach: {points:g} of {c.max_points:g} points", "short": ""})


def rescored(nb: NotebookResult) -> NotebookResult:
    """``nb`` with its verdict, reason and score computed again from its criteria (a notebook
    without criteria, which never ran against a rubric, as it is)."""
    if not nb.criteria:
        return nb
    rows = nb.criteria
    return nb.model_copy(update={"verdict": notebook_verdict(rows), "verdict_reason": verdict_reason(rows),
                                 "score": sum(c.points for c in rows)})


def _with_notebooks(result: SubmissionResult, notebooks: list[NotebookResult]) -> SubmissionResult:
    return result.model_copy(update={
        "notebooks": notebooks, "verdict": submission_verdict(notebooks, result.problems),
        "verdict_reason": submission_reason(notebooks, result.problems),
        "score": sum(nb.score for nb in notebooks)})


def apply_grades(result: SubmissionResult, grades: Mapping[str, Grade], *,
                 challenge: str | None = None) -> tuple[SubmissionResult, dict[str, str]]:
    """``result`` with the coach's ``grades`` (criterion id -> grade) on its coach-graded criteria
    (of the notebooks of ``challenge``; None: of every notebook), verdicts and scores computed again.

    A grade is refused, with the reason, where: no notebook has the criterion (``unknown
    criterion``), it is not coach-graded, it has no answer (missing, or the placeholder), its
    ``answer_sha256`` is not the answer's (``answer changed``), a rubric item it checks does not
    exist, or its points are outside 0 to the criterion's points. A refused grade changes nothing.

    Returns:
        the graded result, and per refused criterion id why it was refused.
    """
    refused: dict[str, str] = {}
    applied: set[str] = set()
    notebooks = []
    for nb in result.notebooks:
        if challenge is not None and nb.challenge != challenge:
            notebooks.append(nb)
            continue
        rows = []
        for c in nb.criteria:
            grade = grades.get(c.id)
            if grade is None:
                rows.append(c)
                continue
            graded = _graded_row(c, grade)
            if isinstance(graded, str):
                refused[c.id] = graded
                rows.append(c)
            else:
                applied.add(c.id)
                rows.append(graded)
        notebooks.append(rescored(nb.model_copy(update={"criteria": rows})) if rows != nb.criteria else nb)
    for cid in grades:
        if cid not in applied and cid not in refused:
            refused[cid] = "unknown criterion" + (f" of challenge {challenge}" if challenge else "")
    return _with_notebooks(result, notebooks), refused


def carry_grades(earlier: SubmissionResult | None, result: SubmissionResult) -> SubmissionResult:
    """``result`` (the same submission graded again, or read from the cache) with the coach's
    grades of ``earlier`` where the answer's text is unchanged; where it changed, the criterion
    awaits the coach again, marked ``answer_changed``. Notebooks are matched by file name and
    challenge, criteria by id."""
    if earlier is None:
        return result
    before = {(nb.notebook, nb.challenge, c.id): c for nb in earlier.notebooks for c in nb.criteria if c.coach_graded}
    if not before:
        return result
    notebooks = []
    for nb in result.notebooks:
        rows = [_carried(before.get((nb.notebook, nb.challenge, c.id)), c) if c.coach_graded else c
                for c in nb.criteria]
        notebooks.append(rescored(nb.model_copy(update={"criteria": rows})) if rows != nb.criteria else nb)
    return _with_notebooks(result, notebooks)


def _carried(old: CriterionResult | None, new: CriterionResult) -> CriterionResult:
    if old is None or new.status != "awaiting":
        return new
    if old.status == "graded" and old.graded_sha256 == new.answer_sha256:
        graded = _graded_row(new, Grade(points=old.points, comment=old.comment, items=tuple(old.items)))
        return graded if not isinstance(graded, str) else new
    if (old.status == "graded") or (old.answer_changed and old.answer_sha256 == new.answer_sha256):
        return new.model_copy(update={"answer_changed": True, "message": f"{AWAITING}: the answer changed since "
                                      f"the coach graded it; {new.message.removeprefix(AWAITING + ': ')}"})
    return new


def hide_unreleased(result: SubmissionResult, released: Collection[str] | None) -> SubmissionResult:
    """``result`` as a team may see it before the coach releases a question's grades: each graded
    criterion whose :func:`grade_key` is not in ``released`` shown as awaiting the coach (no points,
    comment or items), verdicts and scores computed again. ``released`` None: every grade is shown
    (``grader check``'s scorecards)."""
    if released is None:
        return result
    notebooks = []
    for nb in result.notebooks:
        rows = [c.model_copy(update={"status": "awaiting", "points": 0.0, "comment": "", "items": [],
                                     "graded_sha256": "", "message": AWAITING})
                if c.status == "graded" and grade_key(nb.challenge, c.id) not in released else c
                for c in nb.criteria]
        notebooks.append(rescored(nb.model_copy(update={"criteria": rows})) if rows != nb.criteria else nb)
    return _with_notebooks(result, notebooks)
