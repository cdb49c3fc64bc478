"""Sessions kept by the server: a signed-in browser's cookie holds only a random session id
(``secrets.token_urlsafe(32)``, 256 bits); the database keeps its SHA-256 hex digest with who it
is (a team, or the coach), its CSRF token and when it expires. Signing out deletes the row, so a
cookie copied before sign-out is worth nothing after it; rotating a link or removing a team
(:mod:`grader.server.store.teams`) deletes that team's (or the coach's) rows.

OWASP's Session Management Cheat Sheet is the model: an id from a CSPRNG with at least 64 bits of
entropy, a new id at every sign-in (no fixation), invalidated on the server at sign-out, an
absolute lifetime (:data:`SESSION_S`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from grader.core import UsageError
from grader.server.store import models as m
from grader.server.store.db import Database
from grader.server.store.rows import now as utcnow
from grader.server.store.rows import utc

__all__ = ["MAX_SESSIONS", "SESSION_ID", "SESSION_S", "Sessions", "SignedIn", "digest", "end_sessions"]

SESSION_S = 30 * 24 * 3600  # a session's absolute lifetime, seconds (the cookie's Max-Age too)
MAX_SESSIONS = 100  # kept per team (and for the coach): signing in again and again cannot fill the table
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32): anything else is not looked up


# a live session's lookup (Sessions.find), by its id's digest and the event's id
_FIND = (select(m.BrowserSession.team_id, m.BrowserSession.csrf, m.BrowserSession.expires, m.Team.removed_at)
         .outerjoin(m.Team, m.BrowserSession.team_id == m.Team.id)
         .where(m.BrowserSession.id_hash == bindparam("id_hash"), m.BrowserSession.event_id == bindparam("event_id")))


def digest(secret: str) -> str:
    """The SHA-256 hex digest of ``secret`` (a token or a session id), as the database keeps it."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """A live session.

    Attributes:
        team_id: the team's id; None for the coach.
        csrf: the token every form of this session carries.
        expires: when it ends on its own (UTC).
    """

    team_id: int | None
    csrf: str
    expires: datetime

    @property
    def coach(self) -> bool:
        """Whether this is the coach's session."""
        return self.team_id is None


