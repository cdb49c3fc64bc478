"""Signing in and out of the event server: the session cookie, the join pages, sign-out, and join
tokens kept out of the logs.

- **The cookie** (:class:`SessionCookies`, pure ASGI middleware) holds only a random session id
  (:mod:`grader.server.store.sessions`): HttpOnly, SameSite=Lax, Path=/, 30 days; behind an HTTPS proxy
  (``AppOptions.https``) ``Secure`` with the ``__Host-`` prefix (no subdomain can set it; RFC 6265bis,
  "Cookie Name Prefixes"), and every response carries ``Strict-Transport-Security`` (RFC 6797).
  The routes read ``request.session`` as before: ``team`` (an id) or ``coach``, and ``csrf``, from
  the stored session; ``flash`` (a one-time message) rides in a cookie of its own, HMAC-signed with
  the event's secret and bound to the session id.
- **Joining** takes two steps: ``GET /join/{token}`` (``/coach/join/{token}``) shows a page with a
  button and changes nothing; its form ``POST`` to the same address signs in. The form carries an
  anti-CSRF value bound to this browser (an HMAC of a random ``grader_join`` cookie and the
  token); the POST is refused when the browser says it came from another site (``Sec-Fetch-Site``,
  else ``Origin``: OWASP's CSRF Prevention Cheat Sheet, "Fetch Metadata" and "Verifying Origin").
  So another site cannot sign a team's browser in as someone else (login CSRF). A browser signed
  in as someone else is told so and asked; if who it is changed between the page and the click,
  it is asked again, never switched silently. Signing in ends the browser's previous session.
- **Tokens never reach a log**: :class:`TokenMask` rewrites ``/join/<token>`` as ``/join/***`` in
  uvicorn's access and error logs and the server's own (:func:`mask_tokens_in_logs`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grader.server.store import SESSION_S, DatabaseUnavailable, Sessions, SignedIn, digest
from grader.server.web.pages import Refused, Site

__all__ = ["Cookies", "SessionCookies", "TokenMask", "add_sessions", "mask_tokens_in_logs"]

log = logging.getLogger(__name__)

_STATE = "grader.signin"  # the scope key of a request's _State
_TOKEN_PATH = re.compile(r"(/join/)[^/?#\s\"'<>]+")
# where a join link's path may be logged: uvicorn's access and error logs and the server's own
MASKED_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "grader.server.web.app", "grader.server.web.pages",
                  "grader.server.web.routes.coach", "grader.server.web.routes.public", __name__)
FLASH_MAX = 1000  # characters of a flash message kept


class TokenMask(logging.Filter):
    """A logging filter that replaces every join token in a record's message and string arguments
    with ``***`` (the argument tuple keeps its shape: uvicorn's access formatter unpacks it): what
    follows ``/join/``, and any run of 32 or more URL-safe base64 characters (a token is 32: one
    sent as ``/JOIN/<token>``, ``/join//<token>`` or ``/join%5C<token>`` is masked too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _mask(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{32,}")


def _mask(text: str) -> str:
    return _TOKEN_LIKE.sub("***", _TOKEN_PATH.sub(r"\1***", text))


def mask_tokens_in_logs() -> None:
    """Put one :class:`TokenMask` on each logger of :data:`MASKED_LOGGERS` and on every logger under
    ``grader.server`` that exists now (a logger's filters survive uvicorn's ``dictConfig``, which
    replaces handlers only); idempotent."""
    names = set(MASKED_LOGGERS) | {n for n in logging.root.manager.loggerDict if n.startswith("grader.server")}
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMask) for f in logger.filters):
            logger.addFilter(TokenMask())


