"""The join links a coach hands out: ``BASE/join/<token>`` for a team, ``BASE/coach/join/<token>``
for the coach (``grader event create`` and ``grader event rotate-link`` print them).
"""

from __future__ import annotations

__all__ = ["join_link", "join_links"]


def join_link(base: str, token: str, *, coach: bool) -> str:
    """``base/join/<token>`` (``base/coach/join/<token>`` for the coach)."""
    return f"{base.rstrip('/')}{'/coach' if coach else ''}/join/{token}"


def join_links(base: str, team_tokens: dict[str, str], coach_token: str) -> list[tuple[str, str]]:
    """``(who, link)`` for each team, then the coach: ``base/join/<token>``, ``base/coach/join/<token>``."""
    base = base.rstrip("/")
    return [(team, f"{base}/join/{token}") for team, token in team_tokens.items()] + [
        ("coach", f"{base}/coach/join/{coach_token}")]
