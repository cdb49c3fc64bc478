"""Written questions and the teams' answers as the event server lists them (issue 29): the
coach-graded criteria of a challenge's rubric (:class:`WrittenQuestion`), one team's answer on
the coach's page (:class:`AnswerRow`), and the grades a team's history shows (pure; the grades
themselves: :mod:`grader.server.web.marks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.core import GraderError, load_challenge
from grader.score import CriterionResult, SubmissionResult, grade_key, load_rubric
from grader.server.store import GradeRow

__all__ = ["COACH_GRADED", "AnswerRow", "WrittenQuestion", "criterion_of", "released_grades", "result_questions",
           "rubric_questions"]

COACH_GRADED = "coach_graded"  # the check of a coach-graded criterion (grader.score.checks.answers)


@dataclass(frozen=True)
class WrittenQuestion:
    """A coach-graded criterion of one of the event's challenges, as its rubric states it.

    Attributes:
        challenge, criterion: the question (:attr:`key` names it: ``<challenge>:<criterion>``).
        title, question: what it is called and what the team is asked.
        points: its maximum.
        required: whether it takes part in the verdict.
        items: its rubric items, ``(points, text)``, numbered from 1.
        comments: the coach's reusable comments.
    """

    challenge: str
    criterion: str
    title: str
    question: str
    points: float
    required: bool
    items: tuple[tuple[float, str], ...] = ()
    comments: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return grade_key(self.challenge, self.criterion)


@dataclass(frozen=True)
class AnswerRow:
    """One team's answer to a question on the coach's page.

    Attributes:
        team: the team's name.
        submission_id: its final submission for the question's challenge.
        chosen: the team chose it as final (else it is final by default).
        criterion: the question's row in that submission's result, every saved grade applied;
            None where the result has no such criterion (graded before the rubric asked it).
        previous: for an answer changed since the coach graded it, the grade of the earlier answer.
    """

    team: str
    submission_id: int
    chosen: bool
    criterion: CriterionResult | None
    previous: GradeRow | None = None

    @property
    def state(self) -> Literal["graded", "awaiting", "missing"]:
        c = self.criterion
        if c is None or c.status not in ("graded", "awaiting"):
            return "missing"
        return "graded" if c.status == "graded" else "awaiting"


def criterion_of(result: SubmissionResult, challenge: str, criterion: str) -> CriterionResult | None:
    """The coach-graded criterion ``criterion`` of ``result``'s notebooks of ``challenge``, or None."""
    return next((c for nb in result.notebooks if nb.challenge == challenge for c in nb.criteria
                 if c.id == criterion and c.coach_graded), None)


def rubric_questions(project_dir: Path, challenge: str) -> tuple[WrittenQuestion, ...]:
    """The coach-graded criteria of ``challenge``'s rubric, in its order; none where the challenge
    or its rubric does not load."""
    try:
        rubric = load_rubric(project_dir, load_challenge(project_dir, challenge).rubric)
    except GraderError:
        return ()
    return tuple(WrittenQuestion(challenge, c.id, c.title, c.question or "", c.points, c.required,
                                 tuple((i.points, i.text) for i in c.items), tuple(c.comments))
                 for c in rubric.criteria if c.check == COACH_GRADED)


def result_questions(results: Sequence[SubmissionResult], challenge: str) -> tuple[WrittenQuestion, ...]:
    """The coach-graded criteria of ``challenge`` that ``results`` hold, in the order first seen
    (where the rubric does not load: no reusable comments)."""
    found: dict[str, WrittenQuestion] = {}
    for result in results:
        for nb in result.notebooks:
            for c in nb.criteria:
                if nb.challenge == challenge and c.coach_graded and c.id not in found:
                    found[c.id] = WrittenQuestion(challenge, c.id, c.title, c.question, c.max_points, c.required,
                                                  tuple((i.points, i.text) for i in c.rubric_items))
    return tuple(found.values())


def released_grades(seen: SubmissionResult) -> list[dict[str, object]]:
    """The coach's grades a team sees in ``seen`` (:meth:`grader.server.web.marks.Marks.team_seen`:
    those of released questions), for its history's rows: per question its ``title``, ``points``,
    ``max_points`` and ``comment`` (JSON: the status of a submission carries them)."""
    return [{"title": c.title, "points": c.points, "max_points": c.max_points, "comment": c.comment}
            for nb in seen.notebooks for c in nb.criteria if c.coach_graded and c.status == "graded"]
