"""The event server's pages: an ASGI app (FastAPI) over the :class:`~grader.server.store.store.Store`.

:func:`create_app` builds it: the routes per audience are in :mod:`grader.server.web.routes`: a
team's pages (:mod:`~grader.server.web.routes.team`: ``/``, ``POST /submit``, its submissions' live
progress, status and scorecards; :mod:`~grader.server.web.routes.history`: its final submissions, the
downloads of what it sent and of the run's log), the pages a team and the coach share
(:mod:`~grader.server.web.routes.public`: ``/leaderboard``, the challenges' downloads), and the
coach's pages under ``/coach`` (:mod:`~grader.server.web.routes.coach`; the grading of written answers:
:mod:`~grader.server.web.routes.grading`). Join links ``/join/{token}``
and ``/coach/join/{token}`` show a page whose button signs the team or coach in: a session kept by
the server, its random id in an HttpOnly SameSite=Lax cookie, Secure behind an HTTPS proxy
(:mod:`grader.server.web.signin`, :mod:`grader.server.store.sessions`). Here too: the error pages
(a refusal, 404, the database away: 503 or 507).

Security, on every route: the session's team or coach is checked; every form POST carries the
session's CSRF token (:meth:`Site.check_csrf`); every response carries
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (join tokens never leak
in a Referer), ``X-Frame-Options: DENY`` and a Content-Security-Policy: scripts from this site
only on pages, none on scorecards (:mod:`grader.server.web.pages`). Failed joins are slowed
(:attr:`AppOptions.join_delay_s`).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from grader.core import Settings, UsageError
from grader.server.store import DatabaseUnavailable, Sessions, Store
from grader.server.web.headers import INTERNAL_ERROR, SecurityHeaders
from grader.server.web.ladder import decimals
from grader.server.web.options import AppOptions
from grader.server.web.pages import HERE, Refused, Site, Workers
from grader.server.web.routes import (
    add_coach_routes,
    add_export_routes,
    add_grading_routes,
    add_history_routes,
    add_public_routes,
    add_team_routes,
)
from grader.server.web.signin import add_sessions

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _event_name(store: Store, name: str | None) -> str:
    if name is not None:
        return store.event(name).name
    names = [e.name for e in store.events()]
    if len(names) != 1:
        raise UsageError(f"name the event to serve: the state folder holds {len(names)} events"
                         + (f" ({', '.join(names)})" if names else ""))
    return names[0]


def create_app(store: Store, settings: Settings, *, workers: Workers | None,
               options: AppOptions | None = None) -> FastAPI:
    """The app serving one event of ``store``.

    Args:
        store: the server's state.
        settings: where the challenges (briefs, starter notebooks) and the data are.
        workers: the worker pool grading in this process (woken when a job is queued; its
            running jobs are shown to the coach), or None.
        options: what to serve and how (:class:`AppOptions`).

    Raises:
        UsageError: the event does not exist, or none was named and the store holds not exactly one.
        ValueError: the Ladder margin ``options.eta`` is not positive.
    """
    opts = options or AppOptions()
    decimals(opts.eta)
    site = Site(store=store, settings=settings, event=_event_name(store, opts.event), options=opts, workers=workers)
    shown_event = store.event(site.event)  # its title, for the page shown while the database is away
    app = FastAPI(title="grader event server", docs_url=None, redoc_url=None, openapi_url=None)
    # the session cookie, /join, /coach/join, /logout (grader.server.web.signin)
    add_sessions(app, site, Sessions(store))
    app.add_middleware(SecurityHeaders, error_page=lambda: site.env.get_template("error.html.j2").render(
        event=shown_event, csrf="", who=None, message=INTERNAL_ERROR))  # its 500 page, without the database
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # ------------------------------------------------------------ errors

    @app.exception_handler(Refused)
    async def refused(request: Request, err: Refused) -> HTMLResponse:
        return await run_in_threadpool(site.page, request, "error.html.j2", err.status, message=err.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> HTMLResponse:
        message = "No such page." if err.status_code == 404 else str(err.detail)
        return await run_in_threadpool(site.page, request, "error.html.j2", err.status_code, message=message)

    @app.exception_handler(DatabaseUnavailable)
    async def database_away(request: Request, err: DatabaseUnavailable) -> Response:
        # 503 with Retry-After (RFC 9110, 15.6.4), or 507 Insufficient Storage (RFC 4918): a page
        # rendered without the database, or JSON for the status poll; never a traceback
        log.warning("%s %s: %s", request.method, request.url.path, err.message)
        status = 507 if err.disk_full else 503
        message = ("The server's disk is full: nothing was stored. Try again later, or tell the coach."
                   if err.disk_full else "The database is unavailable: nothing was stored. Try again in a moment.")
        headers = {"Retry-After": "5", "Cache-Control": "no-store"}
        if request.url.path.endswith("/status"):
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        html = site.env.get_template("error.html.j2").render(event=shown_event, csrf="", who=None, message=message)
        return HTMLResponse(html, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_path(request: Request, err: RequestValidationError) -> HTMLResponse:
        return await run_in_threadpool(site.page, request, "error.html.j2", 404, message="No such page.")

    # ------------------------------------------------------------ the pages: grader.server.web.routes

    add_team_routes(app, site)
    add_history_routes(app, site)
    add_public_routes(app, site)
    add_coach_routes(app, site)
    add_export_routes(app, site)
    add_grading_routes(app, site)  # its Marks: app.state.marks (the team's scorecards, the exports)
    return app
