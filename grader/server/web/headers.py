"""The security headers of every response of the event server, and its last catch of errors.

Every response carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (join
tokens never leak in a Referer), ``X-Frame-Options: DENY``, a Content-Security-Policy (a route's
own kept: :data:`SCORECARD_CSP` on scorecards, else :data:`PAGE_CSP`) and ``Cache-Control:
no-store`` (but ``/static/``). :class:`SecurityHeaders` adds them, also to the 500 page it answers
for an exception that no handler took (Starlette's own 500 came from outside every middleware,
without them).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["INTERNAL_ERROR", "PAGE_CSP", "SCORECARD_CSP", "SecurityHeaders"]

log = logging.getLogger(__name__)

# pages: scripts and styles from this site only; no framing, no other origin for forms or fetches
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# scorecards (self-contained HTML): no script at all
SCORECARD_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
INTERNAL_ERROR = ("The server failed to answer this page (an error of the grader, in the server's log). "
                  "Try again; if it happens again, tell the coach.")
_JOIN_TOKEN = re.compile(r"(/join/)[^/]+")  # a join link's token, never written to the log


class SecurityHeaders:
    """Pure ASGI middleware: the security headers on every response (a route's own CSP kept);
    ``Cache-Control: no-store`` on everything but ``/static/``; and the app's last catch: an
    exception that no handler took is logged with its traceback and answered with a plain 500 page
    (``error_page()``, or a line of text if that fails too), with the same headers. Starlette's own
    500 comes from its ServerErrorMiddleware, outside every middleware: it had none of them.

    Args:
        app: the app inside.
        error_page: the 500 page's HTML (rendered without the database), or None for plain text.
    """

    def __init__(self, app: ASGIApp, *, error_page: Callable[[], str] | None = None) -> None:
        self.app = app
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = PAGE_CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                if "cache-control" not in headers and not str(scope.get("path", "")).startswith("/static/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            path = _JOIN_TOKEN.sub(r"\1<token>", str(scope.get("path", "")))
            log.exception("%s %s: an error no handler took (answered 500)", scope.get("method", ""), path)
            if started:
                raise  # the response is cut short: the server closes the connection
            await self._failed()(scope, receive, send_with_headers)

    def _failed(self) -> Response:
        if self.error_page is not None:
            try:
                return HTMLResponse(self.error_page(), status_code=500)
            except Exception:
                log.exception("the error page failed too")
        return PlainTextResponse(INTERNAL_ERROR, status_code=500)