class _Unavailable(dict[str, Any]):
    """The session of a request whose lookup found the database away: any read raises the error
    inside the route, where it becomes the 503 page (:mod:`grader.server.web.app`)."""

    def __init__(self, err: DatabaseUnavailable) -> None:
        super().__init__()
        self.err = err

    def _raise(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise self.err

    get = __getitem__ = __contains__ = pop = setdefault = update = __setitem__ = _raise


@dataclass
class _State:
    """What the middleware knows of a request's browser, and what the routes changed."""

    session_id: str | None  # as the cookie sent it
    current: SignedIn | None
    new_id: str | None = None
    ended: bool = False


def _state(request: Request) -> _State:
    state = request.scope.get(_STATE)
    assert isinstance(state, _State), "SessionCookies is not installed"
    return state


@dataclass(frozen=True)
class Cookies:
    """This server's cookies: their names and flags, and the HMAC that signs their values.

    Args:
        secret: the event's secret (signs the flash cookie and the join form's value).
        https: the pages are reached over https: ``Secure`` and the ``__Host-`` prefix.
    """

    secret: bytes
    https: bool

    def name(self, base: str) -> str:
        """Cookie ``base``'s name (``__Host-`` prefixed behind HTTPS)."""
        return f"__Host-{base}" if self.https else base

    def set_cookie(self, base: str, value: str, max_age: int) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Path=/, Secure behind HTTPS."""
        return (f"{self.name(base)}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
                + ("; Secure" if self.https else ""))

    def mac(self, *parts: str) -> str:
        """HMAC-SHA256 of ``parts`` with the event's secret, hex."""
        return hmac.new(self.secret, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


class SessionCookies:
    """Pure ASGI middleware: the request's ``session`` from the stored session its cookie names
    (module docstring); after the route, the cookies it changed and, behind HTTPS,
    ``Strict-Transport-Security``.

    Args:
        app: the ASGI app inside.
        sessions: the stored sessions.
        event: the served event's name.
        cookies: the cookies' names, flags and signing.
        hsts_s: HSTS ``max-age`` in seconds, sent behind HTTPS (0: no header).
    """

    def __init__(self, app: ASGIApp, *, sessions: Sessions, event: str, cookies: Cookies, hsts_s: int) -> None:
        self.app, self.sessions, self.event, self.cookies = app, sessions, event, cookies
        self.hsts = f"max-age={hsts_s}" if cookies.https and hsts_s > 0 else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        jar = self.cookies
        cookies: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookies.update(cookie_parser(value.decode("latin-1")))
        session_id = cookies.get(jar.name("grader_session")) or None
        session: dict[str, Any] = {}
        state = _State(session_id=session_id, current=None)
        static = str(scope.get("path", "")).startswith("/static/")  # no session read: none cleared either
        if session_id is not None and not static:
            try:
                state.current = await anyio.to_thread.run_sync(self.sessions.find, self.event, session_id)
            except DatabaseUnavailable as err:
                session = _Unavailable(err)
        if state.current is not None:
            session.update({"coach": True} if state.current.coach else {"team": state.current.team_id})
            session["csrf"] = state.current.csrf
        had_flash = jar.name("grader_flash") in cookies
        flash = self._flash(cookies.get(jar.name("grader_flash"), ""), session_id) if state.current else ""
        if flash and not isinstance(session, _Unavailable):
            session["flash"] = flash
        scope["session"], scope[_STATE] = session, state
        stale = (session_id is not None and state.current is None and not static
                 and not isinstance(session, _Unavailable))

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                live = state.new_id or (None if state.ended or state.current is None else session_id)
                if state.new_id is not None:
                    headers.append("Set-Cookie", jar.set_cookie("grader_session", state.new_id, SESSION_S))
                elif state.ended or stale:
                    headers.append("Set-Cookie", jar.set_cookie("grader_session", "", 0))
                after = "" if isinstance(session, _Unavailable) else str(session.get("flash") or "")
                if after and live is not None:
                    if after != flash or state.new_id is not None:
                        headers.append("Set-Cookie", jar.set_cookie("grader_flash", self._signed_flash(after, live),
                                                                    3600))
                elif had_flash:  # shown (popped), or not this session's
                    headers.append("Set-Cookie", jar.set_cookie("grader_flash", "", 0))
                if self.hsts:
                    headers["Strict-Transport-Security"] = self.hsts
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _signed_flash(self, text: str, session_id: str) -> str:
        text = text[:FLASH_MAX]
        return (base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") + "."
                + self.cookies.mac("flash", session_id, text))

    def _flash(self, value: str, session_id: str | None) -> str:
        """The flash message in cookie ``value`` if it was signed for ``session_id``, else ""."""
        encoded, _, mac = value.partition(".")
        if not encoded or not mac or session_id is None:
            return ""
        try:
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return ""
        expected = self.cookies.mac("flash", session_id, text)
        return text if hmac.compare_digest(mac.encode(), expected.encode()) else ""  # bytes: any text compares


def add_sessions(app: FastAPI, site: Site, sessions: Sessions) -> None:
    """Install :class:`SessionCookies` on ``app`` with the join and sign-out routes, and mask tokens
    in the logs.

    Raises:
        UsageError: the served event does not exist.
    """
    opts = site.options
    cookies = Cookies(secret=site.store.session_secret(site.event).encode(), https=opts.https)
    app.add_middleware(SessionCookies, sessions=sessions, event=site.event, cookies=cookies, hsts_s=opts.hsts_s)
    mask_tokens_in_logs()

    async def refuse_slowly(message: str) -> NoReturn:
        await asyncio.sleep(opts.join_delay_s)
        raise Refused(403, message)

    def who(request: Request) -> str:
        current = _state(request).current
        return "" if current is None else "coach" if current.coach else f"team:{current.team_id}"

    def same_site(request: Request) -> None:
        """Raises: Refused: 403, the browser says the form came from another site."""
        fetch = request.headers.get("sec-fetch-site")
        if fetch is not None:
            ok = fetch in ("same-origin", "none")
        else:
            origin = request.headers.get("origin")
            scheme = "https" if opts.https else request.url.scheme
            ok = origin is None or origin == f"{scheme}://{request.headers.get('host', '')}"
        if not ok:
            raise Refused(403, "This sign-in did not come from this site's own page: open your join link and "
                          "press its button.")

    def page(request: Request, token: str, *, target: str, target_who: str, home: str, status: int = 200) -> Response:
        if who(request) == target_who:
            return RedirectResponse(home, status_code=303)  # signed in as this one already: nothing to do
        current = _state(request).current
        current_name = (None if current is None else "the coach" if current.coach
                        else f"team {site.team_of(request).name}")
        nonce = request.cookies.get(cookies.name("grader_join")) or ""
        fresh = not re.fullmatch(r"[A-Za-z0-9_-]{43}", nonce)
        if fresh:
            nonce = secrets.token_urlsafe(32)
        response = site.page(request, "join.html.j2", status, target=target, current_name=current_name,
                             current_who=who(request), join_csrf=cookies.mac("join", nonce, digest(token)))
        if fresh:  # the browser's join nonce, not its session: the page signs nothing in
            response.headers.append("Set-Cookie", cookies.set_cookie("grader_join", nonce, SESSION_S))
        return response

    async def post(request: Request, token: str, *, target: str, target_who: str, home: str,
                   coach: bool) -> Response:
        same_site(request)
        form = await request.form(max_files=0, max_fields=5)
        nonce = request.cookies.get(cookies.name("grader_join")) or ""
        sent = form.get("join_csrf")
        expected = cookies.mac("join", nonce, digest(token)).encode()
        if not (nonce and isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected)):
            raise Refused(403, "This sign-in form has expired or did not come from this site: open your join "
                          "link again and press its button.")
        if opts.https and request.url.scheme != "https":
            raise Refused(400, "This server runs behind an HTTPS proxy (grader serve --https) but this request "
                          "reached it over plain http: open the https:// link. If you did, the proxy's "
                          "X-Forwarded-Proto is not trusted: start grader serve with --forwarded-allow-ips "
                          "set to the proxy's address.")
        if form.get("current", "") != who(request):  # who this browser is changed since the page: ask again
            return await run_in_threadpool(page, request, token, target=target, target_who=target_who, home=home,
                                           status=409)
        state = _state(request)
        started = await run_in_threadpool(sessions.start, site.event, replaces=state.session_id,
                                          team_token_hash=None if coach else digest(token),
                                          coach_token_hash=digest(token) if coach else None)
        if started is None:
            await refuse_slowly("This join link is not valid. Ask your coach for your team's link.")
        state.new_id, state.current = started[0], started[1]
        request.session.clear()
        request.session.update({"coach": True} if coach else {"team": started[1].team_id})
        request.session["csrf"] = started[1].csrf
        return RedirectResponse(home, status_code=303)

    @app.get("/join/{token}")
    async def join_page(request: Request, token: str) -> Response:
        team = await run_in_threadpool(site.store.team_for_token, site.event, token)
        if team is None:
            await refuse_slowly("This join link is not valid. Ask your coach for your team's link.")
        return await run_in_threadpool(page, request, token, target=f"team {team.name}", target_who=f"team:{team.id}",
                                       home="/")

    @app.post("/join/{token}")
    async def join(request: Request, token: str) -> Response:
        team = await run_in_threadpool(site.store.team_for_token, site.event, token)
        if team is None:
            await refuse_slowly("This join link is not valid. Ask your coach for your team's link.")
        return await post(request, token, target=f"team {team.name}", target_who=f"team:{team.id}", home="/",
                          coach=False)

    @app.get("/coach/join/{token}")
    async def coach_join_page(request: Request, token: str) -> Response:
        if not await run_in_threadpool(site.store.coach_token_ok, site.event, token):
            await refuse_slowly("This join link is not valid.")
        return await run_in_threadpool(page, request, token, target="the coach", target_who="coach", home="/coach")

    @app.post("/coach/join/{token}")
    async def coach_join(request: Request, token: str) -> Response:
        if not await run_in_threadpool(site.store.coach_token_ok, site.event, token):
            await refuse_slowly("This join link is not valid.")
        return await post(request, token, target="the coach", target_who="coach", home="/coach", coach=True)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        state = _state(request)
        if state.current is not None:
            same_site(request)
            site.check_csrf(request, (await request.form(max_files=0, max_fields=5)).get("csrf"))
            assert state.session_id is not None
            await run_in_threadpool(sessions.end, state.session_id)
        state.ended, state.current = True, None
        request.session.clear()
        return await run_in_threadpool(site.page, request, "error.html.j2", 200,
                                       message="You are signed out. Your join link signs you in again.")
