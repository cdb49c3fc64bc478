"""What a team may see of its own result during an event, and how much that can tell it.

A team reads its scorecard minutes after each upload, so the scorecard is a channel back from the
hidden test set. While the event runs it carries no more about the hidden labels than the public
leaderboard's Ladder (:mod:`grader.server.web.ladder`; Blum & Hardt 2015, "The Ladder: A Reliable
Leaderboard for Machine Learning Competitions", ICML) plus one bit per threshold criterion.
Precisely, before the coach's Reveal a team's scorecard of submission ``s`` shows (:func:`team_view`):

1. **The board's step, nothing finer.** Of the hidden test set's figures, only what the Ladder did
   with ``s`` on the team's public board of each challenge, computed as the board computes it
   (:func:`grader.server.web.boards.board_steps`) and put in at serving time (:func:`with_board`):
   ``set`` (``s`` beat the team's shown score by more than ``eta``, or was its first score: the new
   shown score, the public accuracy rounded to a multiple of ``eta``, as the board shows it),
   ``kept`` ("no better than your team's score on the board": the shown score, unchanged; nothing
   of ``s``'s own) or ``unscored`` (no public score: the ``predict`` model gave no answers). No
   exact count, no interval, no per-class figure, no confusion matrix, no borderline words, for
   any model (every figure of :class:`~grader.score.scorecard.ModelReport` is dropped, not just hidden).
2. **Threshold criteria decided on the board's part** (:class:`~grader.score.scorecard.Bar`): the
   public part of the hidden test set (the whole set where it has no public/private split, as the
   board then scores), same threshold and decision, status and points only. One bit each about the
   public part, none about the private part. Verdicts, scores and reasons follow from them.
3. **Dataset matches with public data only** (``dataset_match`` of a schema 3 result); a match
   with the hidden test set (``hidden_match``) is the coach's, and a schema 1 or 2 result, whose
   ``dataset_match`` may name a hidden image, shows none.
4. Everything else as graded: the other criteria read no hidden label (the added class's
   held-out images all have its label; MNIST's test labels are public). A practice result
   (:mod:`grader.data.practice`: the practice split is public data) is shown whole, but for 3.

5. Written answers: the team's own, each graded criterion shown as awaiting the coach until the
   coach releases that question's grades (``released``).

After the Reveal (:func:`team_view` with ``revealed``) a team sees what the coach's scorecard
shows of the hidden test set (whole-set and private figures, per-class recall, the confusion
matrix, the criteria as graded), but for rule 3 and the printed-claim check (the coach's).

The event server stores both scorecards of a submission, rendered when its job finishes (with the
loss plot and thumbnails that ``result.json`` does not keep), in one text (:func:`pack`), and
serves the one the event's state calls for (:func:`unpack`, :func:`with_board`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from grader.report.jinja import template
from grader.score import (
    Bar,
    CriterionResult,
    ModelReport,
    NewImageRow,
    NotebookResult,
    SubmissionResult,
    hide_unreleased,
    rescored,
    submission_reason,
    submission_verdict,
)

__all__ = ["AFTER_REVEAL", "BACK_SLOT", "BOARD_SLOT", "HEADING_SLOT", "BoardStep", "decide_on", "pack", "run_log",
           "served", "team_view", "unpack", "with_board"]

# where a bounded team scorecard takes the board's steps (an HTML comment: a submission's text
# reaches the HTML escaped, so it can never write one)
BOARD_SLOT = "<!--grader:board-steps-->"
# between the two team scorecards in the stored text: the one before the Reveal, then the one after
AFTER_REVEAL = "<!--grader:team-scorecard-after-reveal-->"

# the fix of a per-class criterion on a team's scorecard before the Reveal: the rubric's fix may point to
# the scorecard's confusion matrix or per-class table, which only the coach's scorecard has until then
_TEAM_RECALL_FIX = ("Find the weak classes on your own validation data: print sklearn.metrics.classification_report "
                    "and confusion_matrix in your notebook (this scorecard shows the per-class figures of the hidden "
                    "test set only after the coach reveals the results). Rare classes need more examples, class "
                    "weights or augmentation.")
# where a served team scorecard takes the submission's number and file (in its heading) and the link
# back to the team's page (grader.report.teamcard.served); HTML comments, as BOARD_SLOT
HEADING_SLOT = "<!--grader:served-heading-->"
BACK_SLOT = "<!--grader:served-back-->"
_TITLE = re.compile(r"<title>[^<]*</title>")
# measured fields of a criterion that are figures on the hidden test set as a whole
_WHOLE_SET_FIGURES = ("accuracy", "worst_recall")
Part = Literal["public", "all"]


@dataclass(frozen=True)
class BoardStep:
    """What one submission did to its team's public board of one challenge (the Ladder's step).

    Attributes:
        challenge: the board's challenge.
        outcome: ``set`` (it set the team's shown score), ``kept`` (it had a score that did not
            beat the shown one by more than ``eta``), ``unscored`` (it had no score).
        shown: the team's shown score after it (0..1, a multiple of ``eta``); None: none yet.
        eta: the board's margin and rounding step.
        whole: the board is scored on the whole hidden test set (it has no public/private split).
    """

    challenge: str
    outcome: Literal["set", "kept", "unscored"]
    shown: float | None
    eta: float
    whole: bool = False

    def percent(self) -> str:
        """:attr:`shown` as the board writes it: a percentage with ``eta``'s precision ("83%" for
        ``eta`` 0.01, "83.5%" for 0.005); "–" for none."""
        if self.shown is None:
            return "–"
        places = max(0, -Decimal(repr(self.eta)).normalize().as_tuple().exponent - 2)  # type: ignore[operator]
        return f"{100 * self.shown:.{places}f}%"

    def step(self) -> str:
        """``eta`` in percentage points: "1 point", "0.5 points"."""
        points = f"{100 * self.eta:.6g}"
        return f"{points} point{'' if points == '1' else 's'}"


def _board_part(nb: NotebookResult) -> Part:
    """The part of the hidden test set the board scores ``nb`` on: ``public`` where its models
    record the split, else ``all`` (the board then says it is scored on the whole set)."""
    return "public" if any(m.parts for m in nb.models) else "all"


def decide_on(bar: Bar, decision: str, model: ModelReport | None, part: Part) -> bool | None:
    """Whether ``bar`` is met by ``model`` on ``part`` of the hidden test set, decided as the
    threshold checks decide (:func:`grader.score.checks.accuracy.judge`: the share, or with ``decision``
    ``lower_bound`` the lower end of its 95% Wilson interval, at least ``bar.threshold``).

    ``accuracy``: the model's accuracy on ``part``. ``worst_recall``: every class with images in
    ``part`` has recall (per-class accuracy) at least the threshold. None where ``model`` does
    not record the figure (no model, a result before per-part recall).
    """
    if model is None:
        return None
    lower = decision == "lower_bound"
    if bar.figure == "accuracy":
        share = model.part(part)
        if share is None:
            return None
        return (share.low if lower else share.value) >= bar.threshold
    values: list[object]
    if part == "public":
        rows = next((p.per_class for p in model.parts if p.part == "public"), [])
        values = [(r.low if lower else r.recall) for r in rows if r.n > 0]
    else:
        values = [row.get("recall_low" if lower else "recall") for row in model.per_class
                  if isinstance(row.get("support"), int) and int(row["support"]) > 0]
    shares = [float(v) for v in values if isinstance(v, float | int)]
    if not shares or len(shares) != len(values):
        return None
    return all(v >= bar.threshold for v in shares)


def _decided(c: CriterionResult, nb: NotebookResult, part: Part, schema: int) -> CriterionResult:
    """``c`` as a team sees it before the Reveal (module docstring, rule 2); ``schema`` the
    result's schema version (from 3 a criterion without a bar judged no share: it failed before,
    on answers that are no class names or too few, and its message states no figure)."""
    where = "the public part" if part == "public" else "the hidden test set"
    later = "figures when the coach reveals the results"
    if c.status == "not_measured" or not any(key in c.measured for key in _WHOLE_SET_FIGURES):
        return c
    model = next((m for m in nb.models if c.bar is not None and m.role == c.bar.role), None)
    ok = decide_on(c.bar, c.decision, model, part) if c.bar is not None else None
    if c.bar is None or ok is None:  # no bar (it failed before judging a share, or an older result)
        if c.bar is None and schema >= 3:
            return c.model_copy(update={"short": "", "borderline": "", "measured": {}})
        return c.model_copy(update={
            "message": f"{'met' if c.status == 'pass' else 'not met'} on the hidden test set; {later}",
            "short": "", "borderline": "", "measured": {}})
    bar = f"{'recall of every class' if c.bar.figure == 'worst_recall' else 'accuracy'} {c.bar.threshold:.2f}"
    return c.model_copy(update={
        "status": "pass" if ok else "fail", "points": c.max_points if ok else 0.0,
        "message": f"{'met' if ok else 'not met'} on {where} (needs {bar}); {later}",
        "short": "", "borderline": "", "measured": {},
        "fix": _TEAM_RECALL_FIX if c.bar.figure == "worst_recall" and c.fix else c.fix})


def _no_figures(m: ModelReport) -> ModelReport:
    """``m`` without a figure of the hidden test set (its role and function name kept)."""
    if m.role == "mnist":  # the MNIST test set: public data
        return m
    return m.model_copy(update={"accuracy": 0.0, "n": 0, "per_class": [], "confusion": [], "seconds": None,
                                "inference_s": None, "accuracy_ci": None, "parts": [], "correct": "",
                                "public_mask": "", "predicted": ""})


def _matches(nb: NotebookResult, schema: int) -> list[NewImageRow]:
    """``nb``'s new images with public matches only (module docstring, rule 3)."""
    return [im.model_copy(update={"hidden_match": None,
                                  "dataset_match": im.dataset_match if schema >= 3 else None})
            for im in nb.new_images]


