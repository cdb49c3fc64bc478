"""A team's final submission per challenge, as the team chooses it (revision 0004; Kaggle's
"selected for final"): the private board and the exports score each team's final submission.

Without a choice a team's final submission is the one its public score came from
(:func:`grader.server.web.boards.chosen`). A choice names one of the team's graded submissions of
that challenge (a practice check is never one); it may be changed, or cleared back to the default,
until the event ends (``events.ends_at``), then it is refused. One row per team and challenge
(UNIQUE ``team_id, challenge``), written with ``INSERT ... ON CONFLICT DO UPDATE``: two clicks at
once leave one choice, the later one.
"""

from __future__ import annotations

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

__all__ = ["FinalRefused", "choose_final", "clear_final", "finals_of"]


class FinalRefused(UsageError):
    """A final choice refused: the event has ended, or the submission cannot be a final one."""


def _open(ev: m.Event, now: datetime) -> None:
    ends = utc(ev.ends_at)
    if ends is not None and now >= ends:
        raise FinalRefused(f"the event ended at {ends:%Y-%m-%d %H:%M} UTC: final submissions can no longer be "
                           "changed")


def choose_final(db: Database, event: str, team_id: int, submission_id: int) -> str:
    """Make submission ``submission_id`` team ``team_id``'s final one for its challenge; return
    the challenge.

    Raises:
        UsageError: no such event.
        FinalRefused: the event has ended; the submission is not a graded submission of this team
            and event (a practice check is not one either).
    """
    now = utcnow()
    with db._write() as s:
        ev = event_named(s, event)
        _open(ev, now)
        sub = s.get(m.Submission, submission_id)
        if sub is None or sub.event_id != ev.id or sub.team_id != team_id:
            raise FinalRefused(f"no submission {submission_id} of this team")
        if sub.practice:
            raise FinalRefused("a practice check is scored on public data: it cannot be a final submission")
        if sub.state != "done":
            raise FinalRefused("only a graded submission can be a final one")
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(insert(m.FinalChoice).values(team_id=team_id, challenge=sub.challenge, submission_id=sub.id,
                                               chosen_at=now)
                  .on_conflict_do_update(index_elements=[m.FinalChoice.team_id, m.FinalChoice.challenge],
                                         set_={"submission_id": sub.id, "chosen_at": now}))
        return sub.challenge


def clear_final(db: Database, event: str, team_id: int, challenge: str) -> bool:
    """Forget team ``team_id``'s choice for ``challenge`` (its final submission is the default
    again); False where it had none.

    Raises:
        UsageError: no such event.
        FinalRefused: the event has ended.
    """
    now = utcnow()
    with db._write() as s:
        _open(event_named(s, event), now)
        return bool(rowcount(s, delete(m.FinalChoice).where(m.FinalChoice.team_id == team_id,
                                                            m.FinalChoice.challenge == challenge)))


def finals_of(db: Database, event: str, *, team_id: int | None = None) -> dict[tuple[str, str], int]:
    """Every choice of ``event``'s teams (of team ``team_id`` only, if given: a team's page reads its
    own): ``(team name, challenge) -> submission id``.

    Raises:
        UsageError: no such event.
    """
    with db._read() as s:
        return _finals(s, event, team_id=team_id)


def _finals(s: Session, event: str, *, team_id: int | None = None) -> dict[tuple[str, str], int]:
    ev = event_named(s, event)
    query = (select(m.Team.name, m.FinalChoice.challenge, m.FinalChoice.submission_id)
             .join(m.Team, m.FinalChoice.team_id == m.Team.id).where(m.Team.event_id == ev.id))
    if team_id is not None:
        query = query.where(m.FinalChoice.team_id == team_id)
    return {(team, challenge): sub_id for team, challenge, sub_id in s.execute(query)}
