"""A team's members, as the coach's ``teams.csv`` lists them (revision 0004): the gradebook an LMS
imports has one row per member (:mod:`grader.report.exports`), the coach's roster lists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from grader.core import UsageError
from grader.server.store import models as m
from grader.server.store.db import Database
from grader.server.store.teams import event_named

__all__ = ["MemberRow", "members_of", "set_members"]


@dataclass(frozen=True)
class MemberRow:
    """A member of a team: ``email`` and ``student_id`` are "" where the coach gave none."""

    name: str
    email: str = ""
    student_id: str = ""


def members_of(db: Database, event: str) -> dict[int, list[MemberRow]]:
    """The members of every team of ``event``, by team id, in the order ``teams.csv`` gave them
    (a team without members is absent).

    Raises:
        UsageError: no such event.
    """
    with db._read() as s:
        ev = event_named(s, event)
        rows = s.execute(select(m.TeamMember).join(m.Team, m.TeamMember.team_id == m.Team.id)
                         .where(m.Team.event_id == ev.id).order_by(m.TeamMember.team_id, m.TeamMember.position))
        out: dict[int, list[MemberRow]] = {}
        for (row,) in rows:
            out.setdefault(row.team_id, []).append(MemberRow(row.name, row.email, row.student_id))
    return out


def set_members(db: Database, event: str, members: Mapping[str, Sequence[MemberRow]]) -> None:
    """Replace the members of the teams of ``event`` named in ``members`` (team name -> members),
    in one transaction; teams not named keep theirs.

    Raises:
        UsageError: no such event, or a team name that is not one of its teams.
    """
    with db._write() as s:
        ev = event_named(s, event)
        teams = {name: team_id for name, team_id in s.execute(select(m.Team.name, m.Team.id)
                                                               .where(m.Team.event_id == ev.id))}
        unknown = sorted(set(members) - set(teams))
        if unknown:
            raise UsageError(f"no team {', '.join(map(repr, unknown))} in event {event!r}",
                             fix=f"its teams are {', '.join(sorted(teams))}")
        for name, listed in members.items():
            s.execute(delete(m.TeamMember).where(m.TeamMember.team_id == teams[name]))
            s.add_all(m.TeamMember(team_id=teams[name], position=i, name=x.name, email=x.email,
                                   student_id=x.student_id) for i, x in enumerate(listed))
