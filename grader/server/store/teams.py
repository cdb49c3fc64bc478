"""Who may sign in to an event, as the coach changes it while it runs (``grader event``): a team's
or the coach's join link rotated, a team added or removed. Each change ends the sessions it
concerns in the same transaction (:func:`grader.server.store.sessions.end_sessions`), so a browser
signed in through the old link is signed out at its next request.

A removed team keeps its row, its submissions and their results (the coach's records: the coach's
page still lists them with their scorecards), but its link no longer signs in, its sessions are
ended, and it is left off every leaderboard and export (:func:`removed_team_ids`); adding a team
of a removed team's name brings it back under a new link, its submissions with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from grader.core import UsageError
from grader.server.store import models as m
from grader.server.store.db import Database
from grader.server.store.rows import TeamRow, utc
from grader.server.store.rows import now as utcnow
from grader.server.store.sessions import digest, end_sessions

__all__ = ["NewLink", "RosterRow", "add_team", "event_named", "removed_team_ids", "remove_team", "rotate_coach_link",
           "rotate_team_link", "roster", "team_names_problem", "team_rows"]


@dataclass(frozen=True)
class NewLink:
    """A new join token (in clear only here: the database keeps its hash) and what it replaced.

    Attributes:
        who: the team's name, or ``coach``.
        token: the new join token.
        ended: sessions ended by the change.
        restored: a removed team of this name was brought back (:func:`add_team`).
    """

    who: str
    token: str
    ended: int = 0
    restored: bool = False


def event_named(s: Session, event: str, *, fix: str = "`grader event list` lists the events of this state folder"
                ) -> m.Event:
    """The event row named ``event``.

    Raises:
        UsageError: no such event (the message lists the known ones; ``fix`` says what to do).
    """
    row = s.scalar(select(m.Event).where(m.Event.name == event))
    if row is None:
        known = list(s.scalars(select(m.Event.name).order_by(m.Event.name)))
        raise UsageError(f"no event {event!r}; known: {', '.join(known) or 'none'}", fix=fix)
    return row


def _team(s: Session, ev: m.Event, name: str) -> m.Team:
    team = s.scalar(select(m.Team).where(m.Team.event_id == ev.id, m.Team.name == name.strip(),
                                         m.Team.removed_at.is_(None)))
    if team is None:
        known = [t for t in s.scalars(select(m.Team.name).where(m.Team.event_id == ev.id, m.Team.removed_at.is_(None))
                                      .order_by(m.Team.id))]
        raise UsageError(f"event {ev.name} has no team {name!r}; its teams: {', '.join(known) or 'none'}",
                         fix="give a team's name exactly as `grader event teams` lists it")
    return team


def rotate_team_link(db: Database, event: str, team: str) -> NewLink:
    """Give team ``team`` of ``event`` a new join token: its old link is refused from now on and its
    sessions end.

    Raises:
        UsageError: no such event, or no such team (the message names the event's teams).
        DatabaseUnavailable: the database cannot be reached or written.
    """
    token = secrets.token_urlsafe(24)
    with db._write() as s:
        row = _team(s, event_named(s, event), team)
        row.token_hash = digest(token)
        ended = end_sessions(s, row.event_id, team_id=row.id)
    return NewLink(who=team, token=token, ended=ended)


def rotate_coach_link(db: Database, event: str) -> NewLink:
    """Give the coach of ``event`` a new join token: the old coach link is refused from now on and
    the coach's sessions end.

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    token = secrets.token_urlsafe(24)
    with db._write() as s:
        ev = event_named(s, event)
        ev.coach_token_hash = digest(token)
        ended = end_sessions(s, ev.id, team_id=None)
    return NewLink(who="coach", token=token, ended=ended)


def add_team(db: Database, event: str, team: str) -> NewLink:
    """Add team ``team`` (its name stripped) to ``event`` with a new join token; a removed team of
    that name is brought back instead (its submissions back on the boards).

    Raises:
        UsageError: no such event; the name is empty or over 64 characters; a team of that name
            exists.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    name = team.strip()
    problem = team_names_problem([name])  # the rule of grader event create's names
    if problem:
        raise UsageError(f"team {team!r}: {problem}", fix="give a name of 1 to 64 characters")
    token = secrets.token_urlsafe(24)
    with db._write() as s:
        ev = event_named(s, event)
        row = s.scalar(select(m.Team).where(m.Team.event_id == ev.id, m.Team.name == name))
        if row is not None and row.removed_at is None:
            raise UsageError(f"event {event} has a team {name!r} already",
                             fix=f"pick another name, or give it a new link: grader event rotate-link {event} "
                             f"--team {name!r}")
        if row is not None:
            row.removed_at, row.token_hash = None, digest(token)
            return NewLink(who=name, token=token, restored=True)
        s.add(m.Team(event_id=ev.id, name=name, token_hash=digest(token)))
    return NewLink(who=name, token=token)


def remove_team(db: Database, event: str, team: str) -> int:
    """Remove team ``team`` of ``event``: its link stops signing in (its token hash becomes one of
    a token nobody holds), its sessions end; its submissions and results stay (module docstring).
    Returns how many sessions ended.

    Raises:
        UsageError: no such event, or no such team (the message names the event's teams).
        DatabaseUnavailable: the database cannot be reached or written.
    """
    with db._write() as s:
        row = _team(s, event_named(s, event), team)
        row.removed_at = utcnow()
        row.token_hash = digest(secrets.token_urlsafe(32))
        return end_sessions(s, row.event_id, team_id=row.id)


def team_rows(db: Database, event: str, *, removed: bool = False) -> list[TeamRow]:
    """The teams of ``event`` that are not removed (with ``removed``: only the removed ones), in
    the order they were added.

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    with db._read() as s:
        ev = event_named(s, event)
        state = m.Team.removed_at.is_not(None) if removed else m.Team.removed_at.is_(None)
        return [TeamRow(id=t.id, event=event, name=t.name)
                for t in s.scalars(select(m.Team).where(m.Team.event_id == ev.id, state).order_by(m.Team.id))]


def removed_team_ids(db: Database, event: str) -> frozenset[int]:
    """The ids of ``event``'s removed teams (their submissions are left off the boards).

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    return frozenset(t.id for t in team_rows(db, event, removed=True))


@dataclass(frozen=True)
class RosterRow:
    """A team on the coach's roster.

    Attributes:
        team: the team.
        removed: it was removed (:func:`remove_team`).
        submissions: its submissions, the coach's re-grades and practice checks left out (what
            the cap counts, cancelled ones included).
        last_activity: when it last uploaded (a practice check too; UTC), or None.
    """

    team: TeamRow
    removed: bool
    submissions: int
    last_activity: datetime | None


def roster(db: Database, event: str) -> list[RosterRow]:
    """Every team of ``event``, removed ones too, in the order they were added, with its
    submissions and last activity (one grouped query).

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    own = ((m.Submission.regrade_of.is_(None)) & (m.Submission.practice.is_(False)), 1)
    with db._read() as s:
        ev = event_named(s, event)
        counts = {team_id: (int(n or 0), utc(last)) for team_id, n, last in s.execute(
            select(m.Submission.team_id, func.sum(case(own, else_=0)), func.max(m.Submission.created))
            .where(m.Submission.event_id == ev.id).group_by(m.Submission.team_id))}
        return [RosterRow(team=TeamRow(id=t.id, event=event, name=t.name), removed=t.removed_at is not None,
                          submissions=counts.get(t.id, (0, None))[0], last_activity=counts.get(t.id, (0, None))[1])
                for t in s.scalars(select(m.Team).where(m.Team.event_id == ev.id).order_by(m.Team.id))]


def team_names_problem(names: Sequence[str]) -> str | None:
    """What is wrong with these team names (none, empty, over 64 characters, repeated), or None."""
    if not names:
        return "no teams"
    bad = [t for t in names if not t or len(t) > m.NAME_LEN]
    if bad:
        return f"team names must be 1 to {m.NAME_LEN} characters: " + ", ".join(repr(t) for t in bad)
    repeated = sorted({t for t in names if names.count(t) > 1})
    return "team names repeated: " + ", ".join(repeated) if repeated else None