class Sessions:
    """The ``sessions`` table of ``db`` (:class:`grader.server.store.store.Store` is one): its
    transactions are the database's own (``Database._read`` and ``_write``).

    Args:
        db: the open database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._event_ids: dict[str, int] = {}  # an event's id never changes

    def _event_id(self, s: Session, event: str) -> int | None:
        found = self._event_ids.get(event)
        if found is None:
            found = s.scalar(select(m.Event.id).where(m.Event.name == event))
            if found is not None:
                self._event_ids[event] = found
        return found

    def find(self, event: str, session_id: str) -> SignedIn | None:
        """The live session of ``event`` whose id is ``session_id``; None when there is none (never
        made, signed out, ended by a rotation or a team's removal, expired, malformed).

        Raises:
            DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        """
        if not SESSION_ID.match(session_id):
            return None
        event_id = self._event_ids.get(event)
        if event_id is None:
            with self._db._read() as s:
                event_id = self._event_id(s, event)
        with self._db._connect() as conn:  # every request's one query: Core, built once (_FIND)
            row = conn.execute(_FIND, {"id_hash": digest(session_id), "event_id": event_id}).first()
        if row is None:
            return None
        expires = utc(row.expires)
        if expires is None or expires <= utcnow() or row.removed_at is not None:
            return None
        return SignedIn(team_id=row.team_id, csrf=row.csrf, expires=expires)

    def start(self, event: str, *, team_token_hash: str | None = None, coach_token_hash: str | None = None,
              replaces: str | None = None) -> tuple[str, SignedIn] | None:
        """Sign a browser in: a new session of the team whose token hashes to ``team_token_hash``
        (or of the coach, given ``coach_token_hash``), checked in the same transaction that
        writes it (a link rotated a moment before does not sign in). The browser's session
        ``replaces``, if any, ends in it too; expired sessions of the event are deleted, and the
        team's (or coach's) oldest beyond :data:`MAX_SESSIONS`.

        Returns:
            ``(session id, session)``: the id goes in the cookie, only its digest is stored;
            None when the token is no team's (or not the coach's) now.

        Raises:
            ValueError: neither or both token hashes given.
            UsageError: no such event.
            DatabaseUnavailable: the database cannot be reached or written.
        """
        if (team_token_hash is None) == (coach_token_hash is None):
            raise ValueError("give the team's or the coach's token hash, one of them")
        now = utcnow()
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._db._write() as s:
            ev = s.scalar(select(m.Event).where(m.Event.name == event))
            if ev is None:
                raise UsageError(f"no event {event!r}")
            team_id: int | None = None
            if team_token_hash is not None:
                team_id = s.scalar(select(m.Team.id).where(m.Team.event_id == ev.id, m.Team.removed_at.is_(None),
                                                           m.Team.token_hash == team_token_hash))
                if team_id is None:
                    return None
            elif not secrets.compare_digest(ev.coach_token_hash, coach_token_hash or ""):
                return None
            if replaces is not None and SESSION_ID.match(replaces):
                s.execute(delete(m.BrowserSession).where(m.BrowserSession.id_hash == digest(replaces)))
            s.execute(delete(m.BrowserSession).where(m.BrowserSession.event_id == ev.id,
                                                     m.BrowserSession.expires < now))
            expires = now + timedelta(seconds=SESSION_S)
            s.add(m.BrowserSession(id_hash=digest(session_id), event_id=ev.id, team_id=team_id, csrf=csrf,
                                   created=now, expires=expires))
            owner = m.BrowserSession.team_id.is_(None) if team_id is None else m.BrowserSession.team_id == team_id
            s.flush()
            oldest = list(s.scalars(select(m.BrowserSession.id_hash).where(m.BrowserSession.event_id == ev.id, owner)
                                    .order_by(m.BrowserSession.created.desc()).offset(MAX_SESSIONS)))
            if oldest:
                s.execute(delete(m.BrowserSession).where(m.BrowserSession.id_hash.in_(oldest)))
        return session_id, SignedIn(team_id=team_id, csrf=csrf, expires=expires)

    def end(self, session_id: str) -> bool:
        """End (delete) session ``session_id``; whether there was one.

        Raises:
            DatabaseUnavailable: the database cannot be reached or written.
        """
        if not SESSION_ID.match(session_id):
            return False
        with self._db._write() as s:
            gone = s.execute(delete(m.BrowserSession).where(m.BrowserSession.id_hash == digest(session_id)))
        return bool(getattr(gone, "rowcount", 0))

    def count(self, event: str, *, team_id: int | None = None, coach: bool = False) -> int:
        """How many sessions of ``event`` are stored (of team ``team_id`` only, or of the coach
        only), live or expired: what the tests and ``grader event`` read."""
        with self._db._read() as s:
            where = [m.BrowserSession.event_id == self._event_id(s, event)]
            if team_id is not None:
                where.append(m.BrowserSession.team_id == team_id)
            if coach:
                where.append(m.BrowserSession.team_id.is_(None))
            return len(list(s.scalars(select(m.BrowserSession.id_hash).where(*where))))


def end_sessions(s: Session, event_id: int, *, team_id: int | None) -> int:
    """In transaction ``s``, end every session of team ``team_id`` of event ``event_id`` (None:
    the coach's); how many there were."""
    owner = m.BrowserSession.team_id.is_(None) if team_id is None else m.BrowserSession.team_id == team_id
    gone = s.execute(delete(m.BrowserSession).where(m.BrowserSession.event_id == event_id, owner))
    return int(getattr(gone, "rowcount", 0) or 0)
