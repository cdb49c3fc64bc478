"""A team's pages: ``/`` (briefs, downloads, the upload form, the team's submissions with live
progress), ``POST /submit`` (the upload, or a practice check: :func:`add_team_routes`'s ``submit``),
``/submissions/{id}/events`` (Server-Sent Events, the
WHATWG HTML standard's ``text/event-stream``) and ``/submissions/{id}/status`` (JSON, the polling
fallback), ``/submissions/{id}/scorecard`` (the team's own only: 404 otherwise). Each needs the
team's session; a coach's session asking for ``/`` is sent to ``/coach``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse

from grader.core import (
    GraderError,
    UsageError,
    challenge_folder,
    challenge_packages,
    environment_lines,
    load_challenge,
)
from grader.intake import size_text
from grader.report import markdown_html, render_scorecard, served, unpack, with_board
from grader.score import SubmissionResult
from grader.server.store import (
    CapReached,
    DatabaseUnavailable,
    SubmissionRow,
    TeamRow,
    UploadRefused,
    left_today,
    refusal,
)
from grader.server.web.answers import released_grades
from grader.server.web.boards import board_steps
from grader.server.web.bundle import MAX_FILES, bundle
from grader.server.web.flash import read_flash, refusal_flash, wants_page
from grader.server.web.headers import SCORECARD_CSP
from grader.server.web.marks import marks_of
from grader.server.web.pages import FINAL_STATES, Refused, Site
from grader.server.web.receive import (
    FORM_SLACK,
    FormRefused,
    ReceivedForm,
    Slots,
    TooLarge,
    clear_stale,
    drain,
    receive_form,
)
from grader.server.web.routes.history import team_numbers

__all__ = ["BUSY_RETRY_S", "UPLOAD_THREADS", "add_team_routes"]

UPLOAD_THREADS = 100  # uploads stored and committed at once (their own threads: see add_team_routes)
_SIZE_FIX = "Fix: leave datasets and checkpoints out; the grader gives the data in DATA_DIR."
BUSY_RETRY_S = 10  # Retry-After of an upload refused because max_uploads are in flight
_BUSY = ("The server is receiving many uploads at this moment: yours was not stored. "
         f"Try again in {BUSY_RETRY_S} seconds (upload it again).")
_TEAM_BUSY = ("Your team is sending other uploads at this moment: this one was not stored. Wait for them to "
              f"finish, then try again (in {BUSY_RETRY_S} seconds or more).")


def add_team_routes(app: FastAPI, site: Site) -> None:
    """Add the team's pages of ``site`` to ``app``.

    Raises:
        OSError: the folder receiving the uploads (``uploads/.incoming`` in the state folder)
            cannot be made.
    """
    store, settings, opts, event_name, workers = site.store, site.settings, site.options, site.event, site.workers
    # uploads have threads of their own: fifty at once, each waiting for its fsync and its batch's
    # commit, would hold every token of AnyIO's default limiter (40) and make the others, and
    # the pages, wait for one; an upload's thread holds a database connection only while it
    # leads a batch (grader.server.store.group), so they do not add to the pool's use
    uploads = anyio.CapacityLimiter(UPLOAD_THREADS)
    # uploads in flight, each received into its own folder on the uploads' disk (grader.server.web.receive)
    slots = Slots(opts.max_uploads, opts.upload_bytes_in_flight, per_team=opts.uploads_per_team)
    incoming = store.state_dir / "uploads" / ".incoming"
    incoming.mkdir(exist_ok=True)
    clear_stale(incoming)

    @functools.cache
    def _limits(cid: str) -> str:
        """The time limits of challenge ``cid`` under the served profile, in words ("" where its
        challenge.toml does not load: the brief still shows)."""
        try:
            return load_challenge(settings.project_dir, cid).time_limits(opts.profile)
        except GraderError:
            return ""

    @functools.cache
    def _environment(cid: str) -> tuple[str, ...]:
        """What a notebook of challenge ``cid`` can import (:func:`grader.core.environment_lines`)."""
        try:
            return tuple(environment_lines(challenge_packages(settings.project_dir,
                                                              load_challenge(settings.project_dir, cid))))
        except GraderError:
            return ()

    @functools.cache
    def _practice(cid: str) -> bool:
        """Whether challenge ``cid`` records a practice split (a practice check of it can run)."""
        try:
            return load_challenge(settings.project_dir, cid).dataset.practice_split is not None
        except GraderError:
            return False

    def _brief_html(readme: Path) -> Markup:
        """The brief ``readme`` as HTML (:func:`grader.report.markdown_html`), empty without one; rendered
        once per version of the file (its size and modification time), not on every view of every team."""
        try:
            st = readme.stat()
        except OSError:
            return Markup("")
        return _rendered(str(readme), st.st_mtime_ns, st.st_size)

    @functools.lru_cache(maxsize=64)
    def _rendered(path: str, mtime_ns: int, size: int) -> Markup:
        return markdown_html(Path(path).read_text(encoding="utf-8", errors="replace"))

    def home(request: Request, *, message: str = "", status: int = 200, chosen: str = "") -> HTMLResponse:
        """The team's page; ``message`` a refusal shown at its top. A flash from the last POST shows
        once: a confirmation, or a refusal (:func:`refusal_flash`) with the challenge it picked."""
        team = site.team_of(request)
        event = site.event_row()
        flash, refused, picked = read_flash(str(request.session.pop("flash", "") or ""))
        message, chosen = message or refused, chosen or picked
        briefs = []
        for cid in event.challenges:
            folder = challenge_folder(settings.project_dir, cid) or settings.project_dir / "challenges" / cid
            briefs.append({"id": cid, "brief": _brief_html(folder / "README.md"),
                           "starter": (folder / "starter.ipynb").is_file(),
                           "limits": _limits(cid), "environment": _environment(cid)})
        own = store.submissions(event_name, team_id=team.id)
        subs = as_team_sees(site.statuses(own))
        return site.page(request, "home.html.j2", status, team=team, briefs=briefs, submissions=subs,
                         left=left_today(own, event.cap_per_day, practice=False), message=message,
                         flash=flash, chosen=chosen if chosen in event.challenges else event.challenges[0],
                         max_upload=size_text(opts.max_upload_bytes), profile=opts.profile,
                         practice=[cid for cid in event.challenges if _practice(cid)],
                         practice_left=left_today(own, event.practice_per_day, practice=True))

    @app.get("/")
    def team_home(request: Request) -> Response:
        if request.session.get("coach") is True:
            return RedirectResponse("/coach", status_code=303)
        return home(request)

    def queue(team: TeamRow, challenge: str, form: ReceivedForm, *, practice: bool) -> SubmissionRow:
        """Check the upload (:func:`bundle`: the files, the intake's diagnosis, the challenge its
        notebook names, its syntax: :mod:`grader.server.web.precheck`), store it and queue it: a
        submission, or a ``practice`` check (scored on the public practice split; its own daily
        allowance, never the cap). Nothing is stored or counted for a refused upload.

        Raises:
            UsageError: the upload is refused (its message says why and the fix).
            CapReached: the cap, or the practice allowance, is used up for today.
            UploadRefused: it could not be stored (the disk is full).
        """
        event = site.event_row()
        if challenge not in event.challenges:
            raise UsageError(f"{challenge!r} is not a challenge of this event; choose one of "
                             f"{', '.join(event.challenges)}")
        if practice and not _practice(challenge):
            raise UsageError(f"{challenge} records no practice split: it has no practice check. Nothing was queued "
                             "and no submission was used.", fix="submit it for grading instead")
        try:
            packed = bundle(form, max_bytes=opts.max_upload_bytes, challenge=challenge, challenges=event.challenges)
        except OSError as err:  # the bundle's zip could not be written (the disk is full)
            raise refusal(err) from err
        if packed.problem is not None:
            raise UsageError(packed.problem)
        with packed.open() as data:  # the files' limit was counted as they came: the zip's few
            upload = store.store_upload(data, filename=packed.filename,  # headers may pass it
                                        max_bytes=opts.max_upload_bytes + FORM_SLACK, record=False)
        return store.submit(event_name, team.id, challenge=challenge, upload=upload,  # committed with it
                            practice=practice)

    def too_big(total: int | None) -> str:
        held = f"holds {size_text(total)}," if total is not None else "is"
        return f"The upload {held} over the limit of {size_text(opts.max_upload_bytes)}. {_SIZE_FIX}"

    async def answer_refusal(request: Request, status: int, message: str, *, chosen: str = "",
                             **headers: str) -> Response:
        """A refused upload's answer: for a browser (:func:`wants_page`) a 303 to ``/``, the message
        and the challenge picked kept in the flash (shown once; a reload is a GET), else ``status``
        with the team's page (the error page for 503) and ``headers`` (the redirect keeps only
        their ``Connection``)."""
        if wants_page(request):
            request.session["flash"] = refusal_flash(chosen, message)
            return RedirectResponse("/", status_code=303, headers={k: v for k, v in headers.items()
                                                                   if k == "Connection"})
        page = await run_in_threadpool(site.page, request, "error.html.j2", status, message=message) \
            if status == 503 else await run_in_threadpool(home, request, status=status, message=message, chosen=chosen)
        page.headers.update(headers)
        return page

    async def refuse_upload(request: Request, status: int, message: str, *, unread: bool = False,
                            **headers: str) -> Response:
        # answered once the body is in (read and dropped: grader.server.web.receive.drain), or closed; a
        # client waiting for 100 Continue (curl, past 1 MiB) is answered at once, its body never sent
        waiting = unread and request.headers.get("expect", "").lower() == "100-continue"
        ended = not waiting and await drain(request)
        return await answer_refusal(request, status, message, **(headers | ({} if ended else {"Connection": "close"})))

    @app.post("/submit")
    async def submit(request: Request) -> Response:
        """An upload: its body streamed into the uploads' disk with its limit counted as it
        arrives (:mod:`grader.server.web.receive`), at most ``max_uploads`` at once (503 beyond),
        checked (:mod:`grader.server.web.bundle` and :mod:`grader.server.web.precheck`: the intake's
        diagnosis, the challenge the notebook's metadata names, the syntax of its code cells, all
        before a slot is used), stored and committed; its files removed whatever the outcome. A
        refused body is read on and dropped before the answer (:func:`drain`), its slot given back
        first. The form's ``practice=1`` (its second button) queues a practice check instead.

        The notebook's challenge: a notebook whose metadata names another challenge than the one
        picked is refused (400) with both names and the fix, rather than graded as the one picked
        or moved silently to its own: the team sees what it sent and chooses; no slot is used.

        Answers (post/redirect/get): accepted, 303 to ``/`` with a confirmation shown once. Refused,
        to a browser (its Accept names ``text/html``: :func:`wants_page`), 303 to ``/`` with the
        message and the challenge picked shown once, so that a reload, or the live script, never
        sends the form again; to other clients (curl, scripts, API tests) the refusal's status with
        the team's page: 400 (a bad upload or form), 403 (the CSRF token), 413 (too large), 429 (the
        daily cap or practice allowance, or the team's uploads in flight, with Retry-After), 503
        (the server's uploads in flight, with Retry-After), 507 (the disk is full)."""
        known = site.known_team(request)
        team = known if known is not None else await run_in_threadpool(site.team_of, request)
        length = request.headers.get("content-length", "")
        declared = int(length) if length.isdigit() else None
        if declared is not None and declared > opts.max_upload_bytes + FORM_SLACK:  # refused before reading it
            return await refuse_upload(request, 413, too_big(declared), unread=True)
        holds = declared if declared is not None else opts.max_upload_bytes + FORM_SLACK  # at most, on disk
        if slots.team_full(team.id):
            return await refuse_upload(request, 429, _TEAM_BUSY, unread=True, **{"Retry-After": str(BUSY_RETRY_S)})
        if not slots.take(holds, team.id):
            return await refuse_upload(request, 503, _BUSY, unread=True, **{"Retry-After": str(BUSY_RETRY_S)})
        try:
            form = await receive_form(request, folder=incoming, max_bytes=opts.max_upload_bytes,
                                      max_files=MAX_FILES, max_fields=20)
        except FormRefused as err:  # TooLarge too: nothing kept past the limit, the rest dropped
            slots.give(holds, team.id)
            return await refuse_upload(request, err.status, too_big(declared) if isinstance(err, TooLarge)
                                       else err.message)
        except ClientDisconnect:
            slots.give(holds, team.id)
            return Response(status_code=400)  # nobody is there to read it
        except OSError as err:
            slots.give(holds, team.id)
            refused = refusal(err)
            return await answer_refusal(request, 507 if refused.disk_full else 500, str(refused))
        except BaseException:
            slots.give(holds, team.id)
            raise
        try:
            return await received(request, team, form)
        finally:
            slots.give(holds, team.id)

    async def received(request: Request, team: TeamRow, form: ReceivedForm) -> Response:
        challenge = form.fields.get("challenge", "")
        practice = form.fields.get("practice", "") == "1"
        try:
            site.check_csrf(request, form.fields.get("csrf"))
            sub = await anyio.to_thread.run_sync(functools.partial(queue, team, challenge, form, practice=practice),
                                                 limiter=uploads)
        except Refused as err:  # the CSRF token: a browser's form that expired lands on a page too
            if not wants_page(request):
                raise
            return await answer_refusal(request, err.status, err.message, chosen=challenge)
        except CapReached as err:
            return await answer_refusal(request, 429, str(err), chosen=challenge)
        except UploadRefused as err:
            return await answer_refusal(request, 507 if err.disk_full else 413, str(err), chosen=challenge)
        except UsageError as err:
            return await answer_refusal(request, 400, str(err), chosen=challenge)
        finally:
            if form.folder is not None:  # a form held in memory made none
                await anyio.to_thread.run_sync(form.close)
        if workers is not None:
            workers.wake()
        if sub.practice:
            said = (f"Practice check ({sub.filename}) is queued: it is scored on the public practice split and uses "
                    "no submission.")
        else:  # the team's own number, as its history shows it (Kaggle's and Gradescope's submission numbers)
            said = f"Submission {sub.number or sub.id} ({sub.filename}) is queued."
        request.session["flash"] = said
        return RedirectResponse("/", status_code=303)

    @app.get("/submissions/{submission_id}/status")
    def status(request: Request, submission_id: int) -> JSONResponse:
        return JSONResponse(team_status_of(site.own(request, submission_id)))

    @app.get("/submissions/{submission_id}/events")
    async def events(request: Request, submission_id: int) -> StreamingResponse:
        await run_in_threadpool(site.own, request, submission_id)

        async def stream() -> AsyncIterator[str]:
            last = ""
            while True:
                try:
                    sub = await run_in_threadpool(store.submission, submission_id)
                    data = "" if sub is None else json.dumps(await run_in_threadpool(team_status_of, sub))
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

    def as_team_sees(found: list[tuple[SubmissionRow, dict[str, object]]]) -> list[tuple[SubmissionRow,
                                                                                      dict[str, object]]]:
        """``found`` (:meth:`Site.statuses`) with, before the Reveal, each graded submission's verdict
        and score as its team scorecard has them (threshold criteria decided on the public part,
        :func:`grader.report.teamcard.team_view`), not the whole hidden test set's, which the private part
        would steer; and the coach's grades of its written answers for the released questions only
        (:meth:`grader.server.web.marks.Marks.team_seen`, kept per submission and grades; the status's
        ``written``: :func:`grader.server.web.answers.released_grades`)."""
        marks = marks_of(app)
        revealed = site.event_row().revealed
        if all(status["verdict"] is None for _, status in found) or (revealed and not marks.released()):
            return found
        parsed = {g.submission_id: g.result for g in site.graded_of([sub for sub, _ in found])}
        seen = {sub.id: marks.team_seen(sub.id, parsed[sub.id], revealed=revealed) for sub, _ in found
                if sub.id in parsed}
        out = []
        for sub, status in found:
            if sub.id in seen and status["verdict"] is not None:
                verdict, score = seen[sub.id].verdict, seen[sub.id].score
                sub, status = dataclasses.replace(sub, verdict=verdict, score=score), status | {
                    "verdict": verdict, "score": score, "written": released_grades(seen[sub.id])}
            out.append((sub, status))
        return out

    def team_status_of(sub: SubmissionRow) -> dict[str, object]:
        """:meth:`Site.status_of` ``sub`` as its team sees it (:func:`as_team_sees`)."""
        return as_team_sees([(sub, site.status_of(sub))])[0][1]

    @app.get("/submissions/{submission_id}/scorecard")
    def scorecard(request: Request, submission_id: int) -> HTMLResponse:
        sub = site.own(request, submission_id)
        result = store.result(sub.id)
        if result is None:
            raise Refused(404, "This submission has no scorecard yet.")
        # both team scorecards were rendered when the job finished (with the loss plot and
        # thumbnails, which result.json does not keep; grader.report.teamcard): the one after the Reveal,
        # or the one before it with this submission's step on the team's public board put in.
        # A result stored before them is rendered again from its JSON.
        # Drawn again where a released grade of a written answer applies (grader.server.web.marks)
        revealed = site.event_row().revealed
        html = marks_of(request).team_card(sub, revealed=revealed) or unpack(
            result.team_scorecard_html, revealed=revealed) or render_scorecard(
            SubmissionResult.model_validate_json(result.result_json), audience="team", revealed=revealed)
        if not revealed:
            html = with_board(html, board_steps(site.graded(), sub.id, eta=opts.eta))
        # its title and heading name it by the team's own number and its file, with a link back (issue 28)
        numbers = team_numbers(store.submissions(event_name, team_id=sub.team_id))
        html = served(html, number=numbers.get(sub.id), filename=sub.filename, team=sub.team_name,
                      practice=sub.practice, regrade_of=numbers.get(sub.regrade_of) if sub.regrade_of else None)
        return HTMLResponse(html, headers={"Content-Security-Policy": SCORECARD_CSP})
