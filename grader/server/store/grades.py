"""The coach's grades of written answers and their release to the teams (revision 0005's
``grades`` and ``grade_releases``).

A grade belongs to one submission and one question (a coach-graded criterion of a challenge): the
coach's points, comment and checked rubric items, and the SHA-256 of the answer text the coach
read (:func:`grader.intake.answer_sha256`), which tells a grade carried to a re-grade whose answer
changed. One row per submission and question (UNIQUE ``submission_id, challenge, criterion``),
written with ``INSERT ... ON CONFLICT DO UPDATE``: a coach saving twice keeps the later grade.

A question is released per event (one row per event and question): from then on each team sees
its own points and comment for it. Releasing again keeps the first release's time; a release
may be withdrawn.

Checking a grade against the answer (the criterion exists, its points and items are in range) is
the pages' job (:func:`grader.score.apply_grades` over the submission's result); the store keeps
what it is given, bounded (:data:`COMMENT_LEN`, :data:`MAX_ITEMS`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from grader.core import UsageError
from grader.server.store import models as m
from grader.server.store.db import Database
from grader.server.store.jobs import rowcount
from grader.server.store.rows import now as utcnow
from grader.server.store.rows import utc
from grader.server.store.teams import event_named

__all__ = ["COMMENT_LEN", "MAX_ITEMS", "GradeRow", "GradingState", "grades_of", "grading_state", "release",
           "released_of", "save_grade"]

COMMENT_LEN = 4000  # characters of a coach's comment: a paragraph or two for one answer
MAX_ITEMS = 50  # rubric items a criterion may have (grader.score.rubric.Criterion.items)


@dataclass(frozen=True)
class GradeRow:
    """A saved grade: the submission, the question (``challenge``, ``criterion``), the coach's
    ``points``, ``comment`` and checked ``items`` (1-based rubric item numbers, ascending), the
    ``answer_sha256`` of the answer the coach read and when it was saved (UTC)."""

    submission_id: int
    challenge: str
    criterion: str
    points: float
    comment: str
    items: tuple[int, ...]
    answer_sha256: str
    graded_at: datetime


@dataclass(frozen=True)
class GradingState:
    """What the pages need of an event's grading, read in one session (:func:`grading_state`):
    every grade, the released questions (``(challenge, criterion) -> released_at``) and the
    re-grades (``submission id -> the submission it re-graded``)."""

    grades: tuple[GradeRow, ...]
    released: dict[tuple[str, str], datetime]
    regrade_of: dict[int, int]


def _items(items: Collection[int]) -> tuple[int, ...]:
    found = tuple(sorted(set(items)))
    if len(found) > MAX_ITEMS or any(not 1 <= i <= MAX_ITEMS for i in found):
        raise UsageError(f"rubric items {list(found)[:10]}: numbers from 1 to {MAX_ITEMS}, at most {MAX_ITEMS} of them")
    return found


def save_grade(db: Database, event: str, submission_id: int, *, challenge: str, criterion: str, points: float,
               comment: str = "", items: Collection[int] = (), answer_sha256: str) -> GradeRow:
    """Save the coach's grade of submission ``submission_id``'s answer to question
    ``challenge:criterion`` (replacing an earlier one); committed when this returns.

    Args:
        db: the server's store.
        event: the event's name.
        submission_id: a submission of ``event``.
        challenge, criterion: the question (a coach-graded criterion's id).
        points: the points given (finite, 0 or more; the pages check the criterion's maximum).
        comment: the coach's comment for the team (its ends stripped; "" for none).
        items: the checked rubric items, 1-based.
        answer_sha256: the SHA-256 (64 hex digits) of the answer text the coach read.

    Raises:
        UsageError: no such event, or no such submission of it; ``points`` not a finite number of
            0 or more; ``comment`` over :data:`COMMENT_LEN` characters; ``items`` out of range;
            ``answer_sha256`` not 64 hex digits.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    if not math.isfinite(points) or points < 0:
        raise UsageError(f"points {points!r}: give a number of 0 or more")
    comment = comment.replace("\r\n", "\n").strip()
    if len(comment) > COMMENT_LEN:
        raise UsageError(f"the comment is {len(comment)} characters long, over the limit of {COMMENT_LEN}",
                         fix="say it shorter")
    checked = _items(items)
    if len(answer_sha256) != 64 or any(c not in "0123456789abcdef" for c in answer_sha256):
        raise UsageError("the answer's SHA-256 is not 64 lower-case hex digits")
    now = utcnow()
    with db._write() as s:
        ev = event_named(s, event)
        sub = s.get(m.Submission, submission_id)
        if sub is None or sub.event_id != ev.id:
            raise UsageError(f"no submission {submission_id} in event {event!r}")
        values = {"points": float(points), "comment": comment, "items": json.dumps(list(checked)),
                  "answer_sha256": answer_sha256, "graded_at": now}
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(insert(m.WrittenGrade).values(event_id=ev.id, submission_id=submission_id, challenge=challenge,
                                                criterion=criterion, **values)
                  .on_conflict_do_update(index_elements=[m.WrittenGrade.submission_id, m.WrittenGrade.challenge,
                                                         m.WrittenGrade.criterion], set_=values))
    return GradeRow(submission_id=submission_id, challenge=challenge, criterion=criterion, points=float(points),
                    comment=comment, items=checked, answer_sha256=answer_sha256, graded_at=now)


def _row(g: m.WrittenGrade) -> GradeRow:
    try:
        items = tuple(int(i) for i in json.loads(g.items or "[]"))
    except (ValueError, TypeError):
        items = ()
    return GradeRow(submission_id=g.submission_id, challenge=g.challenge, criterion=g.criterion, points=g.points,
                    comment=g.comment, items=items, answer_sha256=g.answer_sha256,
                    graded_at=utc(g.graded_at) or utcnow())


def _grades(s: Session, event_id: int, submissions: Sequence[int] | None) -> list[GradeRow]:
    query = select(m.WrittenGrade).where(m.WrittenGrade.event_id == event_id)
    if submissions is not None:
        query = query.where(m.WrittenGrade.submission_id.in_(list(submissions)))
    return [_row(g) for g in s.scalars(query.order_by(m.WrittenGrade.id))]


def grades_of(db: Database, event: str, *, submissions: Collection[int] | None = None) -> list[GradeRow]:
    """The grades of ``event`` (of the submissions in ``submissions`` only, if given), in the order
    they were first saved.

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    if submissions is not None and not submissions:
        return []
    with db._read() as s:
        return _grades(s, event_named(s, event).id, None if submissions is None else sorted(submissions))


def _released(s: Session, event_id: int) -> dict[tuple[str, str], datetime]:
    rows = s.execute(select(m.GradeRelease.challenge, m.GradeRelease.criterion, m.GradeRelease.released_at)
                     .where(m.GradeRelease.event_id == event_id))
    return {(challenge, criterion): utc(at) or utcnow() for challenge, criterion, at in rows}


def released_of(db: Database, event: str) -> dict[tuple[str, str], datetime]:
    """The released questions of ``event``: ``(challenge, criterion) -> released_at`` (UTC).

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    with db._read() as s:
        return _released(s, event_named(s, event).id)


def release(db: Database, event: str, challenge: str, criterion: str, *, released: bool = True) -> bool:
    """Release question ``challenge:criterion`` of ``event`` to the teams (or, with ``released``
    False, withdraw its release); False where nothing changed (released already: its first time
    kept; or not released).

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    with db._write() as s:
        ev = event_named(s, event)
        if not released:
            return rowcount(s, delete(m.GradeRelease).where(
                m.GradeRelease.event_id == ev.id, m.GradeRelease.challenge == challenge,
                m.GradeRelease.criterion == criterion)) > 0
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        added = s.scalar(insert(m.GradeRelease).values(event_id=ev.id, challenge=challenge, criterion=criterion,
                                                       released_at=utcnow())
                         .on_conflict_do_nothing(index_elements=[m.GradeRelease.event_id, m.GradeRelease.challenge,
                                                                 m.GradeRelease.criterion])
                         .returning(m.GradeRelease.id))  # a row only where it was added (rowcount: -1 on psycopg)
        return added is not None


def grading_state(db: Database, event: str) -> GradingState:
    """Every grade of ``event``, its released questions and its re-grades, in one read session
    (three queries, whatever the number of teams).

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    with db._read() as s:
        ev = event_named(s, event)
        regrades = s.execute(select(m.Submission.id, m.Submission.regrade_of)
                             .where(m.Submission.event_id == ev.id, m.Submission.regrade_of.is_not(None)))
        return GradingState(grades=tuple(_grades(s, ev.id, None)), released=_released(s, ev.id),
                            regrade_of={int(i): int(of) for i, of in regrades if of is not None})
