"""The coach's pages under ``/coach``: every team's submissions and scorecards, the queue and the
running jobs with Cancel and Re-grade, the leaderboards (public and private) with the Reveal
toggle, the pass rate per criterion and the similar pairs (:mod:`grader.server.web.similar`); the
roster, the settings and the announcements are in :mod:`grader.server.web.routes.roster`, the
cohort's exports in :mod:`grader.server.web.routes.exports`. Every route refuses a team session
and no session with 403; every form checks the CSRF token.

The coach's page is live: ``/coach/events`` (Server-Sent Events, the WHATWG HTML standard's
``text/event-stream``) sends an ``overview`` event whenever what the page shows changes (the
counts, the queue, a running job's progress, a new result, the event's settings), and the page's
script (``static/console.js``) then fetches ``/coach/live``, the page's changing part alone, and
puts it in place: no reload, so no form is ever sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from grader.server.store import DatabaseUnavailable, SubmissionRow
from grader.server.web.headers import SCORECARD_CSP
from grader.server.web.ladder import decimals
from grader.server.web.marks import marks_of
from grader.server.web.pages import Refused, Site
from grader.server.web.routes.roster import add_roster_routes, coach_form
from grader.server.web.similar import similar

if TYPE_CHECKING:
    from grader.server.work import RunningJob

__all__ = ["RETRY_MS", "STREAM_S", "add_coach_routes"]

log = logging.getLogger(__name__)

# a coach's event stream ends after this many seconds and the browser opens it again (after
# RETRY_MS): a browser signed out meanwhile (its link rotated) is refused then
STREAM_S = 60.0
RETRY_MS = 2000


def add_coach_routes(app: FastAPI, site: Site) -> None:
    """Add the ``/coach`` pages of ``site`` to ``app``."""
    store, event, eta = site.store, site.event, site.options.eta
    add_roster_routes(app, site)

    def overview(every: bool) -> dict[str, Any]:
        """What the coach's page's changing part shows (``_coach_live.html.j2``), with its version."""
        # newest first, 50 of them: 4,000 rows are 3 MB of HTML
        listed, active, counts = site.overview(every=every)  # at most once a second
        # with the coach's grades of written answers: those not graded yet are counted as awaiting
        marks = marks_of(app)
        rates = [(board.challenge, marks.pass_rates(board)) for board in site.boards(private=True, counts=counts)[1]]
        running = None if site.workers is None else site.workers.running()
        return {"team_count": site.team_count(), "shown": len(listed), "total": counts[0], "graded": counts[1],
                "submissions": site.statuses(listed), "active": site.statuses(active), "running": running,
                "rates": rates, "every": every, "version": version_of(active, counts, running or [])}

    def version_of(active: list[SubmissionRow], counts: tuple[int, int, int], running: Sequence[RunningJob]) -> str:
        """A version of what the coach's page's changing part shows: it changes whenever that does
        (the elapsed seconds aside), with the event's settings and its teams."""
        ev = site.event_row()
        seen = (counts, site.team_count(), [(s.id, s.state, s.progress, s.cancel_requested) for s in active],
                [(j.submission_id, j.progress) for j in running],
                (ev.cap_per_day, str(ev.ends_at), ev.revealed, ev.practice_per_day))
        return hashlib.sha256(repr(seen).encode()).hexdigest()[:16]

    def live_state(every: bool) -> dict[str, Any]:
        """The counts of the coach's page and the version of its changing part (:func:`version_of`)."""
        _, active, counts = site.overview(every=every)
        running = [] if site.workers is None else site.workers.running()
        states = [s.state for s in active]
        return {"version": version_of(active, counts, running), "submissions": counts[0], "graded": counts[1],
                "queued": states.count("queued"), "running": states.count("running")}

    @app.get("/coach")
    def coach(request: Request, all: int = 0) -> HTMLResponse:  # noqa: A002  (the query's name: ?all=1)
        site.coach_of(request)
        return site.page(request, "coach.html.j2", **overview(bool(all)))

    @app.get("/coach/live")
    def coach_live(request: Request, all: int = 0) -> HTMLResponse:  # noqa: A002  (as /coach's)
        """The coach's page's changing part alone, for its script to put in place."""
        site.coach_of(request)
        return site.page(request, "_coach_live.html.j2", **overview(bool(all)))

    @app.get("/coach/events")
    async def coach_events(request: Request, all: int = 0) -> StreamingResponse:  # noqa: A002  (as /coach's)
        """An ``overview`` event (JSON: :func:`live_state`) at once and whenever it changes, read every
        ``poll_s`` seconds (the overview itself at most once a second for every coach's tab
        together: :meth:`Site.overview`); the stream ends after :data:`STREAM_S` seconds."""
        await run_in_threadpool(site.coach_of, request)

        async def stream() -> AsyncIterator[str]:
            yield f"retry: {RETRY_MS}\n\n"
            last, until = "", time.monotonic() + STREAM_S
            while time.monotonic() < until:
                try:
                    data = json.dumps(await run_in_threadpool(live_state, bool(all)))
                except DatabaseUnavailable:  # away for a moment (a restart): the stream waits for it
                    data = last
                if data != last:
                    yield f"event: overview\ndata: {data}\n\n"
                    last = data
                if await request.is_disconnected():
                    return
                await asyncio.sleep(site.options.poll_s)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/coach/similar")
    def coach_similar(request: Request) -> HTMLResponse:
        site.coach_of(request)
        pairs, compared = similar(site)
        return site.page(request, "similar.html.j2", pairs=pairs, compared=compared)

    @app.get("/coach/leaderboard")
    def coach_leaderboard(request: Request) -> HTMLResponse:
        site.coach_of(request)
        boards = site.board_sections(private=True, coach_links=True, places=decimals(eta) - 2)
        return site.page(request, "leaderboard.html.j2", boards=boards, coach_links=True)

    @app.get("/coach/submissions/{submission_id}/scorecard")
    def coach_scorecard(request: Request, submission_id: int) -> HTMLResponse:
        site.coach_of(request)
        sub = site.event_submission(submission_id)
        result = store.result(submission_id)
        if result is None:
            raise Refused(404, "This submission has no scorecard.")
        # with the coach's grades of its written answers, where it has any (grader.server.web.marks)
        html = marks_of(request).coach_card(sub) or result.scorecard_html
        return HTMLResponse(html, headers={"Content-Security-Policy": SCORECARD_CSP})

    @app.post("/coach/submissions/{submission_id}/cancel")
    async def cancel(request: Request, submission_id: int) -> Response:
        await coach_form(site, request)
        await run_in_threadpool(site.event_submission, submission_id)
        await run_in_threadpool(store.cancel, submission_id)
        site.forget_overview()
        return RedirectResponse("/coach", status_code=303)

    @app.post("/coach/submissions/{submission_id}/regrade")
    async def regrade(request: Request, submission_id: int) -> Response:
        await coach_form(site, request)
        await run_in_threadpool(site.event_submission, submission_id)
        await run_in_threadpool(store.regrade, submission_id)
        site.forget_overview()
        marks_of(request).forget()  # the re-grade has the coach's grades of the one it re-grades
        if site.workers is not None:
            site.workers.wake()
        return RedirectResponse("/coach", status_code=303)

    @app.post("/coach/reveal")
    async def reveal(request: Request) -> Response:
        form = await coach_form(site, request)
        await run_in_threadpool(store.set_revealed, event, form.get("revealed") == "1")
        site.forget_event()
        return RedirectResponse("/coach/leaderboard", status_code=303)
