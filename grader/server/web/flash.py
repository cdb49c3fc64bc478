"""Messages that outlive a redirect (post/redirect/get): a refusal rides the session's one-time
flash to the page the browser is sent to, so a reload of that page is a GET and never sends the
form again.
"""

from __future__ import annotations

from fastapi import Request

__all__ = ["REFUSAL_CHARS", "read_flash", "refusal_flash", "wants_page"]

# a flash that carries a refusal to the page after its redirect: the marker, the challenge picked,
# the separator, the message (the flash cookie keeps 1,000 characters: grader.server.web.signin)
_REFUSAL, _SEP = "\x1erefused\x1e", "\x1e"
REFUSAL_CHARS = 900  # a refusal's characters kept for the page after its redirect


def wants_page(request: Request) -> bool:
    """Whether the client is a browser navigating (its Accept names ``text/html``, as every
    browser's form submission does): a refused upload is then answered 303 to ``/`` (the
    post/redirect/get pattern), its message shown there once; other clients (curl, scripts, the
    tests' httpx) get the refusal's own status and page."""
    return "text/html" in request.headers.get("accept", "").lower()


def refusal_flash(challenge: str, message: str) -> str:
    """The flash value that shows ``message`` as a refusal on the next ``/``, ``challenge`` picked."""
    short = message if len(message) <= REFUSAL_CHARS else message[:REFUSAL_CHARS - 3] + "..."
    return f"{_REFUSAL}{challenge}{_SEP}{short}"


def read_flash(flash: str) -> tuple[str, str, str]:
    """``(confirmation, refusal, challenge picked)`` of a flash value (:func:`refusal_flash`)."""
    if not flash.startswith(_REFUSAL):
        return flash, "", ""
    challenge, _, message = flash[len(_REFUSAL):].partition(_SEP)
    return "", message, challenge
