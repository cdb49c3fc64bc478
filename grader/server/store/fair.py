"""The queue's order: fair across teams.

A queued submission's *turn* counts the submissions of its own team that come before it (smaller
id) and either are still queued or running, or ran while it waited (started, and finished after
it arrived: each took a worker's turn while it waited). Workers claim the queued submission of
the lowest turn, the oldest (smallest id) among equals. So a team's second queued submission waits behind every other
team's first, its third behind every other's second, and so on: one team that sends five slow
notebooks holds a one-worker server for one of them at a time, not for all five ahead of
everyone else. Among teams with one submission each it is first come, first served.

Counting only the queued and running ones ahead of it would not do with one worker: the worker
finishes the team's first notebook before it claims again, and the team's second, then without
anything of its team queued or running ahead of it, would again come before a later team's first.
Counting the ones that ran while it waited makes it round robin over the teams that wait at the
same time (like start-time fair queueing with jobs of equal cost: Goyal, Vin and Cheng, "Start-time
fair queueing", SIGCOMM 1996).
It has no memory beyond the submission's arrival: a team whose queue was served while no other
team waited has turns as high as its notebooks graded since, so a team arriving later goes first
for as many rounds (bounded by the daily cap).

The order is one SQL expression (:func:`turn`), read from the database alone: the job claim
(:meth:`grader.server.store.jobs.Jobs.claim`) and the queue places the pages show
(:func:`queue_order`, :meth:`grader.server.store.store.Store.queue_positions`) use the same one, and
several servers on one PostgreSQL database claim in the same order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from grader.server.store import models as m

__all__ = ["ACTIVE", "PLACES_TTL_S", "QueuePlaces", "queue_order", "turn"]

ACTIVE = ("queued", "running")  # the states that hold a team's place in the queue
PLACES_TTL_S = 1.0  # how long the queue order read for the pages is used again, in seconds


def turn() -> Any:
    """SQL: the turn of the row of ``m.Submission`` in the enclosing query (a correlated scalar
    subquery): how many submissions of the same team with a smaller id are queued or running,
    or ran while it waited (``started_at`` set, ``finished_at >= created``: a submission
    cancelled before it ran has no start). ``ORDER BY turn(), id`` is the order in which the queue
    is claimed."""
    earlier = aliased(m.Submission)
    ran = and_(earlier.started_at.is_not(None), earlier.finished_at >= m.Submission.created)
    return (select(func.count(earlier.id))
            .where(earlier.team_id == m.Submission.team_id, earlier.id < m.Submission.id,
                   or_(earlier.state.in_(ACTIVE), ran))
            .correlate(m.Submission).scalar_subquery())


def queue_order(s: Session, *, event: str | None = None) -> list[int]:
    """The ids of the queued submissions (of the event named ``event`` only, if given) in the order the
    workers will claim them (:func:`turn`, then id). A team's turns are counted within its own
    rows, so one event's order is the order of every event restricted to it.

    A worker that leaves some challenges to others (no GPU) skips their submissions: for it the
    places are an upper bound."""
    query = select(m.Submission.id).where(m.Submission.state == "queued")
    if event is not None:
        query = query.where(m.Submission.event_id == select(m.Event.id).where(m.Event.name == event).scalar_subquery())
    return list(s.scalars(query.order_by(turn(), m.Submission.id)))


class QueuePlaces:
    """The queue places the pages show, from :func:`queue_order` read at most once a second.

    Every team page and status poll of a queued submission asks for its place; the order costs a
    turn per queued submission (about 20-30 ms for 600 queued among 4,600 submissions on SQLite,
    against well under 1 ms for a status), so one server reads it again only when it is older
    than :data:`PLACES_TTL_S`, when an asked submission is not in it (queued since), or after a
    write of this server (:meth:`forget`). Another server's claim shows within the second.
    Concurrent askers of an old order wait for one read (single flight).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one read at a time
        self._places: dict[int, int] = {}
        self._read_at = float("-inf")
        self._generation = 0  # counts forget(): a read that began before one is not kept

    def forget(self) -> None:
        """Read the order again at the next ask (this server wrote to the database)."""
        self._generation += 1
        self._read_at = float("-inf")

    def places(self, read: Callable[[], list[int]], asked: Collection[int]) -> dict[int, int]:
        """The place (1: claimed next) of each of ``asked`` that ``read()`` (:func:`queue_order`
        in a read session) lists."""
        found = self._fresh(asked)
        if found is None:
            with self._lock:
                found = self._fresh(asked)
                if found is None:
                    generation = self._generation
                    found = {sid: place for place, sid in enumerate(read(), start=1)}
                    if generation == self._generation:
                        self._places, self._read_at = found, time.monotonic()
        return {sid: found[sid] for sid in asked if sid in found}

    def _fresh(self, asked: Collection[int]) -> dict[int, int] | None:
        places = self._places
        if time.monotonic() - self._read_at > PLACES_TTL_S or any(sid not in places for sid in asked):
            return None
        return places
