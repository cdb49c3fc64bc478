"""The job queue of the event server: claim, heartbeat, finish, fail, release, requeue.

Claiming is race-free across threads and processes: the conditional ``UPDATE ... WHERE id = ?
AND state = 'queued'`` succeeds for one claimer only (on SQLite write transactions are also
serialised by ``BEGIN IMMEDIATE``; on PostgreSQL the candidate is locked ``FOR UPDATE SKIP
LOCKED``). The other read-then-write methods lock the rows they read (``SELECT ... FOR UPDATE``,
a no-op on SQLite): on PostgreSQL's READ COMMITTED a row changed meanwhile by another server is
read again after the lock and dropped if it no longer matches (PostgreSQL manual, 13.2.1 "Read
Committed Isolation Level"), so a worker that lost its lease cannot overwrite the new holder's
run. A lease expires unless renewed; a job whose worker died :data:`MAX_ATTEMPTS` times fails
with a clear error instead of looping. The end of a run (``finish``, ``fail``, ``release``) is
tried again for up to :data:`RETRY_S` while the database is away (a PostgreSQL restart): a
result is not thrown away for a moment's outage, and trying again cannot store it twice (the
conditional ``UPDATE`` matches no row once the first try committed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.server.store import models as m
from grader.server.store.db import Database, DatabaseUnavailable
from grader.server.store.fair import QueuePlaces, turn
from grader.server.store.rows import SubmissionRow
from grader.server.store.rows import now as utcnow

__all__ = ["DEFAULT_LEASE_S", "MAX_ATTEMPTS", "RETRY_S", "Jobs", "rowcount"]

log = logging.getLogger(__name__)
DEFAULT_LEASE_S = 60.0
MAX_ATTEMPTS = 3  # a job whose worker died this many times fails instead of looping
RETRY_S = 30.0  # how long the end of a run is tried again while the database is away, in seconds
_T = TypeVar("_T")


class Jobs(Database):
    """The methods the workers call (the base of :class:`grader.server.store.store.Store`).

    Args:
        state_dir, database_url, workers: as :class:`grader.server.store.db.Database`.
    """

    def __init__(self, state_dir: Path, database_url: str | None = None, *, workers: int = 1) -> None:
        self.queue_places = QueuePlaces()  # the pages' queue places, read at most once a second
        super().__init__(state_dir, database_url, workers=workers)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """:meth:`grader.server.store.db.Database._write`; the queue places are read again after it."""
        try:
            with super()._write() as s:
                yield s
        finally:
            self.queue_places.forget()

    def claim(self, worker: str, *, lease_s: float, skip_challenges: Collection[str] = ()) -> SubmissionRow | None:
        """Take the next queued submission for ``worker`` until ``lease_s`` seconds from now
        (renewed by :meth:`progress`); None when the queue is empty. The next is fair across
        teams (:mod:`grader.server.store.fair`): the lowest turn (its team's submissions ahead of it
        that are queued, running or ran while it waited), the oldest among equals. Race-free
        across threads and processes: the conditional ``UPDATE ... WHERE id = ? AND state = 'queued'`` succeeds for
        one claimer only (on PostgreSQL the candidate is also locked ``FOR UPDATE SKIP LOCKED``).
        Submissions to ``skip_challenges`` are left to other workers (a worker without a GPU
        leaves those that need one). On SQLite the candidate is chosen in a read before the write
        transaction (readers do not block the writer), so uploads do not wait for the order to be
        computed; one taken meanwhile by another thread is tried again."""
        pick = select(m.Submission.id).where(m.Submission.state == "queued").order_by(turn(), m.Submission.id).limit(1)
        if skip_challenges:
            pick = pick.where(m.Submission.challenge.not_in(list(skip_challenges)))
        postgres = self._engine.dialect.name == "postgresql"
        for _ in range(20):
            candidate: int | None = None
            if not postgres:  # chosen in a read: the write lock is held for the UPDATE only
                with self._read() as s:
                    candidate = s.scalar(pick)
                if candidate is None:
                    return None
            now = utcnow()
            with self._write() as s:
                if postgres:  # another server's candidate, locked, is skipped
                    candidate = s.scalar(pick.with_for_update(skip_locked=True))
                    if candidate is None:
                        return None
                taken = rowcount(s, update(m.Submission).where(m.Submission.id == candidate,
                                                             m.Submission.state == "queued")
                                  .values(state="running", lease_owner=worker,
                                          lease_expires=now + timedelta(seconds=lease_s), started_at=now,
                                          progress_at=now, progress="starting", attempts=m.Submission.attempts + 1,
                                          cancel_requested=False))
            if taken == 1 and candidate is not None:
                return self.submission(candidate)
        return None

    def _held(self, submission_id: int, worker: str) -> list[Any]:
        return [m.Submission.id == submission_id, m.Submission.state == "running",
                m.Submission.lease_owner == worker]

    def progress(self, submission_id: int, worker: str, text: str, *, lease_s: float | None = None) -> bool:
        """Record ``text`` (the current cell, as the pipeline says it) and renew the lease by
        ``lease_s`` seconds (default :data:`DEFAULT_LEASE_S`).

        Returns:
            False when ``worker`` no longer holds the job (its lease was lost) or a cancel was
            requested: the worker should stop the run.
        """
        now = utcnow()
        with self._write() as s:
            row = s.scalar(select(m.Submission).where(*self._held(submission_id, worker)).with_for_update())
            if row is None:
                return False
            row.progress, row.progress_at = text[:500], now
            row.lease_expires = now + timedelta(seconds=DEFAULT_LEASE_S if lease_s is None else lease_s)
            return not row.cancel_requested

    def _retried(self, what: str, call: Callable[[], _T]) -> _T:
        """``call()``, tried again (0.2 s, doubling to 2 s apart) while it raises
        :class:`DatabaseUnavailable`, for up to :data:`RETRY_S` seconds; a full disk is not waited for.

        Raises:
            DatabaseUnavailable: still unavailable after :data:`RETRY_S`, or the disk is full.
        """
        deadline, delay = time.monotonic() + RETRY_S, 0.2
        while True:
            try:
                return call()
            except DatabaseUnavailable as err:
                if err.disk_full or time.monotonic() + delay > deadline:
                    raise
                log.warning("%s: %s; trying again in %.1f s", what, err.message, delay)
                time.sleep(delay)
                delay = min(2 * delay, 2.0)

    def finish(self, submission_id: int, worker: str, *, result_json: str, scorecard_html: str,
               verdict: str, score: float, max_score: float, team_scorecard_html: str = "") -> bool:
        """Store the result of a job ``worker`` holds and mark it done; exactly one result per
        submission (UNIQUE ``submission_id``). ``scorecard_html`` is the coach's scorecard,
        ``team_scorecard_html`` the team's two (:func:`grader.report.render.render_team_scorecards`: served
        only through :func:`grader.report.teamcard.unpack`). False (nothing stored) when the lease
        was lost or a result exists.

        Raises:
            DatabaseUnavailable: the database stayed away for :data:`RETRY_S` seconds, or its disk
                is full; nothing was stored (the job stays running until its lease expires).
        """
        return self._retried(f"submission {submission_id}: storing its result", lambda: self._finish(
            submission_id, worker, result_json=result_json, scorecard_html=scorecard_html, verdict=verdict,
            score=score, max_score=max_score, team_scorecard_html=team_scorecard_html))

    def _finish(self, submission_id: int, worker: str, *, result_json: str, scorecard_html: str,
                verdict: str, score: float, max_score: float, team_scorecard_html: str) -> bool:
        now = utcnow()
        try:
            with self._write() as s:
                done = rowcount(s, update(m.Submission).where(*self._held(submission_id, worker))
                                 .values(state="done", finished_at=now, verdict=verdict, score=score,
                                         max_score=max_score, lease_owner=None, lease_expires=None,
                                         progress="done", progress_at=now, error=None))
                if done != 1:
                    return False
                s.add(m.Result(submission_id=submission_id, result_json=result_json, scorecard_html=scorecard_html,
                               team_scorecard_html=team_scorecard_html, verdict=verdict, score=score,
                               max_score=max_score, created=now))
        except IntegrityError:
            return False
        return True

    def fail(self, submission_id: int, worker: str, error: str) -> None:
        """End a job ``worker`` holds without a result: ``cancelled`` when a cancel was requested,
        else ``failed`` with ``error`` (a harness or configuration fault, shown to the coach).
        Nothing happens when the lease was lost.

        Raises:
            DatabaseUnavailable: as :meth:`finish`.
        """
        def end() -> None:
            now = utcnow()
            with self._write() as s:
                row = s.scalar(select(m.Submission).where(*self._held(submission_id, worker)).with_for_update())
                if row is not None:
                    row.state = "cancelled" if row.cancel_requested else "failed"
                    row.error = "cancelled by the coach" if row.cancel_requested else error[:4000]
                    row.finished_at, row.lease_owner, row.lease_expires = now, None, None

        self._retried(f"submission {submission_id}: recording its failure", end)

    def release(self, submission_id: int, worker: str) -> bool:
        """Put a job ``worker`` holds back in the queue, its attempt not counted (the server is
        stopping); False when the lease was lost.

        Raises:
            DatabaseUnavailable: as :meth:`finish`.
        """
        def put_back() -> bool:
            with self._write() as s:
                return bool(rowcount(s, update(m.Submission).where(*self._held(submission_id, worker)).values(
                    state="queued", lease_owner=None, lease_expires=None, progress="", started_at=None,
                    attempts=m.Submission.attempts - 1)))

        return self._retried(f"submission {submission_id}: putting it back in the queue", put_back)

    def requeue_stale(self, *, all_running: bool = False) -> int:
        """Put back in the queue every running job whose lease has expired (every running job
        with ``all_running``: at the start of a server that is the only worker); one that has
        already been tried :data:`MAX_ATTEMPTS` times fails instead. Returns how many were
        requeued or failed."""
        now = utcnow()
        with self._write() as s:
            where = [m.Submission.state == "running"]
            if not all_running:
                where.append(m.Submission.lease_expires < now)
            # locked in id order: two servers sweeping at once wait for each other, never deadlock
            rows = list(s.scalars(select(m.Submission).where(*where).order_by(m.Submission.id).with_for_update()))
            for row in rows:
                row.lease_owner, row.lease_expires = None, None
                if row.cancel_requested:
                    row.state, row.error, row.finished_at = "cancelled", "cancelled by the coach", now
                elif row.attempts >= MAX_ATTEMPTS:
                    row.state, row.finished_at = "failed", now
                    row.error = (f"gave up after {row.attempts} attempts: the grading worker stopped (killed, "
                                 "out of memory or lost its lease) during each run")
                else:
                    row.state, row.progress, row.started_at = "queued", "", None
        return len(rows)


def rowcount(s: Session, statement: Any) -> int:
    """How many rows an UPDATE matched."""
    return int(cast("CursorResult[Any]", s.execute(statement)).rowcount)