def team_view(result: SubmissionResult, *, revealed: bool = False,
              released: Collection[str] | None = ()) -> SubmissionResult:
    """``result`` as its team may see it (module docstring): before the Reveal bounded (rules
    1-4), after it (``revealed``) with every figure but the coach's records. ``result`` itself is
    not changed (results are frozen; a copy is returned).

    Written answers (rule 5): the team sees its own answers, and the coach's grade of a question
    only once the coach has released it: ``released`` holds the released questions'
    :func:`grader.score.grade_key` (``<challenge>:<criterion id>``); every other graded criterion
    shows as awaiting the coach (:func:`grader.score.hide_unreleased`). None: every grade shown."""
    result = hide_unreleased(result, released)
    notebooks = []
    for nb in result.notebooks:
        nb = _no_server_folders(nb.model_copy(update={"new_images": _matches(nb, result.schema_version)}))
        if revealed or result.practice:
            notebooks.append(nb)
            continue
        part = _board_part(nb)
        criteria = [_decided(c, nb, part, result.schema_version) for c in nb.criteria]
        notebooks.append(rescored(nb.model_copy(update={
            "criteria": criteria, "models": [_no_figures(m) for m in nb.models], "claimed_accuracy": None,
            "claim_flagged": False, "claim_line": None, "claim_margin": None})))
    if revealed or result.practice:
        return result.model_copy(update={"notebooks": notebooks})
    reason = result.verdict_reason if result.problems or not notebooks else submission_reason(notebooks, [])
    return result.model_copy(update={"notebooks": notebooks, "verdict": submission_verdict(notebooks, result.problems),
                                     "verdict_reason": reason, "score": sum(nb.score for nb in notebooks)})


