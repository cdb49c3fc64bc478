"""Uploads and submissions: :class:`Submissions`, the part of :class:`grader.server.store.store.Store`
that stores an upload, queues it as a team's submission within the daily cap (:class:`CapReached`
beyond it), or as a practice check within the practice allowance (:class:`PracticeUsed` beyond
it), and cancels or re-grades a submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from grader.core import GraderError, UsageError
from grader.server.store import models as m
from grader.server.store.cap import DailyCounts, day_start, next_day, used_per_day
from grader.server.store.events import Events
from grader.server.store.group import GroupCommit
from grader.server.store.jobs import rowcount
from grader.server.store.rows import EventRow, SubmissionRow, UploadRow, arrival_numbers, utc
from grader.server.store.rows import now as utcnow
from grader.server.store.uploads import store_file, sync_folder, upload_path

__all__ = ["CapReached", "PracticeUsed", "Submissions"]


class CapReached(UsageError):
    """A team has used up its submissions for today (UTC)."""


class PracticeUsed(CapReached):
    """A team has used up its practice checks for today (UTC)."""


@dataclass(frozen=True)
class _Submit:
    """One submission to write (:meth:`Store.submit`), its event's facts already checked."""

    event: EventRow
    team_id: int
    challenge: str
    upload: UploadRow
    now: datetime
    practice: bool = False


