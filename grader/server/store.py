"""The event server's state: events, teams, uploads, submissions (the jobs) and their results.

:class:`Store` is the only code that reads or writes the database (:mod:`grader.server.db`: the
same code on SQLite, the embedded default, and on PostgreSQL given a URL); it returns frozen
dataclass rows (:mod:`grader.server.rows`), never live ORM objects, so the web app and the
workers share nothing mutable. The workers' methods (``claim``, ``progress``, ``finish``,
``fail``, ``release``, ``requeue_stale``) are in :mod:`grader.server.jobs`. Uploads live beside
the database, content-addressed (:mod:`grader.server.uploads`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.errors import GraderError, UsageError
from grader.server import models as m
from grader.server.group import GroupCommit
from grader.server.jobs import DEFAULT_LEASE_S, MAX_ATTEMPTS, Jobs, rowcount
from grader.server.rows import CreatedEvent, EventRow, ResultRow, SubmissionRow, TeamRow, UploadRow, result_row, utc
from grader.server.rows import now as utcnow
from grader.server.uploads import UploadRefused, store_file, sync_folder, upload_path

__all__ = ["DEFAULT_LEASE_S", "MAX_ATTEMPTS", "CapReached", "CreatedEvent", "EventRow", "ResultRow", "Store",
           "SubmissionRow", "TeamRow", "UploadRefused", "UploadRow"]

_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CapReached(UsageError):
    """A team has used up its submissions for today (UTC)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Submit:
    """One submission to write (:meth:`Store.submit`), its event's facts already checked."""

    event: EventRow
    team_id: int
    challenge: str
    upload: UploadRow
    now: datetime


