"""The rows the event server's store hands out: frozen dataclasses, never live ORM objects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from grader.server.store import models as m

__all__ = ["CreatedEvent", "EventRow", "ResultRow", "SubmissionRow", "TeamRow", "UploadRow", "now", "result_row",
           "submission_row", "utc"]


@dataclass(frozen=True)
class EventRow:
    """An event; ``ends_at`` and ``created`` are UTC."""

    id: int
    name: str
    title: str
    challenges: tuple[str, ...]
    cap_per_day: int | None
    ends_at: datetime | None
    revealed: bool
    created: datetime
    practice_per_day: int | None = 3


@dataclass(frozen=True)
class TeamRow:
    id: int
    event: str
    name: str


@dataclass(frozen=True)
class CreatedEvent:
    """A new event and its secrets, which exist in clear only here: the store keeps hashes."""

    event: EventRow
    team_tokens: dict[str, str]
    coach_token: str


@dataclass(frozen=True)
class UploadRow:
    """A stored upload: its SHA-256 (hex), its size in bytes and the name it was sent under."""

    sha256: str
    size: int
    filename: str


@dataclass(frozen=True)
class SubmissionRow:
    """A submission and the state of its grading job (times UTC; ``score`` None until done).
    ``number``: the team's own number of a submission :meth:`Store.submit` has just queued (1, 2, 3
    ... in the order of arrival, as :func:`grader.server.web.routes.history.team_numbers` numbers a
    team's history); None for a practice check and on rows read back."""

    id: int
    event: str
    team_id: int
    team_name: str
    challenge: str
    filename: str
    upload_sha256: str
    created: datetime
    state: str
    attempts: int
    progress: str
    progress_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    cancel_requested: bool
    verdict: str | None
    score: float | None
    max_score: float | None
    regrade_of: int | None = None
    practice: bool = False
    number: int | None = None


@dataclass(frozen=True)
class ResultRow:
    """A submission's result: ``result_json`` is :class:`grader.score.scorecard.SubmissionResult` as JSON."""

    submission_id: int
    result_json: str
    scorecard_html: str
    verdict: str
    score: float
    max_score: float
    created: datetime
    team_scorecard_html: str = ""


def arrival_numbers(arrivals: Iterable[tuple[datetime, int]]) -> dict[int, int]:
    """A team's own submissions ``(created, id)`` numbered 1, 2, 3 ... in the order they arrived
    (time, then id): the one rule of its history (:func:`grader.server.web.routes.history.team_numbers`)
    and of the number :meth:`Store.submit` returns. Returns ``submission id -> number``."""
    return {sub_id: number for number, (_, sub_id) in enumerate(sorted(arrivals), start=1)}


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC time (SQLite gives times back without their offset)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def submission_row(sub: m.Submission, team: str, event: str) -> SubmissionRow:
    return SubmissionRow(
        id=sub.id, event=event, team_id=sub.team_id, team_name=team, challenge=sub.challenge, filename=sub.filename,
        upload_sha256=sub.upload_sha256, created=utc(sub.created) or now(), state=sub.state,
        attempts=sub.attempts, progress=sub.progress, progress_at=utc(sub.progress_at),
        started_at=utc(sub.started_at), finished_at=utc(sub.finished_at), error=sub.error,
        cancel_requested=sub.cancel_requested, verdict=sub.verdict, score=sub.score, max_score=sub.max_score,
        regrade_of=sub.regrade_of, practice=sub.practice)


def result_row(row: m.Result) -> ResultRow:
    return ResultRow(submission_id=row.submission_id, result_json=row.result_json, scorecard_html=row.scorecard_html,
                     verdict=row.verdict, score=row.score, max_score=row.max_score,
                     created=utc(row.created) or now(), team_scorecard_html=row.team_scorecard_html or "")
