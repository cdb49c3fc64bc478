"""An event's leaderboards and cohort from its stored results (pure).

- **Public board** (while the event runs, what teams see): per challenge, one row per team, the
  team's Ladder score (:mod:`grader.server.ladder`) over its graded submissions in order, each
  scored by its ``predict`` model's accuracy on the *public* part of the hidden test set. A
  challenge whose hidden test set has no public/private split is scored on the whole set, and
  the board says so.
- **Private board** (the coach; teams once revealed): per challenge, each team's *chosen*
  submission: the one that set its Ladder score (else its latest graded one), ranked by the
  *private* part with the rank groups of :func:`grader.leaderboard.leaderboards`.
- **Cohort** (the exports): the same chosen submissions, one result per team and challenge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from grader.leaderboard import Board, Part, best_notebooks, figure, leaderboards
from grader.scorecard import SubmissionResult
from grader.server.ladder import ETA, LadderRow, ladder_board

__all__ = ["NO_SPLIT_NOTE", "Graded", "PublicBoard", "chosen", "private_boards", "public_boards"]

NO_SPLIT_NOTE = ("This challenge's hidden test set has no public/private split: the board is scored on the whole "
                 "hidden test set.")


@dataclass(frozen=True)
class Graded:
    """One graded submission of the event: its team, id, upload time (UTC) and stored result."""

    team: str
    submission_id: int
    created: datetime
    result: SubmissionResult


@dataclass(frozen=True)
class PublicBoard:
    """One challenge's public Ladder board; ``eta`` is the margin and rounding step."""

    challenge: str
    rows: tuple[LadderRow, ...]
    eta: float
    note: str


def _split(graded: Sequence[Graded], challenge: str) -> bool:
    """Whether the results for ``challenge`` record public/private parts; also True while none
    has measured a model (a starter's result says nothing of the hidden test set's split)."""
    models = [m for g in graded for nb in g.result.notebooks if nb.challenge == challenge for m in nb.models]
    return not models or any(m.parts for m in models)


def _score(result: SubmissionResult, challenge: str, part: Part) -> float | None:
    picked = best_notebooks(result, part=part).get(challenge)
    if picked is None:
        return None
    model = next((m for m in picked[0].models if m.role == "predict"), None)
    share = figure(model, part)
    return None if share is None else share.value


def _per_team(graded: Sequence[Graded], challenge: str) -> dict[str, list[Graded]]:
    teams: dict[str, list[Graded]] = {}
    for g in sorted(graded, key=lambda g: (g.created, g.submission_id)):
        if any(nb.challenge == challenge for nb in g.result.notebooks):
            teams.setdefault(g.team, []).append(g)
    return teams


def public_boards(graded: Sequence[Graded], challenges: Sequence[str], *, eta: float = ETA) -> list[PublicBoard]:
    """The public Ladder board of each challenge, in ``challenges`` order (module docstring).

    Raises:
        ValueError: ``eta`` is not positive and finite.
    """
    boards = []
    for challenge in challenges:
        part: Part = "public" if _split(graded, challenge) else "all"
        teams = {team: [(g.submission_id, _score(g.result, challenge, part)) for g in subs]
                 for team, subs in _per_team(graded, challenge).items()}
        boards.append(PublicBoard(challenge=challenge, rows=tuple(ladder_board(teams, eta=eta)), eta=eta,
                                  note="" if part == "public" else NO_SPLIT_NOTE))
    return boards


def chosen(graded: Sequence[Graded], challenge: str, *, eta: float = ETA) -> list[Graded]:
    """Each team's chosen submission for ``challenge`` (module docstring), by team name."""
    board = public_boards(graded, [challenge], eta=eta)[0]
    setters = {row.team: row.submission_id for row in board.rows}
    out = []
    for team, subs in sorted(_per_team(graded, challenge).items()):
        pick = next((g for g in subs if g.submission_id == setters.get(team)), subs[-1])
        out.append(pick)
    return out


def private_boards(graded: Sequence[Graded], challenges: Sequence[str], *, eta: float = ETA) -> list[Board]:
    """The private board of each challenge with a graded submission, in ``challenges`` order.

    Each entry's ``folder`` is the chosen submission's id (as text), its ``submission`` the team.
    """
    boards = []
    for challenge in challenges:
        picks = chosen(graded, challenge, eta=eta)
        if not picks:
            continue
        part: Part = "private" if _split(graded, challenge) else "all"
        results = [g.result.model_copy(update={
            "submission": g.team,
            "notebooks": [nb for nb in g.result.notebooks if nb.challenge == challenge]}) for g in picks]
        found = leaderboards(results, [str(g.submission_id) for g in picks], part=part)
        boards += [b for b in found if b.challenge == challenge]
    return boards
