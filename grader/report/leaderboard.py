"""Leaderboards of a run: one per challenge, one entry per team, ranked like for like.

Pure: stored results in (``result.json``, schema 1 or 2), ranked boards out; rendered by
:mod:`grader.report.render`. The rules, which are the contract:

- **One entry per team per challenge.** Every submission (team) that handed in a notebook for a
  challenge has one entry on that challenge's board: its *best* notebook for it, the one whose
  ``predict`` model has the highest accuracy on the ranked part of the hidden test set; ties by
  points earned, then by notebook name. The team's other notebooks for that challenge are listed
  beside the entry (:attr:`Entry.also`) and ranked nowhere; a notebook without a challenge is on
  no board. So a notebook handed in twice counts once, and a stray scratch notebook for another
  challenge cannot lift a team on this one.
- **The figure.** The ``predict`` model's accuracy on the chosen part (:data:`PARTS`): ``all``
  (the whole hidden test set; a schema-1 result's interval is computed from its accuracy and
  ``n``), ``public`` or ``private`` (:attr:`grader.score.scorecard.ModelReport.parts`), with its 95%
  Wilson interval and ``n``. The verdict and the points are shown beside it, never summed
  across challenges.
- **Order.** Highest figure first; ties by points, then by submission name. Entries without the
  figure (no ``predict`` model measured; for ``public``/``private`` a schema-1 result or a
  challenge without a public/private split) come last, in name order, each with a note.
- **Rank groups.** Walk down the ranking. The first entry opens group 1. Each next entry joins
  the current group when it can be compared with the group's *top* entry (the group's first)
  and McNemar's exact test between the two (:func:`grader.score.stats.mcnemar_exact`) gives
  ``p >= 0.05`` (:data:`ALPHA`); otherwise it opens the next group. Comparing with the group's
  top rather than with the entry just above means a chain of small steps cannot tie two entries
  that differ. Entries without a figure are in no group.
- **Comparable.** Two entries are compared when both carry per-image correctness
  (:attr:`~grader.score.scorecard.ModelReport.correct`) of equal length: the same hidden test images
  in the same order. For ``public``/``private`` the vectors are restricted to that part's images
  by :attr:`~grader.score.scorecard.ModelReport.public_mask` when both carry the same mask; when
  either lacks it, the whole vectors are compared and the board says so in a note; different
  masks are not comparable. An entry that cannot be compared with its group's top opens a new
  group and is marked not compared (:attr:`Entry.compared`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from grader.score import ModelReport, NotebookResult, Share, SubmissionResult, Verdict, mcnemar_exact

__all__ = ["ALPHA", "PARTS", "Board", "Entry", "Part", "Rate", "best_notebooks", "figure", "leaderboards",
           "pass_rates"]

log = logging.getLogger(__name__)

Part = Literal["all", "public", "private"]
PARTS: tuple[Part, ...] = get_args(Part)
ALPHA = 0.05  # significance level of the paired test that separates rank groups

WHOLE_VECTOR_NOTE = ("Some results do not record which hidden images are public and which private: those pairs "
                     "were compared on the whole hidden test set, not on the ranked part alone.")
NOT_COMPARED_NOTE = ("Entries marked \u201cnot compared\u201d have no per-image results to pair with the entry "
                     "above them (result.json schema 1, or another hidden test set), so no test places them in a "
                     "group: each opens its own.")


@dataclass(frozen=True)
class Entry:
    """One team on one challenge's board.

    Attributes:
        position: 1-based place on the board.
        group: 1-based rank group (None: not ranked, no figure).
        label: the rank as shown: ``"3"``, or the group's places ``"2 = 3"`` (``"2 = … = 6"`` for
            more than three); ``"–"`` when not ranked.
        submission: the team.
        folder: the team's output folder (its scorecard is ``folder/scorecard.html``).
        notebook: the ranked notebook's file name.
        verdict: that notebook's verdict.
        points: its points earned; ``max_points`` its points possible.
        figure: the ranked accuracy (on the board's part) with interval and ``n``; None: no figure.
        all, public, private: the accuracy on each part (None where not measured or not split).
        p_value: McNemar's exact p against the group's top entry (None: the top, or not compared).
        compared: False when the entry could not be paired with its group's top.
        note: why the entry is not ranked, or how it was compared ("" when nothing to say).
        also: the team's other notebooks for this challenge, not ranked.
        result: the ranked notebook as graded.
    """

    position: int
    group: int | None
    label: str
    submission: str
    folder: str
    notebook: str
    verdict: Verdict
    points: float
    max_points: float
    figure: Share | None
    all: Share | None
    public: Share | None
    private: Share | None
    p_value: float | None
    compared: bool
    note: str
    also: tuple[str, ...]
    result: NotebookResult

    @property
    def points_share(self) -> str:
        """The points as a share: ``"10/12 (83%)"``; ``"0/0"`` for a notebook with no criteria."""
        if self.max_points <= 0:
            return f"{self.points:g}/{self.max_points:g}"
        return f"{self.points:g}/{self.max_points:g} ({100 * self.points / self.max_points:.0f}%)"


@dataclass(frozen=True)
class Rate:
    """The pass rate of one criterion over a board's entries (each team's ranked notebook).

    Attributes:
        id, title: the criterion's.
        passed: entries that met it (:attr:`grader.score.CriterionResult.met`).
        total: entries in all.
        awaiting: entries whose written answer awaits the coach's grade (status ``awaiting``):
            neither passed nor failed yet.
    """

    id: str
    title: str
    passed: int
    total: int
    awaiting: int = 0

    @property
    def failed(self) -> int:
        """Entries that did not meet it, those awaiting the coach left out."""
        return self.total - self.passed - self.awaiting

    @property
    def rate(self) -> float | None:
        """``passed`` over the entries decided (``total`` less ``awaiting``); None when none is."""
        decided = self.total - self.awaiting
        return self.passed / decided if decided else None


@dataclass(frozen=True)
class Board:
    """One challenge's leaderboard.

    Attributes:
        challenge: the challenge id.
        part: the part of the hidden test set it ranks by (:data:`PARTS`).
        entries: ranked entries, then the unranked ones.
        rates: per criterion of the challenge's rubric, the pass rate over the entries (those
            awaiting the coach's grade counted apart).
        notes: footnotes on how entries were compared.
    """

    challenge: str
    part: Part
    entries: tuple[Entry, ...]
    rates: tuple[Rate, ...]
    notes: tuple[str, ...]

    @property
    def groups(self) -> int:
        """How many rank groups the board has."""
        return len({e.group for e in self.entries if e.group is not None})


def _predict(nb: NotebookResult) -> ModelReport | None:
    return next((m for m in nb.models if m.role == "predict"), None)


def figure(model: ModelReport | None, part: Part) -> Share | None:
    """``model``'s accuracy on ``part``; for ``all`` in a schema-1 result (no interval stored),
    the share computed from its accuracy and ``n``. None: no model, or no such part."""
    if model is None:
        return None
    found = model.part(part)
    if found is None and part == "all" and model.n > 0:
        found = Share.of(round(model.accuracy * model.n), model.n)
    return found


def best_notebooks(result: SubmissionResult, *, part: Part = "all") -> dict[str, tuple[NotebookResult, list[str]]]:
    """Per challenge, the submission's best notebook for it and its other notebooks' names.

    Best: highest ``predict`` accuracy on ``part`` (none measured counts lowest), then most
    points, then the first notebook name in sort order. Notebooks without a challenge are left out.
    """
    by_challenge: dict[str, list[NotebookResult]] = {}
    for nb in result.notebooks:
        if nb.challenge:
            by_challenge.setdefault(nb.challenge, []).append(nb)
    chosen: dict[str, tuple[NotebookResult, list[str]]] = {}
    for challenge, notebooks in by_challenge.items():
        def key(nb: NotebookResult) -> tuple[float, float, str]:
            share = figure(_predict(nb), part)
            return (-(share.value if share else -1.0), -nb.score, nb.notebook)
        ordered = sorted(notebooks, key=key)
        chosen[challenge] = (ordered[0], [nb.notebook for nb in ordered[1:]])
    return chosen


def _vector(model: ModelReport | None, part: Part) -> tuple[str, str] | None:
    """``(correct, public_mask)`` of ``model``; None when it has no per-image results."""
    if model is None or not model.correct:
        return None
    return model.correct, model.public_mask if part != "all" else ""


def _paired(a: tuple[str, str] | None, b: tuple[str, str] | None,
            part: Part) -> tuple[float | None, bool]:
    """McNemar's exact p between two entries' vectors, and whether the whole vectors stood in
    for the part (a mask missing). p is None when the two cannot be compared."""
    if a is None or b is None or len(a[0]) != len(b[0]):
        return None, False
    (ca, ma), (cb, mb) = a, b
    whole = False
    if part != "all":
        if ma and mb:
            if ma != mb or len(ma) != len(ca):
                return None, False
            keep = "1" if part == "public" else "0"
            ca = "".join(c for c, m in zip(ca, ma, strict=True) if m == keep)
            cb = "".join(c for c, m in zip(cb, mb, strict=True) if m == keep)
        else:
            whole = True
    return mcnemar_exact([c == "1" for c in ca], [c == "1" for c in cb]), whole


def _label(places: Sequence[int]) -> str:
    if len(places) == 1:
        return str(places[0])
    if len(places) <= 3:
        return " = ".join(map(str, places))
    return f"{places[0]} = \u2026 = {places[-1]}"


def _missing_note(model: ModelReport | None, part: Part) -> str:
    if model is None:
        return "not ranked: no accuracy of predict on the hidden test set was measured"
    return (f"not ranked: no {part} part recorded (result.json from before the public/private split, "
            "or a challenge without one)")


def _board(challenge: str, part: Part, picks: list[tuple[SubmissionResult, str, NotebookResult, list[str]]]
           ) -> Board:
    rows = []
    for result, folder, nb, also in picks:
        model = _predict(nb)
        rows.append((result, folder, nb, also, model, figure(model, part)))
    ranked = sorted((r for r in rows if r[5] is not None),
                    key=lambda r: (-r[5].value if r[5] else 0.0, -r[2].score, r[0].submission))
    unranked = sorted((r for r in rows if r[5] is None), key=lambda r: r[0].submission)

    groups: list[int] = []
    p_values: list[float | None] = []
    compared: list[bool] = []
    whole_used = False
    top = 0
    for i, row in enumerate(ranked):
        if i == 0:
            groups.append(1)
            p_values.append(None)
            compared.append(True)
            continue
        p, whole = _paired(_vector(ranked[top][4], part), _vector(row[4], part), part)
        whole_used = whole_used or whole
        compared.append(p is not None)
        p_values.append(p)
        if p is not None and p >= ALPHA:
            groups.append(groups[top])
        else:
            top = i
            groups.append(groups[-1] + 1)
    places: dict[int, list[int]] = {}
    for position, number in enumerate(groups, start=1):
        places.setdefault(number, []).append(position)

    entries: list[Entry] = []
    for position, (result, folder, nb, also, model, share) in enumerate([*ranked, *unranked], start=1):
        ranked_row = position <= len(ranked)
        group = groups[position - 1] if ranked_row else None
        note = "" if ranked_row else _missing_note(model, part)
        if ranked_row and not compared[position - 1]:
            note = "not compared"
        entries.append(Entry(
            position=position, group=group, label=_label(places[group]) if group is not None else "\u2013",
            submission=result.submission, folder=folder, notebook=nb.notebook, verdict=nb.verdict,
            points=nb.score, max_points=nb.max_score, figure=share,
            all=figure(model, "all"), public=figure(model, "public"), private=figure(model, "private"),
            p_value=p_values[position - 1] if ranked_row else None,
            compared=compared[position - 1] if ranked_row else False, note=note, also=tuple(also), result=nb))

    notes = []
    if whole_used:
        notes.append(WHOLE_VECTOR_NOTE)
    if any(e.note == "not compared" for e in entries):
        notes.append(NOT_COMPARED_NOTE)
    return Board(challenge=challenge, part=part, entries=tuple(entries),
                 rates=pass_rates(e.result for e in entries),
                 notes=tuple(notes))


def pass_rates(notebooks: Iterable[NotebookResult]) -> tuple[Rate, ...]:
    """The pass rate of each criterion over ``notebooks`` (a board's: each team's ranked one), in
    the order the criteria first appear: met (:attr:`grader.score.CriterionResult.met`: passed, or
    graded by the coach with at least half its points), awaiting the coach's grade (status
    ``awaiting``: counted apart, neither passed nor failed), or else not met."""
    counts: dict[str, list[int]] = {}
    titles: dict[str, str] = {}
    for nb in notebooks:
        for c in nb.criteria:
            titles.setdefault(c.id, c.title)
            passed, total, awaiting = counts.get(c.id, [0, 0, 0])
            counts[c.id] = [passed + c.met, total + 1, awaiting + (c.status == "awaiting")]
    return tuple(Rate(id=k, title=titles[k], passed=v[0], total=v[1], awaiting=v[2]) for k, v in counts.items())


def leaderboards(results: Sequence[SubmissionResult], folders: Sequence[str] | None = None, *,
                 part: Part = "all") -> list[Board]:
    """The run's boards, one per challenge (in challenge id order), by the module's rules.

    Args:
        results: one result per submission (schema 1 or 2).
        folders: each submission's output folder, in the same order (default: the submission
            names).
        part: the part of the hidden test set to rank by: ``all``, ``public`` or ``private``.

    Returns:
        the boards; a challenge appears when some submission has a notebook for it.

    Raises:
        ValueError: ``part`` is not one of :data:`PARTS`, or ``folders`` differs in length.
    """
    if part not in PARTS:
        raise ValueError(f"unknown leaderboard part {part!r}; choose one of {', '.join(PARTS)}")
    names = list(folders) if folders is not None else [r.submission for r in results]
    if len(names) != len(results):
        raise ValueError(f"{len(results)} results but {len(names)} folders")
    picks: dict[str, list[tuple[SubmissionResult, str, NotebookResult, list[str]]]] = {}
    for result, folder in zip(results, names, strict=True):
        for challenge, (nb, also) in best_notebooks(result, part=part).items():
            picks.setdefault(challenge, []).append((result, folder, nb, also))
    boards = [_board(challenge, part, picks[challenge]) for challenge in sorted(picks)]
    log.debug("leaderboards by %s: %s", part, ", ".join(f"{b.challenge} ({len(b.entries)})" for b in boards))
    return boards
