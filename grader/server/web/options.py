"""How the event server's app serves one event (:class:`AppOptions`): its limits on uploads, its
Ladder margin, its profile, and how it is reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.server.web.ladder import ETA

__all__ = ["AppOptions"]


@dataclass(frozen=True)
class AppOptions:
    """How the app serves one event.

    Attributes:
        event: the event's name; None: the store's only event.
        max_upload_bytes: the most one upload may hold, in bytes.
        max_uploads: uploads received and checked at once; one more is answered 503 with
            Retry-After (:mod:`grader.server.web.receive`: each holds at most 1 MiB of memory while it
            arrives).
        upload_bytes_in_flight: the most those uploads may hold together on the state folder's
            disk, in bytes, each counted at its Content-Length (``max_upload_bytes`` when sent
            chunked) when it arrives; one that does not fit is answered 503 too (1 GiB: sixteen
            uploads of 64 MB, or a hundred small notebooks, at once).
        uploads_per_team: uploads of one team received at once; one more is answered 429 with
            Retry-After (a team's stalled uploads cannot hold every slot).
        https: whether the pages are reached over https, through a proxy that ends TLS: Secure
            ``__Host-`` cookies and Strict-Transport-Security (:mod:`grader.server.web.signin`).
        hsts_s: the Strict-Transport-Security ``max-age`` sent with ``https``, seconds (0: none).
        join_delay_s: seconds a failed join waits before its answer.
        poll_s: seconds between progress reads of a Server-Sent Events stream.
        eta: the Ladder margin of the public board (:mod:`grader.server.web.ladder`).
        profile: the profile the event's notebooks are graded with (``grader serve --profile``):
            the team's page states its time limits.
    """

    event: str | None = None
    max_upload_bytes: int = 64 << 20
    max_uploads: int = 100
    upload_bytes_in_flight: int = 1 << 30
    uploads_per_team: int = 2
    https: bool = False
    hsts_s: int = 31_536_000
    join_delay_s: float = 1.0
    poll_s: float = 1.0
    eta: float = ETA
    profile: str = "full"