def _no_server_folders(nb: NotebookResult) -> NotebookResult:
    """``nb`` with the folders of every server path cut from the texts a team reads (a cell's own
    error may print the sandbox's mount table: the hidden images' cache folder, the grader's
    installation; :func:`grader.evidence.runfacts.without_folders`), and its run time in whole seconds
    (the hidden step's duration is the one figure the kernel sets after the gate opens:
    :mod:`grader.sandbox.gate`)."""
    from grader.evidence import without_folders

    execution = nb.execution.model_copy(update={
        "message": without_folders(nb.execution.message), "wall_s": float(round(nb.execution.wall_s)),
        "problem": without_folders(nb.execution.problem), "problem_fix": without_folders(nb.execution.problem_fix),
        "cells": [c.model_copy(update={"error": without_folders(c.error) if c.error else c.error})
                  for c in nb.execution.cells]})
    criteria = [c.model_copy(update={"message": without_folders(c.message), "fix": without_folders(c.fix)})
                for c in nb.criteria]
    return nb.model_copy(update={"execution": execution, "criteria": criteria,
                                 "verdict_reason": without_folders(nb.verdict_reason)})


def pack(before: str, after: str) -> str:
    """The stored text of a submission's two team scorecards: the one shown before the Reveal
    (with :data:`BOARD_SLOT`), then :data:`AFTER_REVEAL`, then the one shown after it."""
    return f"{before}\n{AFTER_REVEAL}\n{after}"


def unpack(stored: str, *, revealed: bool) -> str | None:
    """The team scorecard to serve from ``stored`` (:func:`pack`): the one after the Reveal when
    ``revealed``, else the one before it (its :data:`BOARD_SLOT` still to fill, :func:`with_board`).
    None where ``stored`` is not such a text (stored before it existed: render the result again)."""
    before, mark, after = stored.partition(AFTER_REVEAL)
    if not mark or BOARD_SLOT not in before:
        return None
    return after.lstrip("\n") if revealed else before.rstrip("\n")


def with_board(html: str, steps: Sequence[BoardStep]) -> str:
    """``html`` (a team scorecard before the Reveal) with the board's ``steps`` drawn in its
    :data:`BOARD_SLOT` (``_board.html.j2``); ``html`` as it is where it has no slot."""
    drawn = str(template("_board.html.j2").render(steps=steps))
    return html.replace(BOARD_SLOT, drawn, 1)


