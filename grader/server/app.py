"""The event server's pages: an ASGI app (FastAPI) over the :class:`~grader.server.store.Store`.

Team pages (a team session): ``/`` (briefs, downloads, the upload form, the team's submissions
with live progress), ``POST /submit``, ``/submissions/{id}/events`` (Server-Sent Events, the
WHATWG HTML standard's ``text/event-stream``) and ``/status`` (JSON, the polling fallback),
``/submissions/{id}/scorecard`` (the team's own only: 404 otherwise), ``/leaderboard``. Coach
pages under ``/coach`` (:mod:`grader.server.coach`). Join links ``/join/{token}`` and
``/coach/join/{token}`` put the team or coach in a signed session cookie (Starlette's
``SessionMiddleware``: itsdangerous-signed with the event's secret, HttpOnly, SameSite=lax,
Secure over https).

Security, on every route: the session's team or coach is checked; every form POST carries the
session's CSRF token (:meth:`Site.check_csrf`); every response carries
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (join tokens never leak
in a Referer), ``X-Frame-Options: DENY`` and a Content-Security-Policy: scripts from this site
only on pages, none on scorecards (:mod:`grader.server.pages`). Failed joins are slowed
(:attr:`AppOptions.join_delay_s`).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import StreamingResponse
from starlette.staticfiles import StaticFiles

from grader.errors import GraderError, UsageError
from grader.export import public_data_zip
from grader.report import render_scorecard
from grader.scorecard import SubmissionResult
from grader.server.bundle import MAX_FILES, UploadedFile, bundle
from grader.server.coach import add_coach_routes
from grader.server.db import DatabaseUnavailable
from grader.server.ladder import decimals
from grader.server.pages import (
    FINAL_STATES,
    HERE,
    PAGE_CSP,
    SCORECARD_CSP,
    AppOptions,
    Refused,
    SecurityHeaders,
    Site,
    Workers,
)
from grader.server.store import CapReached, Store, SubmissionRow, TeamRow, UploadRefused
from grader.settings import Settings
from grader.unzip import size_text

__all__ = ["PAGE_CSP", "SCORECARD_CSP", "AppOptions", "create_app"]

log = logging.getLogger(__name__)

UPLOAD_THREADS = 100  # uploads stored and committed at once (their own threads: see create_app)
_SIZE_FIX = "Fix: leave datasets and checkpoints out; the grader gives the data in DATA_DIR."


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
    event_name = site.event
    shown_event = store.event(event_name)  # its title, for the page shown while the database is away
    app = FastAPI(title="grader event server", docs_url=None, redoc_url=None, openapi_url=None)
    # uploads have threads of their own: fifty at once, each waiting for its fsync and its batch's
    # commit, would hold every token of AnyIO's default limiter (40) and make the others, and
    # the pages, wait for one; an upload's thread holds a database connection only while it
    # leads a batch (grader.server.group), so they do not add to the pool's use
    uploads = anyio.CapacityLimiter(UPLOAD_THREADS)
    app.add_middleware(SessionMiddleware, secret_key=store.session_secret(event_name), session_cookie="grader_session",
                       max_age=60 * 60 * 24 * 30, same_site="lax", https_only=opts.https)
    app.add_middleware(SecurityHeaders)
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

    # ------------------------------------------------------------ joining

    def login(request: Request, **who: Any) -> RedirectResponse:
        request.session.clear()
        request.session.update(who)
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse("/coach" if who.get("coach") else "/", status_code=303)

    @app.get("/join/{token}")
    async def join(request: Request, token: str) -> Response:
        team = await run_in_threadpool(store.team_for_token, event_name, token)
        if team is None:
            await asyncio.sleep(opts.join_delay_s)
            raise Refused(403, "This join link is not valid. Ask your coach for your team's link.")
        return login(request, team=team.id)

    @app.get("/coach/join/{token}")
    async def coach_join(request: Request, token: str) -> Response:
        if not await run_in_threadpool(store.coach_token_ok, event_name, token):
            await asyncio.sleep(opts.join_delay_s)
            raise Refused(403, "This join link is not valid.")
        return login(request, coach=True)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        site.check_csrf(request, (await request.form()).get("csrf"))
        request.session.clear()
        return site.page(request, "error.html.j2", 200,
                         message="You are signed out. Your join link signs you in again.")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    # ------------------------------------------------------------ team pages

    def home(request: Request, *, message: str = "", status: int = 200, chosen: str = "") -> HTMLResponse:
        team = site.team_of(request)
        event = site.event_row()
        briefs = []
        for cid in event.challenges:
            folder = settings.project_dir / "challenges" / cid
            readme = folder / "README.md"
            briefs.append({"id": cid, "brief": readme.read_text(encoding="utf-8", errors="replace")
                           if readme.is_file() else "", "starter": (folder / "starter.ipynb").is_file()})
        subs = site.statuses(store.submissions(event_name, team_id=team.id))
        return site.page(request, "home.html.j2", status, team=team, briefs=briefs, submissions=subs,
                         left=store.submissions_left_today(event_name, team.id), message=message,
                         flash=request.session.pop("flash", ""), chosen=chosen or event.challenges[0],
                         max_upload=size_text(opts.max_upload_bytes))

    @app.get("/")
    def team_home(request: Request) -> Response:
        if request.session.get("coach") is True:
            return RedirectResponse("/coach", status_code=303)
        return home(request)

    def queue(team: TeamRow, challenge: str, files: list[UploadedFile]) -> SubmissionRow:
        event = site.event_row()
        if challenge not in event.challenges:
            raise UsageError(f"{challenge!r} is not a challenge of this event; choose one of "
                             f"{', '.join(event.challenges)}")
        packed = bundle(files, challenge=challenge, challenges=event.challenges, max_bytes=opts.max_upload_bytes)
        if packed.problem is not None:
            raise UsageError(packed.problem)
        upload = store.store_upload(io.BytesIO(packed.data), filename=packed.filename,
                                    max_bytes=opts.max_upload_bytes, record=False)  # committed with it
        return store.submit(event_name, team.id, challenge=challenge, upload=upload)

    def too_big(total: int) -> str:
        return f"The upload holds {size_text(total)}, over the limit of {size_text(opts.max_upload_bytes)}. {_SIZE_FIX}"

    @app.post("/submit")
    async def submit(request: Request) -> Response:
        known = site.known_team(request)
        team = known if known is not None else await run_in_threadpool(site.team_of, request)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > opts.max_upload_bytes + (1 << 20):  # refused before reading it
            return await run_in_threadpool(home, request, status=413, message=too_big(int(length)))
        try:
            form = await request.form(max_files=MAX_FILES + 1, max_fields=20)
        except MultiPartException as err:
            return await run_in_threadpool(home, request, status=400, message=f"The upload could not be read: {err}")
        site.check_csrf(request, form.get("csrf"))
        challenge = str(form.get("challenge") or "")
        items = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        total = sum(f.size or 0 for f in items)
        if total > opts.max_upload_bytes:
            return await run_in_threadpool(home, request, status=413, chosen=challenge, message=too_big(total))
        files = [UploadedFile(filename=f.filename or "", data=await f.read()) for f in items]
        await form.close()
        try:
            sub = await anyio.to_thread.run_sync(queue, team, challenge, files, limiter=uploads)
        except CapReached as err:
            return await run_in_threadpool(home, request, status=429, message=str(err), chosen=challenge)
        except UploadRefused as err:
            return await run_in_threadpool(home, request, status=507 if err.disk_full else 413, message=str(err),
                                           chosen=challenge)
        except UsageError as err:
            return await run_in_threadpool(home, request, status=400, message=str(err), chosen=challenge)
        if workers is not None:
            workers.wake()
        request.session["flash"] = f"Submission #{sub.id} ({sub.filename}) is queued."
        return RedirectResponse("/", status_code=303)

    @app.get("/submissions/{submission_id}/status")
    def status(request: Request, submission_id: int) -> JSONResponse:
        return JSONResponse(site.status_of(site.own(request, submission_id)))

    @app.get("/submissions/{submission_id}/events")
    async def events(request: Request, submission_id: int) -> StreamingResponse:
        await run_in_threadpool(site.own, request, submission_id)

        async def stream() -> AsyncIterator[str]:
            last = ""
            while True:
                try:
                    sub = await run_in_threadpool(store.submission, submission_id)
                    data = "" if sub is None else json.dumps(await run_in_threadpool(site.status_of, sub))
                except DatabaseUnavailable:  # away for a moment (a restart): the stream waits for it
                    if await request.is_disconnected():
                        return
                    await asyncio.sleep(opts.poll_s)
                    continue
                if sub is None:
                    return
                if data != last:
                    yield f"event: progress\ndata: {data}\n\n"
                    last = data
                if sub.state in FINAL_STATES:
                    yield f"event: done\ndata: {data}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(opts.poll_s)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/submissions/{submission_id}/scorecard")
    def scorecard(request: Request, submission_id: int) -> HTMLResponse:
        sub = site.own(request, submission_id)
        result = store.result(sub.id)
        if result is None:
            raise Refused(404, "This submission has no scorecard yet.")
        # rendered when the job finished (with the loss plot and thumbnails, which result.json
        # does not keep); a result stored before that column is rendered again from its JSON
        html = result.team_scorecard_html or render_scorecard(
            SubmissionResult.model_validate_json(result.result_json), audience="team")
        return HTMLResponse(html, headers={"Content-Security-Policy": SCORECARD_CSP})

    def challenge_of(request: Request, challenge: str) -> str:
        site.team_or_coach(request)
        if challenge not in site.event_row().challenges:
            raise Refused(404, "No such challenge in this event.")
        return challenge

    @app.get("/challenges/{challenge}/starter.ipynb")
    def starter(request: Request, challenge: str) -> Response:
        path = settings.project_dir / "challenges" / challenge_of(request, challenge) / "starter.ipynb"
        if not path.is_file():
            raise Refused(404, "This challenge's starter notebook is not available.")
        return FileResponse(path, filename=f"{challenge}-starter.ipynb", media_type="application/x-ipynb+json")

    @app.get("/challenges/{challenge}/public-data.zip")
    def public_data(request: Request, challenge: str) -> Response:
        challenge_of(request, challenge)
        try:  # built once, on the first download, and cached (grader.export)
            path = public_data_zip(settings, challenge)
        except (GraderError, OSError) as err:
            log.warning("public data of %s not available: %s", challenge, err)
            raise Refused(404, "This challenge's public data is not available.") from err
        return FileResponse(path, filename=f"{challenge}-public-data.zip", media_type="application/zip")

    @app.get("/leaderboard")
    def leaderboard(request: Request) -> HTMLResponse:
        site.team_or_coach(request)
        boards = site.board_sections(private=site.event_row().revealed, coach_links=False,
                                     places=decimals(opts.eta) - 2)
        return site.page(request, "leaderboard.html.j2", boards=boards, coach_links=False)

    add_coach_routes(app, site)
    return app