class Submissions(Events):
    """The uploads and submissions (a base of :class:`grader.server.store.store.Store`).

    Args:
        state_dir, database_url, workers: as :class:`grader.server.store.db.Database`.
    """

    def __init__(self, state_dir: Path, database_url: str | None = None, *, workers: int = 1) -> None:
        super().__init__(state_dir, database_url, workers=workers)
        self._submits: GroupCommit[_Submit, SubmissionRow] = GroupCommit(self._write, self._submit_batch)

    def store_upload(self, data: BinaryIO, *, filename: str, max_bytes: int, record: bool = True) -> UploadRow:
        """Store the bytes read from ``data`` (streamed, never held whole) under
        ``uploads/<sha>``; an upload already stored is kept once.

        Args:
            data: a binary stream, read to its end.
            filename: the name the team sent it under (kept on the submission, not on disk; a
                name over 255 characters is shortened, its suffix kept).
            max_bytes: the largest upload accepted, in bytes.
            record: also commit its database row now; False leaves that to :meth:`submit`,
                in the submission's own transaction (one durable commit per upload, not two),
                and the ``fsync`` of the uploads folder too: the batch of uploads submitted
                together shares one (:func:`grader.server.store.uploads.store_file`).

        Raises:
            UploadRefused: it is empty or over ``max_bytes``, or the disk is full or failing;
                nothing is left half-written.
        """
        sha, size = store_file(data, self.state_dir / "uploads", max_bytes=max_bytes, sync=record)
        if record:
            with self._write() as s:
                self._record_upload(s, sha, size)
        return UploadRow(sha256=sha, size=size, filename=_fit_name(filename))

    @staticmethod
    def _record_upload(s: Session, sha: str, size: int) -> None:
        # INSERT ... ON CONFLICT DO NOTHING: teams sending the same file at once (the starter
        # notebook) store one row, not a unique-key error, on PostgreSQL as on SQLite
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(insert(m.Upload).values(sha256=sha, size=size, created=utcnow())
                  .on_conflict_do_nothing(index_elements=[m.Upload.sha256]))

    def upload_path(self, sha256: str) -> Path:
        """Where upload ``sha256`` is stored.

        Raises:
            ValueError: ``sha256`` is not 64 lower-case hex digits.
        """
        return upload_path(self.state_dir / "uploads", sha256)

    def submit(self, event: str, team_id: int, *, challenge: str, upload: UploadRow,
               practice: bool = False) -> SubmissionRow:
        """Queue ``upload`` as team ``team_id``'s submission to ``challenge`` (with ``practice``: a
        practice check, graded on the public practice split); committed (durable) when this
        returns, in one transaction with the submissions arriving at the same moment
        (:class:`grader.server.store.group.GroupCommit`; a refused one leaves the others standing).

        The cap counts the team's submissions of the UTC day of this one's arrival (the time of
        this call), whatever their verdict (a failing scorecard counts), except cancelled ones,
        the coach's re-grades and practice checks; uploads arriving together across midnight are
        each counted on their own day (:mod:`grader.server.store.cap`). Practice checks are counted
        so too, apart, against the event's ``practice_per_day`` (None: no limit).

        Raises:
            UsageError: no such event, team or upload, ``challenge`` is not one of the event's,
                or the event has ended.
            CapReached: the team has used its ``cap_per_day`` submissions today.
            PracticeUsed: a practice check, and the team has used its ``practice_per_day`` today.
        """
        now = utcnow()
        ev = self._event_facts(event)  # read at most FACTS_TTL_S ago (events.py): checked before the transaction
        if challenge not in ev.challenges:
            raise UsageError(f"{challenge!r} is not a challenge of {event}; its challenges: {', '.join(ev.challenges)}")
        if ev.ends_at is not None and now >= ev.ends_at:
            raise UsageError(f"the event ended at {ev.ends_at:%Y-%m-%d %H:%M} UTC: submissions are closed")
        try:
            stored = self.upload_path(upload.sha256).is_file()
        except ValueError:
            stored = False
        if not stored:
            raise UsageError(f"upload {upload.sha256} is not stored")

        # one durable commit for the uploads arriving together (grader.server.store.group)
        return self._submits.write(_Submit(ev, team_id, challenge, upload, now, practice))

    def _submit_batch(self, s: Session, batch: Sequence[_Submit]) -> list[SubmissionRow | GraderError]:
        """Write the submissions of ``batch`` (in the order they arrived) with one statement per
        table; each one's new row (queued), or its refusal (no such team, the cap reached: decided before
        anything is written). The teams' rows are locked (``FOR UPDATE``, in the order of their
        ids: batches of two servers cannot deadlock) so that no other server counts their
        submissions meanwhile; each submission is counted against the cap of the UTC day of its
        own arrival (:class:`grader.server.store.cap.DailyCounts`), also in a batch across midnight.
        First the uploads folder is synced: the files of the batch's uploads (stored with
        ``record=False``) survive a crash before their rows are committed, one ``fsync`` for the
        batch."""
        sync_folder(self.state_dir / "uploads")
        ids = sorted({w.team_id for w in batch})
        teams = {t.id: t for t in s.scalars(select(m.Team).where(m.Team.id.in_(ids)).order_by(m.Team.id)
                                             .with_for_update())}
        # each submission counted on the UTC day of its own arrival (grader.server.store.cap)
        counts = DailyCounts(s, [(w.team_id, w.now) for w in batch
                                 if w.event.cap_per_day is not None and not w.practice])
        practices = DailyCounts(s, [(w.team_id, w.now) for w in batch
                                    if w.event.practice_per_day is not None and w.practice], practice=True)
        outcomes: list[str | GraderError] = []  # the team's name, or the refusal
        accepted: list[_Submit] = []
        for w in batch:
            team = teams.get(w.team_id)
            cap = w.event.practice_per_day if w.practice else w.event.cap_per_day
            if team is None or team.event_id != w.event.id:
                outcomes.append(UsageError(f"no team {w.team_id} in event {w.event.name}"))
            elif cap is not None and w.practice and not practices.take(w.team_id, w.now, cap):
                outcomes.append(PracticeUsed(
                    f"{team.name} has used its {cap} practice checks for today (UTC); the next one can be run from "
                    f"{next_day(w.now):%Y-%m-%d %H:%M} UTC. No submission was used.",
                    fix="submit for grading, or try your notebook on the public data (the challenge's download)"))
            elif cap is not None and not w.practice and not counts.take(w.team_id, w.now, cap):
                outcomes.append(CapReached(f"{team.name} has used its {cap} submissions for today (UTC); the next "
                                           f"one can be sent from {next_day(w.now):%Y-%m-%d %H:%M} UTC",
                                           fix=_cap_fix(w.event)))
            else:
                accepted.append(w)
                outcomes.append(team.name)
        if not accepted:
            return [o for o in outcomes if isinstance(o, GraderError)]
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        uploads = {w.upload.sha256: w.upload.size for w in accepted}  # stored with record=False, or kept once
        s.execute(insert(m.Upload).values([{"sha256": sha, "size": size, "created": utcnow()}
                                           for sha, size in sorted(uploads.items())])
                  .on_conflict_do_nothing(index_elements=[m.Upload.sha256]))
        values = [{"event_id": w.event.id, "team_id": w.team_id, "challenge": w.challenge,
                   "filename": _fit_name(w.upload.filename), "upload_sha256": w.upload.sha256, "created": w.now,
                   "state": "queued", "attempts": 0, "progress": "", "cancel_requested": False,
                   "practice": w.practice} for w in accepted]
        new_ids = list(s.scalars(insert(m.Submission).returning(m.Submission.id, sort_by_parameter_order=True),
                                 values))
        numbers = _team_numbers(s, {w.team_id for w in accepted if not w.practice})
        rows = iter([SubmissionRow(id=new_id, event=w.event.name, team_id=w.team_id, team_name=str(name),
                                   challenge=w.challenge, filename=str(v["filename"]), upload_sha256=w.upload.sha256,
                                   created=w.now, state="queued", attempts=0, progress="", progress_at=None,
                                   started_at=None, finished_at=None, error=None, cancel_requested=False,
                                   verdict=None, score=None, max_score=None, practice=w.practice,
                                   number=numbers.get(new_id))
                     for new_id, w, v, name in zip(new_ids, accepted, values,
                                                   [o for o in outcomes if not isinstance(o, GraderError)],
                                                   strict=True)])
        return [o if isinstance(o, GraderError) else next(rows) for o in outcomes]

    def submissions_left_today(self, event: str, team_id: int) -> int | None:
        """How many more submissions team ``team_id`` may send today (UTC); None: no cap.

        Raises:
            UsageError: no such event.
        """
        return self._left_today(event, team_id, practice=False)

    def practice_left_today(self, event: str, team_id: int) -> int | None:
        """How many more practice checks team ``team_id`` may run today (UTC); None: no limit.

        Raises:
            UsageError: no such event.
        """
        return self._left_today(event, team_id, practice=True)

    def _left_today(self, event: str, team_id: int, *, practice: bool) -> int | None:
        with self._read() as s:
            ev = self._get_event(s, event)
            allowed = ev.practice_per_day if practice else ev.cap_per_day
            if allowed is None:
                return None
            today = day_start(utcnow())
            return max(0, allowed - used_per_day(s, [(team_id, today)], practice=practice)[(team_id, today)])

    def cancel(self, submission_id: int) -> bool:
        """Cancel a submission: a queued one is cancelled at once, a running one is asked to stop
        (its worker sees it at its next :meth:`progress`); False when it is neither."""
        now = utcnow()
        with self._write() as s:
            done = rowcount(s, update(m.Submission).where(m.Submission.id == submission_id,
                                                        m.Submission.state == "queued")
                             .values(state="cancelled", finished_at=now, error="cancelled before it ran"))
            if not done:
                done = rowcount(s, update(m.Submission).where(m.Submission.id == submission_id,
                                                            m.Submission.state == "running")
                                 .values(cancel_requested=True))
        return bool(done)

    def regrade(self, submission_id: int) -> SubmissionRow:
        """Queue a new submission of the same upload, team and challenge (a coach's re-grade: it
        does not count against the team's cap).

        Raises:
            UsageError: no such submission.
        """
        with self._write() as s:
            old = s.get(m.Submission, submission_id)
            if old is None:
                raise UsageError(f"no submission {submission_id}")
            row = m.Submission(event_id=old.event_id, team_id=old.team_id, challenge=old.challenge,
                               filename=old.filename, upload_sha256=old.upload_sha256, regrade_of=old.id,
                               created=utcnow(), state="queued", attempts=0, progress="", cancel_requested=False,
                               practice=old.practice)
            s.add(row)
            s.flush()
            new_id = row.id
        found = self.submission(new_id)
        assert found is not None
        return found