def served(html: str, *, number: int | None, filename: str, team: str, practice: bool = False,
           regrade_of: int | None = None) -> str:
    """``html`` (a team scorecard) as the event server serves it (``_served.html.j2``): its
    ``<title>`` and heading name the submission by its team's number and file (every card of a team
    once had one title), and a link leads back to the team's page (:data:`BACK_SLOT`; a plain
    link: scorecards are served without scripts). A card stored before the slots existed gets
    its title only.

    Args:
        html: the team scorecard, its board's steps already drawn (:func:`with_board`).
        number: the submission's number among its team's own (1, 2, ...); None for a coach's
            re-grade or a practice check, which have none.
        filename: the name the team sent it under.
        team: the team's name.
        practice: a practice check (:mod:`grader.data.practice`).
        regrade_of: for a coach's re-grade, the team's number of the submission it re-graded.
    """
    parts = template("_served.html.j2").make_module({"number": number, "filename": filename, "team": team,
                                                      "practice": practice, "regrade_of": regrade_of})
    title = str(parts.title()).strip()
    html = _TITLE.sub(lambda _: title, html, count=1)
    return html.replace(HEADING_SLOT, str(parts.heading()).strip(), 1).replace(BACK_SLOT, str(parts.back()).strip(), 1)


def run_log(result: SubmissionResult | None, *, revealed: bool, header: Sequence[str], state: str = "done",
            error: str | None = None, printed: Mapping[str, Mapping[int, str]] | None = None,
            released: Collection[str] | None = ()) -> str:
    """The run's log a team downloads (plain text): ``header`` (lines naming the submission), then,
    per notebook of ``result`` as its team may see it (:func:`team_view`, server folders cut), the
    run's status and problem, how the notebook was read, and each of the student's cells: its
    number, status, time, first line of source and error. Only what the team's scorecard shows:
    nothing of the probe (its status, its time, its answers), nothing the kernel produced after
    the hidden images' gate opened (:mod:`grader.sandbox.gate`), and the grader's injected cell
    only as such. For a submission without a result (failed or cancelled) its ``state`` and ``error``.

    ``printed`` (notebook file name -> cell index -> text, :func:`grader.pipeline.job.printed_of`:
    from the copy of the executed notebook made before the gate opened) adds what each cell
    printed, indented under it; without it the log says the printed text was not kept.
    ``released``: the questions whose grades the coach released (:func:`team_view`).
    """
    lines = [*header, ""]
    if result is None:
        lines.append(f"State: {state}." + (f" {error}" if error else ""))
        return "\n".join(lines) + "\n"
    seen = team_view(result, revealed=revealed, released=released)
    lines.append(f"Verdict: {seen.verdict.upper()}, {seen.score:g} of {seen.max_score:g} points "
                 "(as your scorecard shows them).")
    lines += [f"Problem: {p}" for p in seen.problems]
    for nb in seen.notebooks:
        ex = nb.execution
        lines += ["", f"== {nb.notebook} (challenge {nb.challenge or 'unknown'}, profile {nb.profile}): "
                      f"run {ex.status.replace('_', ' ')}, {ex.wall_s:.0f} s"]
        if ex.message and ex.status != "ok":
            lines.append(f"Run: {ex.message}")
        if ex.problem:
            lines.append(f"Problem: {ex.problem}" + (f" What to do: {ex.problem_fix}" if ex.problem_fix else ""))
        lines += [f"Note: {n}" for n in nb.notes]
        for cell in ex.cells:
            if cell.status == "skipped":
                continue
            seconds = "–" if cell.seconds is None else f"{cell.seconds:.1f} s"
            if cell.injected:
                lines.append(f"[injected by the grader: DATA_DIR, DEVICE, PROFILE, NEW_IMAGES_DIR, MODEL_DIR] "
                             f"{cell.status}, {seconds}")
                continue
            first = next((x for x in cell.source.splitlines() if x.strip()), "")
            lines.append(f"[cell {cell.number if cell.number is not None else cell.index}] {cell.status}, {seconds}: "
                         f"{first[:100]}")
            lines += [f"    | {x}" for x in (printed or {}).get(nb.notebook, {}).get(cell.index, "").splitlines()]
            if cell.error:
                lines += [f"    {x}" for x in cell.error.splitlines()]
    if printed is None:
        lines += ["", "The text the cells printed was not kept for this submission (a result reused from an earlier "
                      "grading, or graded before the server kept it): run the notebook yourself to see its output."]
    return "\n".join(lines) + "\n"
