"""uvicorn's h11 protocol with the header and body read timeouts of :class:`ConnectionLimits`.

uvicorn (0.54) times a connection only while it is idle after a response (``timeout_keep_alive``):
a connection that never completes its request's headers, or whose request body stops arriving,
is kept for as long as the client keeps it. :class:`GuardedH11Protocol` adds two timers to
uvicorn's :class:`~uvicorn.protocols.http.h11_impl.H11Protocol` (given to uvicorn as
``Config(http=...)``, its documented way to choose the protocol class):

- the header timer runs from the connection's opening (and, on a kept-alive connection, from the
  first byte of its next request) until h11 has parsed the request's headers; at its end the
  connection is closed, with a 408 when part of a request had come (a connection a browser opened
  ahead of need and never used is closed without a word: it asked nothing);
- the body timer runs while a request body is expected and the server is reading it: the body is
  late ``body_timeout_s`` after its last piece, or after its start plus one second for every
  ``body_min_rate`` bytes received (Apache's ``mod_reqtimeout`` ``body=...,MinRate=500`` rule), so
  neither a stall nor a trickle of a byte now and then holds a connection, or one of the server's
  upload slots, for long; then the request is answered 408 (when no response has started),
  the connection closed, and the app's next ``receive()`` returns ``http.disconnect``. While the
  server itself has paused reading (the app has not read what came), or has not yet answered the
  client's ``Expect: 100-continue`` (curl's way with a large upload), the timer waits. Starlette's
  ``ClientDisconnect``, which the app then raises, ends the request quietly (logged at INFO).

The connection limit is uvicorn's own ``limit_concurrency`` (503 to requests beyond it), with the
process's open-files limit raised to fit (:func:`fit_open_files`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any, ClassVar

import h11
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from grader.server.web.limits import ConnectionLimits

__all__ = ["FILES_RESERVED", "GuardedH11Protocol", "fit_open_files", "guarded_protocol"]

log = logging.getLogger(__name__)
FILES_RESERVED = 256  # open files kept for the database, uploads, logs and the workers' children
_LOG_EVERY_S = 10.0  # timeouts are logged at most this often (200 slow clients: one line, not 200)
# the security headers of every page (grader.server.web.headers), on the plain answers sent before the
# app runs: a timeout's 408, a malformed request's 400, the connection limit's 503
PLAIN_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'"), (b"cache-control", b"no-store")]
_TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                + b"".join(k + b": " + v + b"\r\n" for k, v in PLAIN_HEADERS)
                + b"connection: close\r\ncontent-length: 16\r\n\r\nRequest Timeout\n")


class _Tally:
    """Counts connections ended by a timeout, logged at most every :data:`_LOG_EVERY_S`."""

    def __init__(self) -> None:
        self.counts = {"header": 0, "body": 0}
        self._logged = 0.0

    def add(self, what: str, limit_s: float) -> None:
        self.counts[what] += 1
        now = time.monotonic()
        if now - self._logged >= _LOG_EVERY_S:
            self._logged = now
            log.warning("closed connections of slow clients: %d whose request headers, %d whose upload stalled "
                        "(this %s timeout: %g s; in all since the start)", self.counts["header"],
                        self.counts["body"], what, limit_s)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body read timeouts (see the module's docstring).

    A subclass made by :func:`guarded_protocol` sets :attr:`limits`; uvicorn constructs one per
    connection.
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    tally: ClassVar[_Tally] = _Tally()

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.app = _quiet_when_gone(self.app)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._parsed: RequestResponseCycle | None = None  # the request whose headers were parsed last
        self._partial = False  # bytes of a request came before its headers were complete
        self._body_since = self._body_last = 0.0  # loop time: the body's start, its last piece
        self._body_bytes = 0  # bytes received since the body's start

    # ----- uvicorn's hooks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._partial = True
            if self._header_timer is None:  # a kept-alive connection's next request begins
                self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)
        else:
            self._body_bytes += len(data)
            self._body_last = self.loop.time()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and cycle is not self._parsed:  # a request's headers are complete
            self._parsed, self._partial = cycle, False
            self._cancel("header")
            self._body_since = self._body_last = self.loop.time()
            self._body_bytes = 0
        self._cancel("body")
        if cycle is not None and cycle.more_body and not cycle.disconnected and not self.transport.is_closing():
            self._body_timer = self.loop.call_at(self._body_deadline(), self._body_late)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse, with :data:`PLAIN_HEADERS`."""
        event = h11.Response(status_code=400, reason=b"Bad Request", headers=[
            (b"content-type", b"text/plain; charset=utf-8"), *PLAIN_HEADERS, (b"connection", b"close")])
        for out in (self.conn.send(event), self.conn.send(h11.Data(data=msg.encode("ascii", "replace"))),
                    self.conn.send(h11.EndOfMessage())):
            self.transport.write(out or b"")
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel("header")
        self._cancel("body")
        super().connection_lost(exc)

    # ----- the timers

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _cancel(self, which: str) -> None:
        timer = self._header_timer if which == "header" else self._body_timer
        if timer is not None:
            timer.cancel()
        if which == "header":
            self._header_timer = None
        else:
            self._body_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        self.tally.add("header", self.limits.header_timeout_s)
        if self._partial and self.conn.their_state is h11.IDLE:  # not the rest of a body already answered
            self.transport.write(_TIMEOUT_408)
        self.transport.close()

    def _body_deadline(self) -> float:
        """When the body is late (loop time): ``body_timeout_s`` after its last piece, or after its
        start plus one second for every ``body_min_rate`` bytes received, whichever comes first."""
        limits = self.limits
        return min(self._body_last + limits.body_timeout_s,
                   self._body_since + limits.body_timeout_s + self._body_bytes / limits.body_min_rate)

    def _body_late(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.disconnected or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.waiting_for_100_continue:  # the client waits for the server: count again
            self._body_since = self._body_last = now
            self._body_bytes = 0
        if now < self._body_deadline():
            self._body_timer = self.loop.call_at(self._body_deadline(), self._body_late)
            return
        self.tally.add("body", self.limits.body_timeout_s)
        if not cycle.response_started:
            try:
                out = self.conn.send(h11.Response(status_code=408, reason=b"Request Timeout", headers=[
                    (b"content-type", b"text/plain; charset=utf-8"), *PLAIN_HEADERS, (b"connection", b"close"),
                    (b"content-length", b"16")]))
                out = (out or b"") + (self.conn.send(h11.Data(data=b"Request Timeout\n")) or b"")
                out += self.conn.send(h11.EndOfMessage()) or b""
                self.transport.write(out)
            except h11.LocalProtocolError:  # h11 refuses a response now: the connection just closes
                pass
        cycle.disconnected = True  # the app's sends are dropped, its next receive() is a disconnect
        cycle.message_event.set()
        self.transport.close()


def _quiet_when_gone(app: ASGIApp) -> ASGIApp:
    """``app``, except that Starlette's :class:`~starlette.requests.ClientDisconnect` (raised where
    the app reads a body whose client is gone: closed by it, or by the body timeout) ends the
    request quietly instead of as uvicorn's "Exception in ASGI application" with a traceback."""

    async def run(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except ClientDisconnect:
            log.info("%s %s: the client went away before its request's body was read", scope.get("method", ""),
                     scope.get("path", ""))

    return run


async def _service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's answer beyond its ``limit_concurrency`` (``flow_control.service_unavailable``),
    with :data:`PLAIN_HEADERS`."""
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), *PLAIN_HEADERS, (b"retry-after", b"5"),
        (b"content-length", b"19"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"Service Unavailable", "more_body": False})


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A subclass of :class:`GuardedH11Protocol` with ``limits``, for ``uvicorn.Config(http=...)``.

    Also gives uvicorn's h11 protocol module our 503 beyond the connection limit: it names the
    answer as a module global (``h11_impl.service_unavailable``, uvicorn 0.3x), which a subclass
    cannot override.
    """
    h11_impl.service_unavailable = _service_unavailable  # type: ignore[attr-defined,assignment]
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits, "tally": _Tally()})


def fit_open_files(max_connections: int) -> int:
    """Raise this process's soft limit of open files (``RLIMIT_NOFILE``) to hold ``max_connections``
    and :data:`FILES_RESERVED` more, as far as the hard limit allows; returns the connections that
    fit (``max_connections``, or fewer where the hard limit is lower: logged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FILES_RESERVED
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as err:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, raised, err)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fits = max(1, soft - FILES_RESERVED)
        log.warning("%d connections at most (not %d): the open-files limit is %d (ulimit -n)", fits,
                    max_connections, soft)
        return fits
    return max_connections

