"""What every page of the event server shares: the templates and the checks of who is asking
(:class:`Site`). How the app serves an event is :class:`grader.server.web.options.AppOptions`; the
security headers are in :mod:`grader.server.web.headers`. Routes are in
:mod:`grader.server.web.routes` (team, public and coach pages), the app in :mod:`grader.server.web.app`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from grader.core import Settings
from grader.report import Board, markdown_html
from grader.score import SubmissionResult
from grader.server.store import (
    AnnouncementRow,
    EventRow,
    Store,
    SubmissionRow,
    TeamRow,
    announcements_of,
    finals_of,
    removed_team_ids,
    team_rows,
)
from grader.server.web.boards import NO_SPLIT_NOTE, Graded, PublicBoard, private_boards, public_boards
from grader.server.web.options import AppOptions

if TYPE_CHECKING:
    from grader.server.work import RunningJob

# what the coach's page lists: the newest submissions, the queued and running ones, Store.counts
Overview = tuple[list[SubmissionRow], list[SubmissionRow], tuple[int, int, int]]
# what the boards are kept under: graded count, newest graded id, private, removed teams, final choices
BoardKey = tuple[int, int, bool, frozenset[int], frozenset[tuple[tuple[str, str], int]]]

__all__ = ["COACH_PAGE_ROWS", "FINAL_STATES", "HERE", "ID_MAX", "OVERVIEW_TTL_S", "SHOWN_ANNOUNCEMENTS", "Overview",
           "Refused", "Site", "Workers"]

log = logging.getLogger(__name__)
T = TypeVar("T")

HERE = Path(__file__).parent
FINAL_STATES = ("done", "failed", "cancelled")
ID_MAX = 2**31 - 1  # the largest id a submission can have (the column's Integer on PostgreSQL)
# how long a server keeps the event's row (its title, challenges, cap, end and whether the private
# board is revealed) before reading it again: a Reveal on another server shows within this time
EVENT_TTL_S = 1.0
SHOWN_ANNOUNCEMENTS = 5  # the newest announcements on every page (the coach's settings page lists all)
COACH_PAGE_ROWS = 50  # submissions listed on the coach's page, newest first (all: /coach?all=1)
# how long the coach's page keeps what it lists (the newest submissions, the queue, the counts):
# a job's progress is written at most once a second (grader.server.work.worker.PROGRESS_EVERY_S), and
# ten coaches' tabs reloading at once read the database once a second, not ten times
OVERVIEW_TTL_S = 1.0


class Workers(Protocol):
    """What the pages use of the worker pool (:class:`grader.server.work.worker.WorkerPool`)."""

    def running(self) -> Sequence[RunningJob]:
        """The jobs this process's workers are grading now."""
        ...

    def wake(self) -> None:
        """Look at the queue now."""
        ...


