"""The coach's pages under ``/coach``: every team's submissions and scorecards, the queue and the
running jobs with Cancel and Re-grade, the leaderboards (public and private) with the Reveal
toggle, the pass rate per criterion and the similar pairs (:mod:`grader.server.web.similar`); the
cohort's exports are in :mod:`grader.server.web.routes.exports`. Every route refuses a
team session and no session with 403; every form checks the CSRF token.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from grader.server.web.headers import SCORECARD_CSP
from grader.server.web.ladder import decimals
from grader.server.web.pages import Refused, Site
from grader.server.web.similar import similar

__all__ = ["add_coach_routes"]

log = logging.getLogger(__name__)


def add_coach_routes(app: FastAPI, site: Site) -> None:
    """Add the ``/coach`` pages of ``site`` to ``app``."""
    store, event, eta = site.store, site.event, site.options.eta

    @app.get("/coach")
    def coach(request: Request, all: int = 0) -> HTMLResponse:  # noqa: A002  (the query's name: ?all=1)
        site.coach_of(request)
        # newest first, 50 of them: 4,000 rows are 3 MB of HTML
        listed, active, counts = site.overview(every=bool(all))  # at most once a second
        rates = [(board.challenge, board.rates) for board in site.boards(private=True, counts=counts)[1]]
        return site.page(request, "coach.html.j2", team_count=site.team_count(), shown=len(listed),
                         total=counts[0], submissions=site.statuses(listed), active=site.statuses(active),
                         running=None if site.workers is None else site.workers.running(), rates=rates)

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
        site.event_submission(submission_id)
        result = store.result(submission_id)
        if result is None:
            raise Refused(404, "This submission has no scorecard.")
        return HTMLResponse(result.scorecard_html, headers={"Content-Security-Policy": SCORECARD_CSP})

    async def coach_form(request: Request) -> dict[str, str]:
        await run_in_threadpool(site.coach_of, request)
        form = await request.form()
        site.check_csrf(request, form.get("csrf"))
        return {k: v for k, v in form.items() if isinstance(v, str)}

    @app.post("/coach/submissions/{submission_id}/cancel")
    async def cancel(request: Request, submission_id: int) -> Response:
        await coach_form(request)
        await run_in_threadpool(site.event_submission, submission_id)
        await run_in_threadpool(store.cancel, submission_id)
        site.forget_overview()
        return RedirectResponse("/coach", status_code=303)

    @app.post("/coach/submissions/{submission_id}/regrade")
    async def regrade(request: Request, submission_id: int) -> Response:
        await coach_form(request)
        await run_in_threadpool(site.event_submission, submission_id)
        await run_in_threadpool(store.regrade, submission_id)
        site.forget_overview()
        if site.workers is not None:
            site.workers.wake()
        return RedirectResponse("/coach", status_code=303)

    @app.post("/coach/reveal")
    async def reveal(request: Request) -> Response:
        form = await coach_form(request)
        await run_in_threadpool(store.set_revealed, event, form.get("revealed") == "1")
        site.forget_event()
        return RedirectResponse("/coach/leaderboard", status_code=303)
