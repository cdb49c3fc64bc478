"""The event server's state: events, teams, uploads, submissions (the jobs) and their results.

:class:`Store` is the only code that reads or writes the database (:mod:`grader.server.store.db`: the
same code on SQLite, the embedded default, and on PostgreSQL given a URL); it returns frozen
dataclass rows (:mod:`grader.server.store.rows`), never live ORM objects, so the web app and the
workers share nothing mutable. The workers' methods (``claim``, ``progress``, ``finish``,
``fail``, ``release``, ``requeue_stale``) are in :mod:`grader.server.store.jobs`, the events, teams
and join tokens in :mod:`grader.server.store.events`, the uploads and submissions (the daily cap,
cancel and re-grade) in :mod:`grader.server.store.submissions`; here are the reads the pages make
(submissions, counts, queue places, results). Uploads live beside the database, content-addressed
(:mod:`grader.server.store.uploads`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from grader.server.store import models as m
from grader.server.store.fair import ACTIVE, queue_order
from grader.server.store.jobs import Jobs
from grader.server.store.rows import ResultRow, SubmissionRow, TeamRow, result_row, utc
from grader.server.store.rows import now as utcnow
from grader.server.store.submissions import Submissions

__all__ = ["Store"]


class Store(Submissions, Jobs):
    """The server's state in one database and one folder of uploads.

    Args:
        state_dir: the state folder (see :mod:`grader.server.store.state`); created if missing.
        database_url: a SQLAlchemy URL; None is ``sqlite:///<state_dir>/grader.db``.

    Raises:
        ConfigError: the state folder cannot be created or written; the database cannot be
            opened (see :class:`grader.server.store.db.Database`).
    """

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
        with None), the running ones (oldest first) then the queued ones in the order they will
        be graded (:meth:`queue_positions`), and :meth:`counts`."""
        with self._read() as s:
            listed = self._rows(s, [m.Event.name == event], limit=limit)
            active = self._rows(s, [m.Event.name == event, m.Submission.state.in_(ACTIVE)], newest_first=False)
            place = {sid: i for i, sid in enumerate(queue_order(s, event=event))} if active else {}
            counts = self._counts(s, event)
        return listed, sorted(active, key=lambda x: (x.state != "running", place.get(x.id, 0), x.id)), counts
    def queue_position(self, submission_id: int) -> int | None:
        """Where a queued submission stands in the queue of every event (1: graded next), or None
        when it is not queued. The queue is fair across teams (:mod:`grader.server.store.fair`): a
        team's second queued submission stands behind every other team's first."""
        return self.queue_positions([submission_id]).get(submission_id)

    def queue_positions(self, submission_ids: Collection[int]) -> dict[int, int]:
        """:meth:`queue_position` of each of ``submission_ids`` that is queued (one query: the
        queued ids in the order :meth:`claim` takes them, :func:`grader.server.store.fair.queue_order`,
        read at most once a second and after this server's writes:
        :class:`grader.server.store.fair.QueuePlaces`)."""
        if not submission_ids:
            return {}

        def read() -> list[int]:
            with self._read() as s:
                return queue_order(s)

        return self.queue_places.places(read, submission_ids)

    def result(self, submission_id: int) -> ResultRow | None:
        """The result of submission ``submission_id``, or None while it has none."""
        with self._read() as s:
            row = s.scalar(select(m.Result).where(m.Result.submission_id == submission_id))
        return None if row is None else result_row(row)

    def result_jsons(self, submission_ids: Collection[int]) -> dict[int, str]:
        """The stored ``result.json`` of each of ``submission_ids`` that has a result (one query; no
        scorecard read)."""
        if not submission_ids:
            return {}
        with self._read() as s:
            rows = s.execute(select(m.Result.submission_id, m.Result.result_json)
                             .where(m.Result.submission_id.in_(list(submission_ids))))
            return {int(i): str(text) for i, text in rows}

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