def _cap_fix(event: EventRow) -> str:
    """What a team at its cap can do meanwhile: the team page's practice check where the event
    allows practice checks (``grader check --practice`` is a coach's tool, not the teams')."""
    if event.practice_per_day is None or event.practice_per_day > 0:
        return ("meanwhile, try your notebook with the Practice check button on this page (scored on the public "
                "practice split; it uses no submission)")
    return "meanwhile, try your notebook on the challenge's public data (its download on this page)"


def _fit_name(filename: str) -> str:
    """``filename`` cut to the column's 255 characters (PostgreSQL enforces the length, SQLite
    does not), its suffix (``.ipynb``, ``.zip``) kept."""
    if len(filename) <= m.FILENAME_LEN:
        return filename
    suffix = PurePosixPath(filename).suffix[:16]
    return filename[: m.FILENAME_LEN - len(suffix)] + suffix


def _team_numbers(s: Session, team_ids: set[int]) -> dict[int, int]:
    """The teams' own submissions (neither a coach's re-grade nor a practice check; cancelled ones
    too) numbered 1, 2, 3 ... per team in the order they arrived (``created``, then id), as
    :func:`grader.server.web.routes.history.team_numbers` numbers a team's history: one query for a
    batch's teams, in its transaction. Returns ``submission id -> number``."""
    if not team_ids:
        return {}
    own: dict[int, list[tuple[datetime, int]]] = {}
    for team_id, sub_id, created in s.execute(
            select(m.Submission.team_id, m.Submission.id, m.Submission.created)
            .where(m.Submission.team_id.in_(sorted(team_ids)), m.Submission.regrade_of.is_(None),
                   m.Submission.practice.is_(False))):
        own.setdefault(team_id, []).append((utc(created) or utcnow(), sub_id))
    return {sub_id: number for arrivals in own.values() for sub_id, number in arrival_numbers(arrivals).items()}