class Refused(Exception):
    """A request refused: its HTTP status and the message shown on the error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def templates() -> jinja2.Environment:
    """The pages' jinja2 environment (``templates/`` beside this module, then the scorecards'
    ``grader/report/templates/`` for the parts both show, such as ``_pairs.html.j2``; autoescape,
    StrictUndefined). Filters: ``utc`` (a time as ``2026-12-07 18:00 UTC``), ``iso`` (ISO 8601 in
    UTC, for a ``datetime`` attribute), ``pct``, ``markdown`` (a brief or an answer as HTML:
    :func:`grader.report.markdown.markdown_html`, raw HTML off, images as links)."""
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(HERE / "templates"),
                                  jinja2.PackageLoader("grader.report", "templates")])
    env = jinja2.Environment(loader=loader, autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["utc"] = lambda d: "–" if d is None else d.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env.filters["iso"] = lambda d: d.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    env.filters["markdown"] = markdown_html
    return env


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def elapsed_s(sub: SubmissionRow) -> float | None:
    """Whole seconds since ``sub`` started running (to its end once finished); None before it
    starts. Whole: the end of a run is set by its kernel once it holds the hidden images
    (:mod:`grader.sandbox.gate`), so its precision is a channel out (at most log2 of the probe's limit in
    seconds, per submission)."""
    if sub.started_at is None:
        return None
    end = sub.finished_at or datetime.now(UTC)
    return float(round(max(0.0, (_aware(end) - _aware(sub.started_at)).total_seconds())))


@dataclass
class Site:
    """One served event: the store, the settings and the checks every route makes.

    Attributes:
        store: the server's state.
        settings: the project's challenges and data.
        event: the served event's name.
        options: how it is served.
        workers: the worker pool of this process, or None.
    """

    store: Store
    settings: Settings
    event: str
    options: AppOptions
    workers: Workers | None
    env: jinja2.Environment = field(default_factory=templates)
    _parsed: dict[int, SubmissionResult | None] = field(default_factory=dict)
    _boards: dict[tuple[object, ...], Any] = field(default_factory=dict)
    _html: dict[tuple[object, ...], Markup] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _values: dict[object, tuple[float, Any]] = field(default_factory=dict)  # Site._kept: (read at, value)
    _reading: dict[object, threading.Lock] = field(default_factory=dict)
    _teams: dict[int, TeamRow] = field(default_factory=dict)

    def event_row(self) -> EventRow:
        """The served event, read again from the store after :data:`EVENT_TTL_S` seconds (every page
        shows it: one read a second, not two queries a request) or after :meth:`forget_event`.

        Raises:
            DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        """
        return self._kept("event", EVENT_TTL_S, lambda: self.store.event(self.event))

    def overview(self, *, every: bool) -> Overview:
        """:meth:`Store.overview` of the event (the newest :data:`COACH_PAGE_ROWS`, or ``every``
        submission), read again after :data:`OVERVIEW_TTL_S` seconds or :meth:`forget_overview`.

        Raises:
            DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        """
        return self._kept(("overview", every), OVERVIEW_TTL_S,
                          lambda: self.store.overview(self.event, limit=None if every else COACH_PAGE_ROWS))

    def forget_overview(self) -> None:
        """Read the coach's page's rows again on its next view (this server changed one: Cancel, Re-grade)."""
        for every in (False, True):
            self._values.pop(("overview", every), None)

    def forget_event(self) -> None:
        """Read the event again on its next use (this server changed it: the coach's Reveal, the
        settings)."""
        self._values.pop("event", None)

    def announcements(self) -> list[AnnouncementRow]:
        """The newest :data:`SHOWN_ANNOUNCEMENTS` announcements, shown on every page, read again
        after :data:`EVENT_TTL_S` seconds (one read a second, not a query a request) or after
        :meth:`forget_announcements`.

        Raises:
            DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        """
        return self._kept("announcements", EVENT_TTL_S,
                          lambda: announcements_of(self.store, self.event, limit=SHOWN_ANNOUNCEMENTS))

    def forget_announcements(self) -> None:
        """Read the announcements again on their next use (this server posted or deleted one)."""
        self._values.pop("announcements", None)

    def forget_teams(self) -> None:
        """Read the count of teams and the removed ones again on their next use (this server added
        or removed a team)."""
        for key in ("team_count", "removed"):
            self._values.pop(key, None)

    def _kept(self, key: object, ttl_s: float, read: Callable[[], T]) -> T:
        """``read()``'s value kept under ``key`` for ``ttl_s`` seconds; one thread reads it again,
        those arriving meanwhile wait for it (fifty requests at once make one read, not fifty)."""
        kept = self._values.get(key)
        if kept is not None and time.monotonic() - kept[0] < ttl_s:
            return cast(T, kept[1])
        with self._reading.setdefault(key, threading.Lock()):
            kept = self._values.get(key)
            if kept is not None and time.monotonic() - kept[0] < ttl_s:
                return cast(T, kept[1])
            value = read()
            self._values[key] = (time.monotonic(), value)
            return value

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Template ``name`` rendered with the event, the session's CSRF token and role, the time
        (``now``, UTC: the countdown's), the announcements for a signed-in browser (none for
        others: the join pages are open to anyone) and ``context``."""
        session = request.session
        who = "coach" if session.get("coach") is True else ("team" if session.get("team") is not None else None)
        html = self.env.get_template(name).render(event=self.event_row(), csrf=session.get("csrf", ""),
                                                  who=who, no_split=NO_SPLIT_NOTE, now=datetime.now(UTC),
                                                  announcements=self.announcements() if who else [], **context)
        return HTMLResponse(html, status_code=status)

    def team_count(self) -> int:
        """How many teams the event has (removed ones left out), read again after
        :data:`EVENT_TTL_S` seconds (``grader event add-team`` and ``remove-team`` change it).

        Raises:
            DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        """
        return self._kept("team_count", EVENT_TTL_S, lambda: len(team_rows(self.store, self.event)))

    def removed_teams(self) -> frozenset[int]:
        """The ids of the event's removed teams, left off the boards and exports
        (:mod:`grader.server.store.teams`), read again after :data:`EVENT_TTL_S` seconds."""
        return self._kept("removed", EVENT_TTL_S, lambda: removed_team_ids(self.store, self.event))

    def known_team(self, request: Request) -> TeamRow | None:
        """The session's team if this process has read it already (no query: callable on the
        event loop), else None."""
        team_id = request.session.get("team")
        return self._teams.get(team_id) if isinstance(team_id, int) else None

    def team_of(self, request: Request) -> TeamRow:
        """The session's team (a team's row never changes once created: each is read once per process).

        Raises:
            Refused: 403, the session is no team's (no session, or the coach's).
        """
        team_id = request.session.get("team")
        team = self._teams.get(team_id) if isinstance(team_id, int) else None
        if team is None and isinstance(team_id, int):
            team = self.store.team(self.event, team_id)
            if team is not None:
                self._teams[team_id] = team
        if team is None:
            raise Refused(403, "You are not signed in as a team: open your team's join link.")
        return team

    def team_or_coach(self, request: Request) -> None:
        """Raises: Refused: 403, the session is neither a team's nor the coach's."""
        if request.session.get("coach") is not True:
            self.team_of(request)

    def coach_of(self, request: Request) -> None:
        """Raises: Refused: 403, the session is not the coach's (a team's, or none)."""
        if request.session.get("coach") is not True:
            raise Refused(403, "Coach pages need the coach's join link.")

    def check_csrf(self, request: Request, sent: object) -> None:
        """Check a form's CSRF token against the session's (:func:`hmac.compare_digest`).

        Raises:
            Refused: 403, the token is missing or another.
        """
        expected = request.session.get("csrf")
        if not (isinstance(sent, str) and isinstance(expected, str) and expected
                and hmac.compare_digest(sent.encode(), expected.encode())):
            raise Refused(403, "This form did not come from this site or has expired: reload the page and try again.")

    def own(self, request: Request, submission_id: int) -> SubmissionRow:
        """The session team's submission ``submission_id``.

        Raises:
            Refused: 403 without a team session; 404 when it is no submission of this team (another
                team's is not told apart from one that does not exist).
        """
        team = self.team_of(request)
        if not 0 < submission_id <= ID_MAX:  # malformed: no query (too large for the column), 404
            raise Refused(404, "No such submission.")
        sub = self.store.submission(submission_id)
        if sub is None or sub.event != self.event or sub.team_id != team.id:
            raise Refused(404, "No such submission.")
        return sub

    def event_submission(self, submission_id: int) -> SubmissionRow:
        """Submission ``submission_id`` of this event. Raises: Refused: 404, there is none."""
        if not 0 < submission_id <= ID_MAX:
            raise Refused(404, "No such submission.")
        sub = self.store.submission(submission_id)
        if sub is None or sub.event != self.event:
            raise Refused(404, "No such submission.")
        return sub

    def graded(self) -> list[Graded]:
        """The event's graded submissions with their results (parsed once each; a stored result that
        does not validate is logged and left out). Practice checks are left out here, the one place
        the boards, the cohort, the exports and the similar pairs gather results from: they are
        scored on public data and are no hand-in."""
        out = []
        removed = self.removed_teams()
        for team, sub, res in self.store.results(self.event, known=set(self._parsed)):
            if sub.practice:
                self._parsed.setdefault(sub.id, None)  # known: its result is not read again
            if team.id in removed or sub.practice:
                continue
            if res is not None and sub.id not in self._parsed:  # a stored result never changes: parsed once
                self._parsed[sub.id] = self._parse(sub.id, res.result_json)
            result = self._parsed.get(sub.id)
            if result is not None:
                out.append(Graded(team=team.name, submission_id=sub.id, created=sub.created, result=result))
        return out

    def graded_of(self, subs: Sequence[SubmissionRow]) -> list[Graded]:
        """:meth:`graded` restricted to ``subs`` (a team's own submissions, as its page has just read
        them), oldest first: only the results not parsed yet by this process are read (one query), so
        that a team's page does not read the event's thousands of results, nor its own twenty again."""
        done = sorted((s for s in subs if s.state == "done" and not s.practice), key=lambda s: s.id)
        missing = [s.id for s in done if s.id not in self._parsed]
        for sub_id, text in self.store.result_jsons(missing).items():
            self._parsed.setdefault(sub_id, self._parse(sub_id, text))
        return [Graded(team=s.team_name, submission_id=s.id, created=s.created, result=result)
                for s in done if (result := self._parsed.get(s.id)) is not None]

    def _parse(self, sub_id: int, text: str) -> SubmissionResult | None:
        """A stored result, validated; None (logged) when it does not validate."""
        try:
            return SubmissionResult.model_validate_json(text)
        except ValueError:
            log.warning("submission %d: its stored result does not validate; left off the boards", sub_id)
            return None

    def boards(self, *, private: bool, counts: tuple[int, int, int] | None = None) -> tuple[list[PublicBoard],
                                                                                         list[Board]]:
        """The event's public boards and, with ``private``, its private ones
        (:func:`grader.server.web.boards.public_boards`, :func:`~grader.server.web.boards.private_boards`),
        computed again only when a result was added (:meth:`Store.counts`; ``counts`` when the
        caller has just read them)."""
        if counts is None:
            return self._boards_at(self._board_key(private))
        return self._boards_at((counts[1], counts[2], private, self.removed_teams(), self._finals(private)))

    def board_sections(self, *, private: bool, coach_links: bool, places: int) -> Markup:
        """The leaderboard page's boards as HTML (``_board_sections.html.j2``: the private boards
        when ``private``, then the public ones), rendered once per set of results and view: a
        board of 200 teams is the page's whole cost."""
        key = self._board_key(private)
        view = (*key, coach_links, places)
        with self._lock:
            found = self._html.get(view)
        if found is None:
            public, private_boards = self._boards_at(key)
            found = Markup(self.env.get_template("_board_sections.html.j2").render(
                public=public, private=private_boards, coach_links=coach_links, places=places, no_split=NO_SPLIT_NOTE))
            with self._lock:
                self._html = {k: v for k, v in self._html.items() if k[:2] == key[:2]}  # older sets are stale
                self._html[view] = found
        return found

    def _board_key(self, private: bool) -> BoardKey:
        _, graded, newest = self.store.counts(self.event)  # one aggregate query tells a new result
        # a team removed: the boards without it; a team's final choice: the private board with it
        return graded, newest, private, self.removed_teams(), self._finals(private)

    def _finals(self, private: bool) -> frozenset[tuple[tuple[str, str], int]]:
        """The teams' final choices (:func:`grader.server.store.finals_of`, one query) for the private
        boards; none where only the public ones are drawn."""
        return frozenset(finals_of(self.store, self.event).items()) if private else frozenset()

    def _boards_at(self, key: BoardKey) -> tuple[list[PublicBoard], list[Board]]:
        with self._lock:
            if key in self._boards:
                return self._boards[key]  # type: ignore[no-any-return]
        done = self.graded()
        challenges = self.event_row().challenges
        eta = self.options.eta
        found = (public_boards(done, challenges, eta=eta),
                 private_boards(done, challenges, eta=eta, finals=dict(key[4])) if key[2] else [])
        with self._lock:
            self._boards = {k: v for k, v in self._boards.items() if k[:2] == key[:2]}  # older sets are stale
            self._boards[key] = found
        return found

    def statuses(self, subs: Sequence[SubmissionRow]) -> list[tuple[SubmissionRow, dict[str, Any]]]:
        """Each of ``subs`` with what the pages show of its progress (also the JSON of its status
        and events); the queue places of the queued ones read in one query."""
        places = self.store.queue_positions([s.id for s in subs if s.state == "queued"])
        return [(s, _status(s, places.get(s.id))) for s in subs]

    def status_of(self, sub: SubmissionRow) -> dict[str, Any]:
        """:meth:`statuses` of ``sub`` alone."""
        return self.statuses([sub])[0][1]


def _status(sub: SubmissionRow, position: int | None) -> dict[str, Any]:
    return {"id": sub.id, "state": sub.state, "progress": sub.progress,
            "queue_position": position, "elapsed_s": elapsed_s(sub),
            "verdict": sub.verdict, "score": sub.score, "max_score": sub.max_score,
            "error": sub.error, "final": sub.state in FINAL_STATES}
