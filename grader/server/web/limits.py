"""How long ``grader serve`` waits for a client, how many connections it holds at once, and how it
runs behind an HTTPS proxy (:class:`ProxyOptions`).

A client that opens a connection and sends its request slowly, or not at all, costs the server a
connection (a file descriptor, buffers) for as long as it is let be; uvicorn alone waits for a
request's headers and for a stalled body without limit. :class:`ConnectionLimits` bounds both
waits and the number of connections; :mod:`grader.server.web.guard` enforces them on uvicorn's h11
protocol. The defaults fit an event of up to a few hundred teams on one server:

- ``header_timeout_s`` 10 s: a browser sends a request's headers in one write as soon as its
  connection is open, so even on a poor event Wi-Fi they are complete within a second or two;
  10 s is ample for people and short for a client that trickles them (the "slowloris" attack).
  nginx's ``client_header_timeout`` is 60 s; Go's ``ReadHeaderTimeout`` has none by default.
- ``body_timeout_s`` 30 s between two reads of a request body (the upload): a 60 MiB notebook
  over a slow link arrives in small pieces, but nothing at all for 30 s means the client has
  stalled. As nginx's ``client_body_timeout`` it is counted between reads, not for the whole
  body; time the server itself spends not reading (a full buffer) is not counted. And the whole
  body must come at ``body_min_rate`` 500 bytes a second at least, after the first 30 s (Apache's
  ``mod_reqtimeout`` default ``MinRate=500``): a client that sends a byte every 29 s would
  otherwise hold the connection, and one of the server's few upload slots, for ever. 500 B/s is
  4 kbit/s: any link a team uploads over is faster.
- ``max_connections`` 1000: 200 teams with a browser each, a browser opening at most 6
  connections to one host over HTTP/1.1 and a team's page holding one event stream per queued or
  running submission, is about 1000. Over it, uvicorn answers each new request 503 (its
  ``limit_concurrency``) until connections close; the server raises its open-files limit to fit
  (:func:`grader.server.web.guard.fit_open_files`).
- ``keep_alive_s`` 5 s: uvicorn's default, how long an idle connection is kept after a response.

Nothing here imports uvicorn: :mod:`grader.cli.event` registers the options of ``grader
serve`` with :func:`add_limit_options`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = ["HSTS_S", "ConnectionLimits", "ProxyOptions", "add_limit_options", "connection_limits"]

HSTS_S = 31_536_000  # Strict-Transport-Security max-age behind --https: one year (MDN's example; RFC 6797)



@dataclass(frozen=True)
class ConnectionLimits:
    """The limits of ``grader serve``'s connections (see the module's docstring for the defaults).

    Attributes:
        header_timeout_s: seconds from a connection's opening, or from the first byte of its next
            request, until that request's headers are complete; then the connection is closed
            (answered 408 when part of a request had come).
        body_timeout_s: seconds a request body may stall (nothing received while the server
            reads); then the request is answered 408 and the connection closed, and the app's
            next read of the body sees the client gone.
        body_min_rate: bytes a second a body must average after its first ``body_timeout_s``
            (one more second allowed per this many bytes received); else as a stall.
        max_connections: connections open at once beyond which requests are answered 503.
        keep_alive_s: seconds an idle connection is kept open after a response.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    body_min_rate: float = 500.0
    max_connections: int = 1000
    keep_alive_s: int = 5

    def __post_init__(self) -> None:
        if not (self.header_timeout_s > 0 and self.body_timeout_s > 0 and self.body_min_rate > 0
                and self.keep_alive_s > 0):
            raise ValueError(f"timeouts must be positive: {self}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1: {self}")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} s: give more than 0 and at most 3600 seconds")
    return value


def _connections(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from 1 to 100000")
    return int(text)


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--header-timeout``, ``--body-timeout`` and ``--max-connections`` to ``grader serve``."""
    default = ConnectionLimits()
    group = parser.add_argument_group(
        "slow clients", "how long the server waits for a client and how many connections it holds; the defaults "
        "fit an event of a few hundred teams (README, 'Slow clients')")
    group.add_argument("--header-timeout", type=_positive_seconds, default=default.header_timeout_s,
                       metavar="SECONDS", help="close a connection whose request headers are not complete this long "
                       f"after it opened or after its request's first byte (default {default.header_timeout_s:g})")
    group.add_argument("--body-timeout", type=_positive_seconds, default=default.body_timeout_s, metavar="SECONDS",
                       help="answer 408 and close when an upload's body stalls this long with nothing received, "
                       f"or comes slower than {default.body_min_rate:g} bytes a second after this long (default "
                       f"{default.body_timeout_s:g})")
    group.add_argument("--max-connections", type=_connections, default=default.max_connections, metavar="N",
                       help="connections open at once beyond which requests are answered 503 (default "
                       f"{default.max_connections}; each is an open file: the server raises its limit to fit)")


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    """The limits given to ``grader serve`` by :func:`add_limit_options`' options."""
    return ConnectionLimits(header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
                            max_connections=args.max_connections)


@dataclass(frozen=True)
class ProxyOptions:
    """How ``grader serve`` runs behind an HTTPS proxy.

    Attributes:
        https: the pages are reached over https (Secure cookies, HSTS).
        hsts_s: Strict-Transport-Security max-age, seconds (0: none).
        forwarded_allow_ips: uvicorn's ``forwarded_allow_ips`` (None: uvicorn's default,
            ``$FORWARDED_ALLOW_IPS`` else ``127.0.0.1,::1``).
    """

    https: bool = False
    hsts_s: int = HSTS_S
    forwarded_allow_ips: str | None = None
