"""The Ladder: what score a team is shown on the public leaderboard while an event runs.

Blum & Hardt 2015, "The Ladder: A Reliable Leaderboard for Machine Learning Competitions"
(ICML, Algorithm 1), written for a score where higher is better (accuracy): the shown score
starts unset; a submission whose score beats the shown score by *more than* the margin ``eta``
becomes the new shown score, rounded to the nearest multiple of ``eta``; any other submission
leaves it as it was. A team that resubmits small variations therefore learns nothing from the
board about the hidden labels unless it truly improves by more than ``eta``.

Pure: sequences of scores in, shown scores and ranked rows out. Used by :mod:`grader.server.web.app`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ETA", "LadderRow", "decimals", "ladder", "ladder_board", "round_to", "transcript_bits"]

ETA = 0.01  # the margin: one percentage point of accuracy


def decimals(eta: float) -> int:
    """How many decimals ``eta``'s precision has: 2 for 0.01, 3 for 0.005 (0.005 -> 3).

    Raises:
        ValueError: ``eta`` is not positive and finite.
    """
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"the Ladder margin eta must be positive, not {eta!r}")
    places = 0
    while places < 12 and abs(round(eta, places) - eta) > 1e-12:
        places += 1
    return places


def round_to(value: float, eta: float) -> float:
    """``value`` rounded to the nearest multiple of ``eta`` (the paper's ``[x]_eta``), written with
    ``eta``'s decimals so that ``0.8300000001`` reads ``0.83``.

    Raises:
        ValueError: ``eta`` is not positive and finite.
    """
    return round(round(value / eta) * eta, decimals(eta))


def ladder(scores: Sequence[float | None], *, eta: float = ETA) -> list[float | None]:
    """The shown score after each submission, in submission order.

    Args:
        scores: each submission's score on the public part (higher is better, e.g. accuracy in
            [0, 1]); None where the submission has none (it failed, or was not measured): it
            leaves the shown score unchanged.
        eta: the margin a new score must beat the shown one by; also the rounding step.

    Returns:
        one entry per submission: the shown score after it (None until a first score exists).

    Raises:
        ValueError: ``eta`` is not positive and finite.
    """
    decimals(eta)
    shown: float | None = None
    out: list[float | None] = []
    for score in scores:
        if score is not None and (shown is None or score > shown + eta):
            shown = round_to(score, eta)
        out.append(shown)
    return out


def transcript_bits(submissions: int, *, eta: float = ETA) -> float:
    """An upper bound, in bits, on what a team's ``submissions`` shown scores on one board can tell
    it about the hidden labels: the base-2 logarithm of the number of transcripts the Ladder can
    produce, whatever the team submits.

    Method: the description-length argument behind the Ladder's guarantee (Blum & Hardt, ICML 2015,
    PMLR 37:1006-1014), counted here for our board. After each
    submission the board either keeps its score or shows a new one, a multiple of ``eta`` in
    [0, 1] (``1/eta + 1`` values), or has none yet: at most ``1/eta + 3`` outcomes, so
    ``submissions * log2(1/eta + 3)`` bits. And since a new score beats the old by more than
    ``eta``, the score changes at most ``1/eta + 1`` times, each change told by the submission at
    which it happens and its value: ``(1/eta + 1) * log2(submissions * (1/eta + 1))`` bits. The
    smaller of the two. (An exact per-submission count, as a scorecard showing the public part's
    ``k`` of ``n`` per class would be, grows with every submission instead.)

    Args:
        submissions: the team's submissions on the board (k >= 0).
        eta: the Ladder's margin.

    Raises:
        ValueError: ``eta`` is not positive and finite, or ``submissions`` is negative.
    """
    decimals(eta)
    if submissions < 0:
        raise ValueError(f"submissions must be at least 0, not {submissions}")
    if submissions == 0:
        return 0.0
    values = round(1 / eta) + 1
    return min(submissions * math.log2(values + 2), values * math.log2(submissions * values))


@dataclass(frozen=True)
class LadderRow:
    """One team on a public Ladder board.

    Attributes:
        rank: 1-based; teams with the same shown score share it ("1, 1, 3"); None: no score yet.
        team: the team's name.
        shown: the shown score (a multiple of eta), or None.
        submission_id: the submission that set the shown score (None: none did).
        submissions: how many submissions the team made on this challenge.
    """

    rank: int | None
    team: str
    shown: float | None
    submission_id: int | None
    submissions: int


def ladder_board(teams: Mapping[str, Sequence[tuple[int, float | None]]], *, eta: float = ETA) -> list[LadderRow]:
    """Rank teams by their Ladder scores.

    Args:
        teams: per team name, its submissions on one challenge, oldest first, each
            ``(submission_id, public score or None)``.
        eta: the Ladder margin (:func:`ladder`).

    Returns:
        rows, highest shown score first; equal scores share a rank and are listed by name;
        teams without a score come last, unranked, by name.

    Raises:
        ValueError: ``eta`` is not positive and finite.
    """
    rows: list[LadderRow] = []
    for name, subs in teams.items():
        shown = ladder([s for _, s in subs], eta=eta)
        final = shown[-1] if shown else None
        setter = None
        for (sub_id, _), before, after in zip(subs, [None, *shown[:-1]], shown, strict=True):
            if after is not None and after != before:
                setter = sub_id
        rows.append(LadderRow(rank=None, team=name, shown=final, submission_id=setter, submissions=len(subs)))
    scored = sorted((r for r in rows if r.shown is not None), key=lambda r: (-(r.shown or 0.0), r.team))
    ranked: list[LadderRow] = []
    for i, row in enumerate(scored):
        rank = ranked[-1].rank if ranked and ranked[-1].shown == row.shown else i + 1
        ranked.append(LadderRow(rank=rank, team=row.team, shown=row.shown, submission_id=row.submission_id,
                                submissions=row.submissions))
    return ranked + sorted((r for r in rows if r.shown is None), key=lambda r: r.team)
