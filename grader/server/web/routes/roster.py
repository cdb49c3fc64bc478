"""The coach's roster, settings and announcements while the event runs.

- ``/coach/roster``: the teams with their members (``teams.csv``), their submissions and last
  activity; a team's link re-issued, a team added, removed or brought back, the coach's own link
  re-issued: the same store functions as ``grader event rotate-link``, ``add-team`` and
  ``remove-team`` (:mod:`grader.server.store.teams`), so each ends the sessions it concerns. A new
  team link is shown once, on the roster the POST redirects to: it rides there in the one-time
  flash cookie (HttpOnly, signed and bound to the session, cleared once shown:
  :mod:`grader.server.web.signin`). A new coach link ends this browser's session too, so it is
  shown in the POST's own answer.
- ``/coach/settings``: the daily cap, the end and the practice checks a day, changed at once on
  this server and within a second on every other (:meth:`Store.set_settings`, :data:`FACTS_TTL_S`
  of :mod:`grader.server.store.events`, :meth:`Site.forget_event`); the announcements, posted and
  deleted (:mod:`grader.server.store.announcements`), shown on every page of the event.

Every route refuses a team session and no session with 403; every form checks the CSRF token. A
form the store refuses (:class:`UsageError`) lands, through a redirect, on its page with the
message: a page that can be reloaded without sending the form again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from grader.core import UsageError
from grader.server.store import (
    add_team,
    announcements_of,
    delete_announcement,
    members_of,
    post_announcement,
    remove_team,
    roster,
    rotate_coach_link,
    rotate_team_link,
)
from grader.server.web.pages import Site

__all__ = ["add_roster_routes", "coach_form", "settings_changes"]

_LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # an <input type="datetime-local">'s value, here in UTC


async def coach_form(site: Site, request: Request) -> dict[str, str]:
    """The fields of a coach's form POST, its CSRF token checked.

    Raises:
        Refused: 403, the session is not the coach's, or the token is missing or another.
    """
    await run_in_threadpool(site.coach_of, request)
    form = await request.form()
    site.check_csrf(request, form.get("csrf"))
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _said(err: UsageError) -> str:
    """``err``'s message and its fix, on one line (a page's message)."""
    return f"{err.message}; {err.fix}" if err.fix else err.message


def _count(value: str, what: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit():
        raise UsageError(f"{what}: {text!r} is not a whole number (leave it empty for none)")
    return int(text)


def settings_changes(form: dict[str, str], ends_at: datetime | None) -> dict[str, int | datetime | None]:
    """The settings form's fields as :meth:`Store.set_settings` changes: ``cap_per_day`` and
    ``practice_per_day`` (whole numbers; empty: none), ``ends_at`` (``YYYY-MM-DDTHH:MM`` in UTC, an
    ``<input type="datetime-local">``'s value; empty: no set end), left out where it is the
    event's end ``ends_at`` to the minute (an end already past may stay as it is).

    Raises:
        UsageError: a number or time that does not read (the message names the field).
    """
    changes: dict[str, int | datetime | None] = {
        "cap_per_day": _count(form.get("cap_per_day", ""), "submissions a day"),
        "practice_per_day": _count(form.get("practice_per_day", ""), "practice checks a day")}
    text = form.get("ends_at", "").strip()
    try:
        end = datetime.strptime(text, _LOCAL_MINUTE).replace(tzinfo=UTC) if text else None
    except ValueError as err:
        raise UsageError(f"the end: {text!r} is not a time of the form 2026-12-07T18:00 (UTC)") from err
    if (end is None) != (ends_at is None) or (end is not None and ends_at is not None
                                               and end != ends_at.replace(second=0, microsecond=0)):
        changes["ends_at"] = end
    return changes


def add_roster_routes(app: FastAPI, site: Site) -> None:
    """Add ``/coach/roster`` and ``/coach/settings`` with their forms to ``app``."""
    store, event = site.store, site.event

    def back(request: Request, to: str, message: str, *, refused: bool = False) -> Response:
        """A redirect to page ``to`` that shows ``message`` once (the session's flash)."""
        request.session["flash"] = message
        return RedirectResponse(f"{to}?refused=1" if refused else to, status_code=303)

    def shown(request: Request, name: str, refused: int, **context: Any) -> HTMLResponse:
        return site.page(request, name, flash=request.session.pop("flash", ""), refused=bool(refused), **context)

    # ------------------------------------------------------------ the roster

    @app.get("/coach/roster")
    def roster_page(request: Request, refused: int = 0) -> HTMLResponse:
        site.coach_of(request)
        rows = roster(store, event)
        return shown(request, "roster.html.j2", refused, members=members_of(store, event),
                     teams=[r for r in rows if not r.removed], removed=[r for r in rows if r.removed])

    def team_name(team_id: int) -> str:
        team = store.team(event, team_id) if 0 < team_id < 2**31 else None
        if team is None:
            raise UsageError(f"no team {team_id} in this event")
        return team.name

    def join_link(request: Request, token: str, *, coach: bool = False) -> str:
        """``BASE/join/<token>`` (``BASE/coach/join/<token>``) at the address this page was reached
        by, as ``grader event`` prints it (:mod:`grader.cli.links`)."""
        return f"{str(request.base_url).rstrip('/')}{'/coach' if coach else ''}/join/{token}"

    @app.post("/coach/teams/{team_id}/link")
    async def new_team_link(request: Request, team_id: int) -> Response:
        await coach_form(site, request)
        try:
            link = await run_in_threadpool(lambda: rotate_team_link(store, event, team_name(team_id)))
        except UsageError as err:
            return back(request, "/coach/roster", _said(err), refused=True)
        return back(request, "/coach/roster", f"Team {link.who} has a new join link, shown this once: hand it to the "
                    f"team. The old link is refused from now on; {link.ended} session(s) signed in with it ended."
                    f"\n{join_link(request, link.token)}")

    @app.post("/coach/teams")
    async def new_team(request: Request) -> Response:
        form = await coach_form(site, request)
        try:
            link = await run_in_threadpool(add_team, store, event, form.get("name", ""))
        except UsageError as err:
            return back(request, "/coach/roster", _said(err), refused=True)
        site.forget_teams()
        said = "is back (its submissions are on the boards again)" if link.restored else "is added"
        return back(request, "/coach/roster", f"Team {link.who} {said}. Its join link, shown this once: hand it to "
                    f"the team.\n{join_link(request, link.token)}")

    @app.post("/coach/teams/{team_id}/remove")
    async def drop_team(request: Request, team_id: int) -> Response:
        await coach_form(site, request)
        try:
            name = await run_in_threadpool(team_name, team_id)
            ended = await run_in_threadpool(remove_team, store, event, name)
        except UsageError as err:
            return back(request, "/coach/roster", _said(err), refused=True)
        site.forget_teams()
        return back(request, "/coach/roster", f"Team {name} is removed: its link no longer signs in and {ended} "
                    "session(s) ended. Its submissions stay on this page; it is left off the boards and exports.")

    @app.post("/coach/link")
    async def new_coach_link(request: Request) -> Response:
        await coach_form(site, request)
        link = await run_in_threadpool(rotate_coach_link, store, event)
        # this browser's session ended with the old link: the new one is shown here, not after a redirect
        return await run_in_threadpool(site.page, request, "coach_link.html.j2",
                                       link=join_link(request, link.token, coach=True), ended=link.ended)

    # ------------------------------------------------------------ settings and announcements

    @app.get("/coach/settings")
    def settings_page(request: Request, refused: int = 0) -> HTMLResponse:
        site.coach_of(request)
        site.forget_event()  # the form shows the settings as they are now
        return shown(request, "settings.html.j2", refused, every=announcements_of(store, event),
                     minute=_LOCAL_MINUTE)

    @app.post("/coach/settings")
    async def change_settings(request: Request) -> Response:
        form = await coach_form(site, request)
        try:
            current = await run_in_threadpool(store.event, event)
            changed = await run_in_threadpool(store.set_settings, event, settings_changes(form, current.ends_at))
        except UsageError as err:
            return back(request, "/coach/settings", _said(err), refused=True)
        site.forget_event()
        cap = f"{changed.cap_per_day} submissions a day" if changed.cap_per_day else "no daily cap"
        practice = ("no limit on practice checks" if changed.practice_per_day is None
                    else f"{changed.practice_per_day} practice checks a day")
        end = f"ends {changed.ends_at:%Y-%m-%d %H:%M} UTC" if changed.ends_at else "no set end"
        return back(request, "/coach/settings", f"Saved: {cap}, {practice}, {end}. Every page shows it within a "
                    "second; the next upload is checked against it.")

    @app.post("/coach/announcements")
    async def announce(request: Request) -> Response:
        form = await coach_form(site, request)
        try:
            await run_in_threadpool(post_announcement, store, event, form.get("text", ""))
        except UsageError as err:
            return back(request, "/coach/settings", _said(err), refused=True)
        site.forget_announcements()
        return back(request, "/coach/settings", "Announced: every team sees it at the top of its pages.")

    @app.post("/coach/announcements/{announcement_id}/delete")
    async def unannounce(request: Request, announcement_id: int) -> Response:
        await coach_form(site, request)
        gone = 0 < announcement_id < 2**31 and await run_in_threadpool(delete_announcement, store, event,
                                                                       announcement_id)
        site.forget_announcements()
        return back(request, "/coach/settings", "Announcement deleted." if gone else "No such announcement.",
                    refused=not gone)
