"""The daily cap: each team's submissions counted per UTC day, exactly, inside the batch that
writes them.

A submission belongs to the UTC day of its own arrival (its ``created``: the moment
:meth:`grader.server.store.store.Store.submit` was called), whatever batch commits it and whenever that
commit happens. Uploads sent together across midnight UTC share one batch
(:mod:`grader.server.store.group`): each one is counted against its own day, so a team with its cap used
up before midnight still has its whole cap from 00:00, and none of the day before's room is taken
by the uploads of the day after. The counts are read inside the batch's transaction with the
teams' rows locked (``SELECT ... FOR UPDATE``): no other server counts the same team meanwhile.

What counts: a team's submissions of the day whatever their verdict (a failing scorecard counts),
except cancelled ones and the coach's re-grades. Practice checks (``practice``: scored on the
public practice split) are never counted by the cap: they are counted the same way, apart,
against the event's ``practice_per_day`` allowance (``practice=True`` below).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.server.store import models as m
from grader.server.store.rows import SubmissionRow
from grader.server.store.rows import now as utcnow

__all__ = ["DAY", "DailyCounts", "day_start", "left_today", "next_day", "used_per_day"]

DAY = timedelta(days=1)


def day_start(when: datetime) -> datetime:
    """00:00 of the UTC day of ``when`` (an aware UTC datetime), the day's first instant."""
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def next_day(when: datetime) -> datetime:
    """00:00 UTC of the day after ``when``'s: when a team that used its cap may send again."""
    return day_start(when) + DAY


def _counted(practice: bool) -> list[Any]:
    return [m.Submission.state != "cancelled", m.Submission.regrade_of.is_(None),
            m.Submission.practice.is_(True) if practice else m.Submission.practice.is_(False)]


def left_today(subs: Iterable[SubmissionRow], allowed: int | None, *, practice: bool,
               now: datetime | None = None) -> int | None:
    """How many more submissions (with ``practice``: practice checks) a team may send today (UTC),
    counted from ``subs``, all of the team's submissions as its page has just read them, by the
    rule :func:`used_per_day` counts with in SQL (not cancelled, not a coach's re-grade, of the
    kind asked, created today); None when ``allowed`` is None (no cap). The team's page counts
    here, without two more queries a view (issue 28's benchmark); the submit path still counts in
    its transaction (:class:`DailyCounts`), so a page that is a moment old never lets one more in.

    Args:
        subs: the team's submissions (every one of them: those of other days are ignored).
        allowed: the day's cap, or allowance of practice checks.
        practice: count practice checks instead of submissions.
        now: the moment (an aware UTC datetime); default: now.
    """
    if allowed is None:
        return None
    start = day_start(now or utcnow())
    used = sum(1 for sub in subs if sub.state != "cancelled" and sub.regrade_of is None
               and sub.practice is practice and start <= sub.created < start + DAY)
    return max(0, allowed - used)


def used_per_day(s: Session, keys: Collection[tuple[int, datetime]], *,
                 practice: bool = False) -> dict[tuple[int, datetime], int]:
    """How many submissions count against the cap (with ``practice``: practice checks, against
    the practice allowance) for each ``(team id, day start)`` of ``keys``: those created in
    ``[day start, day start + 1 day)``. One grouped query per distinct day (a batch spans one day,
    two across midnight); absent pairs are 0.

    Args:
        s: an open session (the batch's transaction, the teams' rows locked by the caller).
        keys: ``(team id, day start)`` pairs, each day start from :func:`day_start`.
        practice: count practice checks instead of submissions.
    """
    days: dict[datetime, set[int]] = {}
    for team_id, start in keys:
        days.setdefault(start, set()).add(team_id)
    used = dict.fromkeys(keys, 0)
    for start, teams in sorted(days.items()):
        rows = s.execute(select(m.Submission.team_id, func.count(m.Submission.id)).where(
            m.Submission.team_id.in_(sorted(teams)), m.Submission.created >= start,
            m.Submission.created < start + DAY, *_counted(practice)).group_by(m.Submission.team_id))
        for team_id, count in rows:
            used[(team_id, start)] = int(count)
    return used


class DailyCounts:
    """Each team's count of the day, for one batch: read once (:func:`used_per_day`), then grown by
    every submission the batch accepts, so that the batch's own submissions count too.

    Args:
        s: the batch's session (the teams' rows locked).
        arrivals: ``(team id, arrival time)`` of each capped submission of the batch.
        practice: count practice checks (against the practice allowance) instead of submissions.
    """

    def __init__(self, s: Session, arrivals: Iterable[tuple[int, datetime]], *, practice: bool = False) -> None:
        self._used = used_per_day(s, {(team_id, day_start(at)) for team_id, at in arrivals}, practice=practice)

    def take(self, team_id: int, at: datetime, cap: int) -> bool:
        """Count a submission of team ``team_id`` arriving at ``at`` if its day has room under
        ``cap``; False (nothing counted) when the team's ``cap`` for that UTC day is used."""
        key = (team_id, day_start(at))
        used = self._used.get(key, 0)
        if used >= cap:
            return False
        self._used[key] = used + 1
        return True
