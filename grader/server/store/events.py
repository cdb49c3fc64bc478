"""Events, their teams and join tokens: :class:`Events`, the part of
:class:`grader.server.store.store.Store` that creates an event, reads it and its teams, checks a
team's or the coach's join token, shows or hides the private ranking and changes the settings a
coach may change while the event runs (the daily cap, the end, the practice allowance).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.core import UsageError
from grader.server.store import models as m
from grader.server.store.db import Database
from grader.server.store.rows import CreatedEvent, EventRow, TeamRow, utc
from grader.server.store.rows import now as utcnow
from grader.server.store.sessions import digest
from grader.server.store.teams import event_named, team_names_problem

__all__ = ["FACTS_TTL_S", "Events"]

# how long a store keeps an event's facts for Store.submit (its id, challenges, cap and end) before
# reading them again: a cap or end the coach changed on another server is enforced within this time
FACTS_TTL_S = 1.0
_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Events(Database):
    """The events and their teams (a base of :class:`grader.server.store.store.Store`).

    Args:
        state_dir, database_url, workers: as :class:`grader.server.store.db.Database`.
    """

    def __init__(self, state_dir: Path, database_url: str | None = None, *, workers: int = 1) -> None:
        super().__init__(state_dir, database_url, workers=workers)
        self._facts: dict[str, EventRow] = {}  # events as last read (_event_facts)
        self._facts_at: dict[str, float] = {}  # when each was read (time.monotonic)
        self._facts_lock = threading.Lock()

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
        problem = team_names_problem(names)
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
                              revealed=False, coach_token_hash=digest(coach),
                              session_secret=secrets.token_urlsafe(32), created=utcnow())
                s.add(row)
                s.flush()
                s.add_all(m.EventChallenge(event_id=row.id, challenge=c, position=i)
                          for i, c in enumerate(challenges))
                s.add_all(m.Team(event_id=row.id, name=t, token_hash=digest(tokens[t])) for t in names)
        except IntegrityError as err:  # created at the same moment by another server (PostgreSQL)
            raise exists from err
        return CreatedEvent(event=self.event(name), team_tokens=tokens, coach_token=coach)

    def _event_row(self, s: Session, row: m.Event) -> EventRow:
        challenges = s.scalars(select(m.EventChallenge.challenge).where(m.EventChallenge.event_id == row.id)
                               .order_by(m.EventChallenge.position))
        return EventRow(id=row.id, name=row.name, title=row.title, challenges=tuple(challenges),
                        cap_per_day=row.cap_per_day, ends_at=utc(row.ends_at), revealed=row.revealed,
                        created=utc(row.created) or utcnow(), practice_per_day=row.practice_per_day)

    def _get_event(self, s: Session, name: str) -> m.Event:
        return event_named(s, name, fix="create it with grader event create NAME --challenge ID --teams teams.csv")

    def event(self, name: str) -> EventRow:
        """Event ``name`` (its facts kept for :meth:`submit`: :meth:`_event_facts`).

        Raises:
            UsageError: no such event (the message names the known ones).
        """
        read_at = time.monotonic()
        with self._read() as s:
            row = self._event_row(s, self._get_event(s, name))
        self._facts[name], self._facts_at[name] = row, read_at
        return row

    def _event_facts(self, name: str) -> EventRow:
        """Event ``name`` as read by this store at most :data:`FACTS_TTL_S` seconds ago: its id and
        challenges never change after :meth:`create_event`; its cap and end change only by
        :meth:`set_settings`, which forgets them here at once and on every other server within
        :data:`FACTS_TTL_S` (``revealed`` may be older: read :meth:`event` for it).

        Raises:
            UsageError: no such event.
        """
        found = self._fresh_facts(name)
        if found is None:
            with self._facts_lock:  # fifty uploads at once read it once, not fifty times
                found = self._fresh_facts(name) or self.event(name)
        return found

    def _fresh_facts(self, name: str) -> EventRow | None:
        read_at, found = self._facts_at.get(name), self._facts.get(name)
        return found if read_at is not None and time.monotonic() - read_at < FACTS_TTL_S else None

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
        token_hash = digest(token)
        with self._read() as s:
            found = s.execute(select(m.Team, m.Event.name).join(m.Event, m.Team.event_id == m.Event.id)
                              .where(m.Event.name == event, m.Team.token_hash == token_hash)).first()
        if found is None or not hmac.compare_digest(found[0].token_hash, token_hash):
            return None
        return TeamRow(id=found[0].id, event=found[1], name=found[0].name)

    def coach_token_ok(self, event: str, token: str) -> bool:
        """Whether ``token`` is the coach's token of ``event`` (False for an unknown event)."""
        with self._read() as s:
            stored = s.scalar(select(m.Event.coach_token_hash).where(m.Event.name == event))
        return stored is not None and hmac.compare_digest(stored, digest(token))

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

    def set_cap(self, event: str, cap_per_day: int | None) -> EventRow:
        """Set the daily cap of ``event``: each team's submissions a UTC day (None: no cap). The next
        upload is checked against it (on another server within :data:`FACTS_TTL_S`).

        Raises:
            UsageError: no such event; ``cap_per_day`` below 1.
        """
        return self.set_settings(event, {"cap_per_day": cap_per_day})

    def set_end(self, event: str, ends_at: datetime | None) -> EventRow:
        """Set the end of ``event`` (None: no set end): uploads are refused from then on.

        Raises:
            UsageError: no such event; ``ends_at`` has no time zone or is not in the future.
        """
        return self.set_settings(event, {"ends_at": ends_at})

    def set_practice(self, event: str, practice_per_day: int | None) -> EventRow:
        """Set the practice checks a team of ``event`` may run a UTC day (0: none; None: no limit).

        Raises:
            UsageError: no such event; ``practice_per_day`` below 0.
        """
        return self.set_settings(event, {"practice_per_day": practice_per_day})

    def set_settings(self, event: str, changes: Mapping[str, int | datetime | None]) -> EventRow:
        """Change the settings of ``event`` named in ``changes`` in one transaction, all or none:
        ``cap_per_day`` (int >= 1, or None: no cap), ``ends_at`` (an aware datetime in the future,
        or None: no set end; an unchanged end may lie in the past) and ``practice_per_day`` (int >=
        0, or None: no limit). Returns the event as changed.

        Raises:
            UsageError: no such event; a setting that is not one of these three; a value out of
                its range (the message names each problem).
        """
        unknown = sorted(set(changes) - {"cap_per_day", "ends_at", "practice_per_day"})
        if unknown:
            raise UsageError(f"no setting {', '.join(unknown)}; the settings: cap_per_day, ends_at, practice_per_day")
        problems = []
        cap, practice = changes.get("cap_per_day"), changes.get("practice_per_day")
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            problems.append(f"the daily cap must be at least 1 submission (or none), not {cap}")
        if practice is not None and (not isinstance(practice, int) or practice < 0):
            problems.append(f"the practice checks a day must be 0 or more (or no limit), not {practice}")
        with self._write() as s:
            row = self._get_event(s, event)
            end = changes.get("ends_at")
            if end is not None and not (isinstance(end, datetime) and end.tzinfo is not None):
                problems.append(f"the end {end} has no time zone: give it in UTC")
            elif isinstance(end, datetime) and end != utc(row.ends_at) and end <= utcnow():
                problems.append(f"the end {utc(end):%Y-%m-%d %H:%M} UTC is not in the future: give a later time, "
                                "or none for no set end")
            if problems:
                raise UsageError(f"event {event}: " + "; ".join(problems) + ". Nothing was changed.")
            for key, value in changes.items():
                setattr(row, key, utc(value) if isinstance(value, datetime) else value)
            s.flush()
            found = self._event_row(s, row)
        self._facts_at.pop(event, None)  # this server enforces the new cap and end at once
        return found