class Store(Jobs):
    """The server's state in one database and one folder of uploads.

    Args:
        state_dir: the state folder (see :mod:`grader.server.state`); created if missing.
        database_url: a SQLAlchemy URL; None is ``sqlite:///<state_dir>/grader.db``.

    Raises:
        ConfigError: the state folder cannot be created or written; the database cannot be
            opened (see :class:`grader.server.db.Database`).
    """

    def __init__(self, state_dir: Path, database_url: str | None = None, *, workers: int = 1) -> None:
        super().__init__(state_dir, database_url, workers=workers)
        self._facts: dict[str, EventRow] = {}  # events as read once (_event_facts)
        self._facts_lock = threading.Lock()
        self._submits: GroupCommit[_Submit, SubmissionRow] = GroupCommit(self._write, self._submit_batch)

    # ----- events and teams

    def create_event(self, name: str, *, challenges: Sequence[str], teams: Sequence[str],
                     cap_per_day: int | None = None, ends_at: datetime | None = None,
                     title: str | None = None) -> CreatedEvent:
        """Create event ``name`` with its challenges (ids, in order) and teams; return it with
        each team's join token and the coach's (``secrets.token_urlsafe(24)``, stored as SHA-256
        hashes: these are the only copies in clear).

        Raises:
            UsageError: the event exists; its name is not 1-64 letters, digits, ``. _ -``; no
                challenge or a repeated one; a team name empty, over 64 characters or repeated;
                ``cap_per_day`` below 1; ``title`` over 200 characters.
        """
        if not _EVENT_NAME.match(name):
            raise UsageError(f"event name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-'",
                             fix="pick a short name such as hackday-2026")
        if not challenges or len(set(challenges)) != len(challenges):
            raise UsageError("an event needs one or more challenges, each named once")
        names = [t.strip() for t in teams]
        problem = _team_names_problem(names)
        if problem:
            raise UsageError(f"event {name}: {problem}", fix="give each team one unique, non-empty name")
        if cap_per_day is not None and cap_per_day < 1:
            raise UsageError(f"cap of {cap_per_day} submissions a day: it must be at least 1")
        if title is not None and len(title) > m.TITLE_LEN:
            raise UsageError(f"the title is {len(title)} characters long, over the limit of {m.TITLE_LEN}",
                             fix="give a shorter --title")
        tokens = {t: secrets.token_urlsafe(24) for t in names}
        coach = secrets.token_urlsafe(24)
        exists = UsageError(f"event {name} exists already", fix="pick another name")
        try:
            with self._write() as s:
                if s.scalar(select(m.Event.id).where(m.Event.name == name)) is not None:
                    raise exists
                row = m.Event(name=name, title=title or name, cap_per_day=cap_per_day, ends_at=utc(ends_at),
                              revealed=False, coach_token_hash=_hash(coach),
                              session_secret=secrets.token_urlsafe(32), created=utcnow())
                s.add(row)
                s.flush()
                s.add_all(m.EventChallenge(event_id=row.id, challenge=c, position=i)
                          for i, c in enumerate(challenges))
                s.add_all(m.Team(event_id=row.id, name=t, token_hash=_hash(tokens[t])) for t in names)
        except IntegrityError as err:  # created at the same moment by another server (PostgreSQL)
            raise exists from err
        return CreatedEvent(event=self.event(name), team_tokens=tokens, coach_token=coach)

    def _event_row(self, s: Session, row: m.Event) -> EventRow:
        challenges = s.scalars(select(m.EventChallenge.challenge).where(m.EventChallenge.event_id == row.id)
                               .order_by(m.EventChallenge.position))
        return EventRow(id=row.id, name=row.name, title=row.title, challenges=tuple(challenges),
                        cap_per_day=row.cap_per_day, ends_at=utc(row.ends_at), revealed=row.revealed,
                        created=utc(row.created) or utcnow())

    def _get_event(self, s: Session, name: str) -> m.Event:
        row = s.scalar(select(m.Event).where(m.Event.name == name))
        if row is None:
            known = list(s.scalars(select(m.Event.name).order_by(m.Event.name)))
            raise UsageError(f"no event {name!r}; known: {', '.join(known) or 'none'}",
                             fix="create it with grader event create NAME --challenge ID --teams teams.csv")
        return row

    def event(self, name: str) -> EventRow:
        """Event ``name`` (its facts kept for :meth:`submit` on the first read).

        Raises:
            UsageError: no such event (the message names the known ones).
        """
        with self._read() as s:
            row = self._event_row(s, self._get_event(s, name))
        self._facts.setdefault(name, row)
        return row

    def _event_facts(self, name: str) -> EventRow:
        """Event ``name`` as read once by this store: its id, challenges, cap and end never change
        after :meth:`create_event` (``revealed`` does: read :meth:`event` for it).

        Raises:
            UsageError: no such event.
        """
        found = self._facts.get(name)
        if found is None:
            with self._facts_lock:  # fifty uploads at the start read it once, not fifty times
                found = self._facts.get(name)
                if found is None:
                    found = self._facts[name] = self.event(name)
        return found

    def events(self) -> list[EventRow]:
        """Every event, oldest first."""
        with self._read() as s:
            return [self._event_row(s, e) for e in s.scalars(select(m.Event).order_by(m.Event.id))]

    def session_secret(self, name: str) -> str:
        """Event ``name``'s random secret for signing session cookies.

        Raises:
            UsageError: no such event.
        """
        with self._read() as s:
            return self._get_event(s, name).session_secret

    def team_for_token(self, event: str, token: str) -> TeamRow | None:
        """The team of ``event`` whose join token is ``token``, else None (hashes compared with
        :func:`hmac.compare_digest`)."""
        digest = _hash(token)
        with self._read() as s:
            found = s.execute(select(m.Team, m.Event.name).join(m.Event, m.Team.event_id == m.Event.id)
                              .where(m.Event.name == event, m.Team.token_hash == digest)).first()
        if found is None or not hmac.compare_digest(found[0].token_hash, digest):
            return None
        return TeamRow(id=found[0].id, event=found[1], name=found[0].name)

    def coach_token_ok(self, event: str, token: str) -> bool:
        """Whether ``token`` is the coach's token of ``event`` (False for an unknown event)."""
        with self._read() as s:
            stored = s.scalar(select(m.Event.coach_token_hash).where(m.Event.name == event))
        return stored is not None and hmac.compare_digest(stored, _hash(token))

    def team(self, event: str, team_id: int) -> TeamRow | None:
        """Team ``team_id`` if it belongs to ``event``, else None."""
        with self._read() as s:
            found = s.execute(select(m.Team, m.Event.name).join(m.Event, m.Team.event_id == m.Event.id)
                              .where(m.Event.name == event, m.Team.id == team_id)).first()
        return None if found is None else TeamRow(id=found[0].id, event=found[1], name=found[0].name)

    def teams(self, event: str) -> list[TeamRow]:
        """The teams of ``event`` in the order they were created.

        Raises:
            UsageError: no such event.
        """
        with self._read() as s:
            row = self._get_event(s, event)
            return [TeamRow(id=t.id, event=event, name=t.name)
                    for t in s.scalars(select(m.Team).where(m.Team.event_id == row.id).order_by(m.Team.id))]

    def set_revealed(self, event: str, revealed: bool) -> None:
        """Show (True) or hide the private ranking of ``event``.

        Raises:
            UsageError: no such event.
        """
        with self._write() as s:
            self._get_event(s, event).revealed = revealed
    # ----- uploads and submissions

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
                together shares one (:func:`grader.server.uploads.store_file`).

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

    def submit(self, event: str, team_id: int, *, challenge: str, upload: UploadRow) -> SubmissionRow:
        """Queue ``upload`` as team ``team_id``'s submission to ``challenge``; committed (durable)
        when this returns, in one transaction with the submissions arriving at the same moment
        (:class:`grader.server.group.GroupCommit`; a refused one leaves the others standing).

        The cap counts the team's submissions of this event created since 00:00 UTC today,
        whatever their verdict (a failing scorecard counts), except cancelled ones and the
        coach's re-grades.

        Raises:
            UsageError: no such event, team or upload, ``challenge`` is not one of the event's,
                or the event has ended.
            CapReached: the team has used its ``cap_per_day`` submissions today.
        """
        now = utcnow()
        ev = self._event_facts(event)  # what cannot change: checked before the transaction
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

        # one durable commit for the uploads arriving together (grader.server.group)
        return self._submits.write(_Submit(ev, team_id, challenge, upload, now))

    def _submit_batch(self, s: Session, batch: Sequence[_Submit]) -> list[SubmissionRow | GraderError]:
        """Write the submissions of ``batch`` (in the order they arrived) with one statement per
        table; each one's new row (queued), or its refusal (no such team, the cap reached: decided before
        anything is written). The teams' rows are locked (``FOR UPDATE``, in the order of their
        ids: batches of two servers cannot deadlock) so that no other server counts their
        submissions of today meanwhile. First the uploads folder is synced: the files of the
        batch's uploads (stored with ``record=False``) survive a crash before their rows are
        committed, one ``fsync`` for the batch."""
        sync_folder(self.state_dir / "uploads")
        ids = sorted({w.team_id for w in batch})
        teams = {t.id: t for t in s.scalars(select(m.Team).where(m.Team.id.in_(ids)).order_by(m.Team.id)
                                             .with_for_update())}
        used = self._used_today_of(s, [w for w in batch if w.event.cap_per_day is not None])
        outcomes: list[str | GraderError] = []  # the team's name, or the refusal
        accepted: list[_Submit] = []
        for w in batch:
            team = teams.get(w.team_id)
            cap = w.event.cap_per_day
            if team is None or team.event_id != w.event.id:
                outcomes.append(UsageError(f"no team {w.team_id} in event {w.event.name}"))
            elif cap is not None and used.get(w.team_id, 0) >= cap:
                outcomes.append(CapReached(f"{team.name} has used its {cap} submissions for today (UTC); the next "
                                           f"one can be sent from {_tomorrow(w.now):%Y-%m-%d %H:%M} UTC",
                                           fix="try your notebook offline with grader check --practice first"))
            else:
                used[w.team_id] = used.get(w.team_id, 0) + 1
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
                   "state": "queued", "attempts": 0, "progress": "", "cancel_requested": False} for w in accepted]
        new_ids = s.scalars(insert(m.Submission).returning(m.Submission.id, sort_by_parameter_order=True), values)
        rows = iter([SubmissionRow(id=new_id, event=w.event.name, team_id=w.team_id, team_name=str(name),
                                   challenge=w.challenge, filename=str(v["filename"]), upload_sha256=w.upload.sha256,
                                   created=w.now, state="queued", attempts=0, progress="", progress_at=None,
                                   started_at=None, finished_at=None, error=None, cancel_requested=False,
                                   verdict=None, score=None, max_score=None)
                     for new_id, w, v, name in zip(new_ids, accepted, values,
                                                   [o for o in outcomes if not isinstance(o, GraderError)],
                                                   strict=True)])
        return [o if isinstance(o, GraderError) else next(rows) for o in outcomes]

    def _used_today_of(self, s: Session, batch: Sequence[_Submit]) -> dict[int, int]:
        """Each team's submissions counted against its cap today (UTC), for the teams of ``batch``
        (one grouped query when the batch is within one UTC day, as it nearly always is)."""
        days = {_day_start(w.now) for w in batch}
        if len(days) != 1:
            return {w.team_id: self._used_today(s, w.team_id, w.now) for w in batch}
        [start] = days
        counted = s.execute(select(m.Submission.team_id, func.count(m.Submission.id)).where(
            m.Submission.team_id.in_(sorted({w.team_id for w in batch})), m.Submission.created >= start,
            m.Submission.state != "cancelled", m.Submission.regrade_of.is_(None)).group_by(m.Submission.team_id))
        return {team_id: count for team_id, count in counted}

    @staticmethod
    def _used_today(s: Session, team_id: int, now: datetime) -> int:
        start = _day_start(now)
        return s.scalar(select(func.count(m.Submission.id)).where(
            m.Submission.team_id == team_id, m.Submission.created >= start,
            m.Submission.state != "cancelled", m.Submission.regrade_of.is_(None))) or 0

    def submissions_left_today(self, event: str, team_id: int) -> int | None:
        """How many more submissions team ``team_id`` may send today (UTC); None: no cap.

        Raises:
            UsageError: no such event.
        """
        with self._read() as s:
            ev = self._get_event(s, event)
            if ev.cap_per_day is None:
                return None
            return max(0, ev.cap_per_day - self._used_today(s, team_id, utcnow()))

    def submissions(self, event: str, *, team_id: int | None = None, states: Sequence[str] = (),
                    limit: int | None = None) -> list[SubmissionRow]:
        """The submissions of ``event`` (of team ``team_id`` only, in ``states`` only, if given),
        newest first, at most ``limit`` of them."""
        where = [m.Event.name == event] + ([m.Submission.team_id == team_id] if team_id is not None else []) + (
            [m.Submission.state.in_(list(states))] if states else [])
        with self._read() as s:
            return self._rows(s, where, limit=limit)

    def counts(self, event: str) -> tuple[int, int, int]:
        """``(submissions, graded, newest graded id)`` of ``event`` (0 for none): the graded ones
        (state ``done``, each with its one result) only ever grow, so the last two tell whether a
        result was added since they were last read (one aggregate query, not 4,000 rows)."""
        with self._read() as s:
            return self._counts(s, event)

    @staticmethod
    def _counts(s: Session, event: str) -> tuple[int, int, int]:
        done = case((m.Submission.state == "done", 1), else_=0)
        newest = func.max(case((m.Submission.state == "done", m.Submission.id), else_=None))
        total, graded, last = s.execute(
            select(func.count(m.Submission.id), func.coalesce(func.sum(done), 0), func.coalesce(newest, 0))
            .join(m.Event, m.Submission.event_id == m.Event.id).where(m.Event.name == event)).one()
        return int(total), int(graded), int(last)

    def overview(self, event: str, *, limit: int | None) -> tuple[list[SubmissionRow], list[SubmissionRow],
                                                                    tuple[int, int, int]]:
        """The coach's page in one session: the newest ``limit`` submissions of ``event`` (all
        with None), the queued and running ones (oldest first), and :meth:`counts`."""
        with self._read() as s:
            listed = self._rows(s, [m.Event.name == event], limit=limit)
            active = self._rows(s, [m.Event.name == event, m.Submission.state.in_(["queued", "running"])],
                                newest_first=False)
            return listed, active, self._counts(s, event)
    def queue_position(self, submission_id: int) -> int | None:
        """Where a queued submission stands in the queue of every event (1: graded next), or None
        when it is not queued. The queue is first come, first served."""
        return self.queue_positions([submission_id]).get(submission_id)

    def queue_positions(self, submission_ids: Collection[int]) -> dict[int, int]:
        """:meth:`queue_position` of each of ``submission_ids`` that is queued (one query: the
        queued ids up to the largest asked)."""
        if not submission_ids:
            return {}
        with self._read() as s:
            queued = list(s.scalars(select(m.Submission.id).where(
                m.Submission.state == "queued", m.Submission.id <= max(submission_ids)).order_by(m.Submission.id)))
        asked = set(submission_ids)
        return {sid: place for place, sid in enumerate(queued, start=1) if sid in asked}

    def result(self, submission_id: int) -> ResultRow | None:
        """The result of submission ``submission_id``, or None while it has none."""
        with self._read() as s:
            row = s.scalar(select(m.Result).where(m.Result.submission_id == submission_id))
        return None if row is None else result_row(row)

    def results(self, event: str, *, known: Collection[int] = ()) -> list[tuple[TeamRow, SubmissionRow,
                                                                                ResultRow | None]]:
        """Every result of ``event`` with its team and submission, oldest first, without the HTML
        scorecards (``scorecard_html`` and ``team_scorecard_html`` are ""; :meth:`result` has
        them): the boards read the results only, and 200 teams x 20 scorecards are gigabytes.
        The results of the submissions in ``known`` (which the caller holds already: a stored
        result never changes) are not read again: their row is None."""
        with self._read() as s:
            subs = self._rows(s, [m.Event.name == event, m.Submission.state == "done"], newest_first=False)
            wanted = [x.id for x in subs if x.id not in known]
            columns = (m.Result.submission_id, m.Result.result_json, m.Result.verdict, m.Result.score,
                       m.Result.max_score, m.Result.created)
            found: dict[int, ResultRow | None] = {
                r.submission_id: ResultRow(submission_id=r.submission_id, result_json=r.result_json,
                                           scorecard_html="", verdict=r.verdict, score=r.score,
                                           max_score=r.max_score, created=utc(r.created) or utcnow())
                for r in (s.execute(select(*columns).where(m.Result.submission_id.in_(wanted))) if wanted else ())}
        found.update((i, None) for i in known)
        return [(TeamRow(id=x.team_id, event=event, name=x.team_name), x, found[x.id])
                for x in subs if x.id in found]

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
                               created=utcnow(), state="queued", attempts=0, progress="", cancel_requested=False)
            s.add(row)
            s.flush()
            new_id = row.id
        found = self.submission(new_id)
        assert found is not None
        return found


def _team_names_problem(names: Sequence[str]) -> str | None:
    """What is wrong with these team names (none, empty, over 64 characters, repeated), or None."""
    if not names:
        return "no teams"
    bad = [t for t in names if not t or len(t) > m.NAME_LEN]
    if bad:
        return f"team names must be 1 to {m.NAME_LEN} characters: " + ", ".join(repr(t) for t in bad)
    repeated = sorted({t for t in names if names.count(t) > 1})
    return "team names repeated: " + ", ".join(repeated) if repeated else None


def _fit_name(filename: str) -> str:
    """``filename`` cut to the column's 255 characters (PostgreSQL enforces the length, SQLite
    does not), its suffix (``.ipynb``, ``.zip``) kept."""
    if len(filename) <= m.FILENAME_LEN:
        return filename
    suffix = PurePosixPath(filename).suffix[:16]
    return filename[: m.FILENAME_LEN - len(suffix)] + suffix


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _tomorrow(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
