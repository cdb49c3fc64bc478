"""An event's leaderboards and cohort from its stored results (pure).

- **Public board** (while the event runs, what teams see): per challenge, one row per team, the
  team's Ladder score (:mod:`grader.server.web.ladder`) over its graded submissions in order, each
  scored by its ``predict`` model's accuracy on the *public* part of the hidden test set. A
  challenge whose hidden test set has no public/private split is scored on the whole set, and
  the board says so.
- **Private board** (the coach; teams once revealed): per challenge, each team's *chosen*
  submission: its final one, as the team chose it (:mod:`grader.server.store.finals`), else the one
  that set its Ladder score (else its latest graded one), ranked by the
  *private* part with the rank groups of :func:`grader.report.leaderboard.leaderboards`.
- **Cohort** (the exports): the same chosen submissions, one result per team and challenge.
- **Board steps** (a team's own scorecard while the event runs, :mod:`grader.report.teamcard`): what one
  submission did to its team's public board, computed as the board is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from grader.report import Board, BoardStep, Part, best_notebooks, figure, leaderboards
from grader.score import SubmissionResult
from grader.server.web.ladder import ETA, LadderRow, ladder, ladder_board

__all__ = ["NO_SPLIT_NOTE", "Graded", "PublicBoard", "board_steps", "chosen", "private_boards", "public_boards"]

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


def board_steps(graded: Sequence[Graded], submission_id: int, *, eta: float = ETA) -> list[BoardStep]:
    """What submission ``submission_id`` did to its team's public board of each of its challenges
    (:class:`grader.report.teamcard.BoardStep`), computed from ``graded`` exactly as
    :func:`public_boards` computes the board (the same part, scores, order and Ladder), so that a
    team's scorecard shows no more than the board's transcript for that team: the step of the
    submission at its place among the team's graded submissions, oldest first. Empty where
    ``submission_id`` is not among ``graded``.

    Raises:
        ValueError: ``eta`` is not positive and finite.
    """
    mine = next((g for g in graded if g.submission_id == submission_id), None)
    if mine is None:
        return []
    steps = []
    for challenge in dict.fromkeys(nb.challenge for nb in mine.result.notebooks if nb.challenge):
        part: Part = "public" if _split(graded, challenge) else "all"
        subs = _per_team(graded, challenge).get(mine.team, [])
        scores = [_score(g.result, challenge, part) for g in subs]
        shown = ladder(scores, eta=eta)
        at = next(i for i, g in enumerate(subs) if g.submission_id == submission_id)
        before = shown[at - 1] if at else None
        outcome: Literal["set", "kept", "unscored"] = (
            "unscored" if scores[at] is None else "set" if shown[at] != before else "kept")
        steps.append(BoardStep(challenge=challenge, outcome=outcome, shown=shown[at], eta=eta, whole=part == "all"))
    return steps


def chosen(graded: Sequence[Graded], challenge: str, *, eta: float = ETA,
           finals: Mapping[tuple[str, str], int] | None = None) -> list[Graded]:
    """Each team's chosen submission for ``challenge`` (module docstring), by team name: the one
    the team chose as its final one (``finals``: ``(team, challenge) -> submission id``,
    :func:`grader.server.store.finals.finals_of`; Kaggle's "selected for final") where it is among
    the team's graded submissions of ``challenge``, else the default: the one that set its Ladder
    score (its best public score), else its latest graded one."""
    board = public_boards(graded, [challenge], eta=eta)[0]
    setters = {row.team: row.submission_id for row in board.rows}
    finals = finals or {}
    out = []
    for team, subs in sorted(_per_team(graded, challenge).items()):
        own = finals.get((team, challenge))
        pick = next((g for g in subs if g.submission_id == own), None) or next(
            (g for g in subs if g.submission_id == setters.get(team)), subs[-1])
        out.append(pick)
    return out


def private_boards(graded: Sequence[Graded], challenges: Sequence[str], *, eta: float = ETA,
                   finals: Mapping[tuple[str, str], int] | None = None) -> list[Board]:
    """The private board of each challenge with a graded submission, in ``challenges`` order, over
    each team's :func:`chosen` submission (its final one where it chose one: ``finals``).

    Each entry's ``folder`` is the chosen submission's id (as text), its ``submission`` the team.
    """
    boards = []
    for challenge in challenges:
        picks = chosen(graded, challenge, eta=eta, finals=finals)
        if not picks:
            continue
        part: Part = "private" if _split(graded, challenge) else "all"
        results = [g.result.model_copy(update={
            "submission": g.team,
            "notebooks": [nb for nb in g.result.notebooks if nb.challenge == challenge]}) for g in picks]
        found = leaderboards(results, [str(g.submission_id) for g in picks], part=part)
        boards += [b for b in found if b.challenge == challenge]
    return boards
