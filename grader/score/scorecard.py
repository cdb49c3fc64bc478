"""The scorecard: results of one submission, the schema of ``result.json`` (version 3).

Schema 2 (issue 15) adds the 95% Wilson intervals of every measured share (a model's accuracy
and its per-class recall and precision, the threshold checks' figures), a criterion's
``decision`` and ``borderline`` words, the public/private parts of the hidden test set and the
per-image correctness a paired comparison needs. Schema 3 (issue 25) adds a threshold
criterion's ``bar`` (what it compares with which threshold, so that a team's view decides it
again on the public part) and a new image's ``hidden_match``: from schema 3 ``dataset_match``
names a match with the *public* data only, a match with the hidden test set is
``hidden_match`` (the coach's). Schema 1 and 2 files (without them) are still read; in those a
``dataset_match`` may name a hidden image, so a team's view shows none of theirs. Schema 4
(issue 29) adds coach-graded criteria (written answers): their statuses ``awaiting`` and
``graded``, the verdict ``awaiting`` (:mod:`grader.score.verdict`) and the criterion's
``question``, ``answer`` and the coach's grade (:mod:`grader.score.grades`). The module stays
whole past 400 lines: it is the schema of ``result.json``, read in one place.

Pure: built from evidence and check results (:mod:`grader.score.verdict`), rendered elsewhere. A
submission passes when every required criterion of every notebook passes; its score is the sum
of earned points. A criterion that could not be measured (``not_measured``: the run stopped
before its evidence existed) counts as not passed, earns nothing, and carries the run's fix
instead of its own.

Cell numbers (``failed_cell``, :attr:`CellRow.number`, "in cell N" in messages) are the
student's own: the 1-based position of the cell in the notebook as the student sees it,
markdown cells included, the cell of parameters injected by the grader not counted (it is shown
in the timeline as "injected by the grader", without a number).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.score.bars import Bar
from grader.score.checks.registry import Decision
from grader.score.measure import Measurement, class_hits
from grader.score.rubric import RubricItem
from grader.score.stats import TOO_FEW_WIDTH, wilson_interval

__all__ = [
    "SCHEMA_VERSION",
    "CellRow",
    "CriterionResult",
    "CriterionStatus",
    "Environment",
    "ExecutionSummary",
    "History",
    "ModelReport",
    "NewImageRow",
    "NotebookResult",
    "PartClass",
    "PartReport",
    "Share",
    "SubmissionResult",
    "Verdict",
    "decode_predicted",
    "encode_predicted",
]

SCHEMA_VERSION: Literal[4] = 4
# awaiting: no required criterion failed, and one awaits the coach's grade (never shown as a pass)
Verdict = Literal["pass", "fail", "awaiting"]
# awaiting and graded: a coach-graded criterion whose answer is present, before and after the coach's grade
CriterionStatus = Literal["pass", "fail", "not_measured", "awaiting", "graded"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriterionResult(_Model):
    """One criterion as graded: ``status`` pass, fail or not_measured, ``points`` earned of
    ``max_points``, ``short`` a figure for the verdict line (``0.62 < 0.90``; may be empty),
    ``decision`` how a threshold criterion decides (``point`` or ``lower_bound``, see
    :class:`grader.score.rubric.Criterion`), ``borderline`` the words saying that the measured
    figure's 95% interval contains the threshold ("" when it does not; schema 2), ``bar``
    what a threshold criterion on the hidden test set compared (None for the others; schema 3)
    and ``of_run`` whether it was not measured because of the run's problem, which
    :attr:`ExecutionSummary.problem` states once (the scorecard's row points to it).

    A coach-graded criterion (schema 4, ``coach_graded`` True) also carries its ``question``, its
    ``rubric_items``, the team's ``answer`` (markdown, at most 20,000 characters; ``answer_cut``
    when more was cut; ``answer_cell`` the student's cell number) and ``answer_sha256``
    (:func:`grader.intake.answer_sha256`); once ``graded``, the coach's ``points``, ``comment`` and
    checked ``items`` (1-based numbers of ``rubric_items``), ``graded_sha256`` the hash of the
    answer the grade was given to. ``answer_changed``: the coach graded an earlier answer, and
    this one differs (:func:`grader.score.grades.carry_grades`); it awaits the coach again."""

    id: str
    title: str
    status: CriterionStatus
    required: bool
    points: float
    max_points: float
    message: str
    fix: str
    measured: dict[str, float | int | str] = {}
    short: str = ""
    decision: Decision = "point"
    borderline: str = ""
    bar: Bar | None = None
    of_run: bool = False
    coach_graded: bool = False
    question: str = ""
    rubric_items: list[RubricItem] = []
    answer: str | None = None
    answer_cut: bool = False
    answer_cell: int | None = None
    answer_sha256: str = ""
    comment: str = ""
    items: list[int] = []
    graded_sha256: str = ""
    answer_changed: bool = False

    @property
    def met(self) -> bool:
        """Whether it counts as met: passed, or graded by the coach with at least half its points."""
        return self.status == "pass" or (self.status == "graded" and self.points >= self.max_points / 2)


class CellRow(_Model):
    """One row of the cell timeline: ``index`` its 0-based position in the notebook as run
    (the injected cell counted), ``number`` the student's cell number (None for the injected
    cell, ``injected`` True)."""

    index: int
    status: str
    seconds: float | None
    source: str
    error: str | None
    number: int | None = None
    injected: bool = False


class ExecutionSummary(_Model):
    """How the notebook ran: status, message, failed cell, wall time (s), sandboxing, cells,
    and the probe's time (s) calling the contract after the last cell. ``problem`` and
    ``problem_fix``: why criteria were not measured and what to do, said once for all of them
    ("" when every criterion was measured); ``partial``: the run was stopped by a time limit and
    the contract's functions were called on what the cells had built by then, or (``restored_cells``,
    the student's numbers) on what the cells tagged ``grader-restore`` loaded in a fresh kernel."""

    status: str
    message: str
    failed_cell: int | None  # the student's cell number
    wall_s: float
    sandboxed: bool
    probe_status: str
    cells: list[CellRow]
    probe_s: float | None = None
    problem: str = ""
    problem_fix: str = ""
    partial: bool = False
    restored_cells: list[int] = []


class Share(_Model):
    """A measured share with its 95% Wilson score interval (see :mod:`grader.score.stats`).

    Attributes:
        value: the share ``k / n`` (0..1).
        low: lower end of the interval (0..1).
        high: upper end of the interval (0..1).
        k: images counted (correct ones, for an accuracy).
        n: images it is a share of.
    """

    value: float
    low: float
    high: float
    k: int
    n: int

    @classmethod
    def of(cls, k: int, n: int) -> Share | None:
        """The share of ``k`` in ``n`` with its interval; None when ``n`` is 0."""
        if n < 1:
            return None
        ci = wilson_interval(k, n)
        return cls(value=ci.value, low=ci.low, high=ci.high, k=k, n=n)

    def contains(self, threshold: float) -> bool:
        """Whether ``threshold`` lies inside the interval (ends included)."""
        return self.low <= threshold <= self.high


class PartClass(_Model):
    """One class's recall (per-class accuracy) on one part of the hidden test set: ``k`` of its
    ``n`` images there predicted as it; ``recall`` ``k / n`` with its 95% Wilson interval
    ``low``..``high`` (:func:`grader.score.stats.wilson_interval`), all three None when ``n`` is 0."""

    name: str
    k: int
    n: int
    recall: float | None = None
    low: float | None = None
    high: float | None = None


class PartReport(_Model):
    """A model's accuracy on one part of the hidden test set: ``public`` (shown on the
    leaderboard while an event runs) or ``private`` (revealed at its end), with its per-class
    recall on that part (``per_class``, the challenge's classes in order; empty in results
    written before it). An event shows teams the per-class detail of the public part only."""

    part: Literal["public", "private"]
    accuracy: Share
    per_class: list[PartClass] = []


def _part_classes(labels: Sequence[str], predictions: Sequence[str], public: Sequence[bool], inside: bool,
                  m: Measurement) -> list[PartClass]:
    """Per class of ``m``'s table, its recall on the images whose ``public`` flag is ``inside``
    (:func:`grader.score.measure.class_hits`); empty without one label and prediction per image."""
    if not labels or len(labels) != len(public) or len(predictions) != len(public):
        return []
    rows = []
    for hits in class_hits(labels, predictions, [r.name for r in m.rows], [p == inside for p in public]):
        share = Share.of(hits.k, hits.n)
        rows.append(PartClass(name=hits.name, k=hits.k, n=hits.n, recall=share.value if share else None,
                              low=share.low if share else None, high=share.high if share else None))
    return rows


class ModelReport(_Model):
    """A model's figures on the hidden test set, as :class:`grader.score.measure.Measurement`, with
    95% Wilson intervals (schema 2).

    Attributes:
        accuracy_ci: the accuracy with its interval and ``n`` (None in schema 1 files).
        per_class: per class: ``class``, ``support`` (its images), ``precision``, ``recall``
            (per-class accuracy), ``f1``; from schema 2 also ``recall_low``/``recall_high`` and
            ``precision_low``/``precision_high`` (absent where the class has no images, or no
            image was predicted as it) and ``predicted`` (the images predicted as the class: the
            ``n`` of its precision).
        parts: the accuracy on the public and the private part of the hidden test set.
        correct: per hidden test image, in the hidden test set's fixed order, ``1`` where the
            model was right and ``0`` where wrong: what paired comparisons between submissions
            need (McNemar's test), so a leaderboard is rebuilt from stored results. The
            grader's record: never shown to teams, never in Gradescope's file.
        public_mask: per hidden test image, in the same order, ``1`` where it is in the public
            part and ``0`` where in the private part (empty: no public/private split), so a
            paired comparison on one part uses that part's images only. The grader's record,
            like ``correct``.
        predicted: per hidden test image, in the same order, the class the model predicted: one
            character, the index of the class in :attr:`classes` in base 36 (``0``-``9`` then
            ``a``-``z``), ``-`` for an answer that is none of the challenge's classes (which come
            first in :attr:`classes`, the unknown answers after them); empty when not recorded
            (results before it, or more than 36 classes). What the shared-mistakes signal of
            :mod:`grader.integrity.pairs` reads. The grader's record, like ``correct``: never shown
            to teams, never in Gradescope's file.
    """

    role: Literal["predict", "transfer", "mlp", "mnist"]
    function: str
    accuracy: float
    n: int
    classes: list[str]
    per_class: list[dict[str, float | int | str]]
    confusion: list[list[int]]
    seconds: float | None
    inference_s: float | None = None
    accuracy_ci: Share | None = None
    parts: list[PartReport] = []
    correct: str = ""
    public_mask: str = ""
    predicted: str = ""

    @classmethod
    def of(cls, role: Literal["predict", "transfer", "mlp", "mnist"], function: str, m: Measurement,
           seconds: float | None, inference_s: float | None = None, *,
           correct: Sequence[bool] = (), public: Sequence[bool] | None = None,
           predictions: Sequence[str] = (), labels: Sequence[str] = ()) -> ModelReport:
        """The report of ``m``; ``correct`` per hidden image (its order), ``public`` per hidden
        image whether it is in the public part (None: the challenge has no public/private
        split), ``predictions`` per hidden image the class name the model answered (kept as
        :attr:`predicted`), ``labels`` per hidden image its true class (for each part's
        per-class recall; empty: none computed)."""
        per_class: list[dict[str, float | int | str]] = []
        for i, r in enumerate(m.rows):
            row: dict[str, float | int | str] = {"class": r.name, "support": r.support,
                                                 "precision": r.precision, "recall": r.recall,
                                                 "f1": r.f1}
            hits = m.confusion[i][i] if i < len(m.confusion) else 0
            predicted = sum(line[i] for line in m.confusion) if i < len(m.confusion) else 0
            row["predicted"] = predicted
            for name, n in (("recall", r.support), ("precision", predicted)):
                share = Share.of(hits, n)
                if share is not None:
                    row[f"{name}_low"], row[f"{name}_high"] = share.low, share.high
            per_class.append(row)
        parts: list[PartReport] = []
        if public is not None and len(public) == len(correct) and correct:
            for part, inside in (("public", True), ("private", False)):
                chosen = [c for c, p in zip(correct, public, strict=True) if p == inside]
                share = Share.of(sum(chosen), len(chosen))
                if share is not None:
                    parts.append(PartReport(part=part, accuracy=share,  # type: ignore[arg-type]
                                            per_class=_part_classes(labels, predictions, public, inside, m)))
        return cls(
            role=role, function=function, accuracy=m.accuracy, n=m.n, classes=list(m.classes),
            per_class=per_class, confusion=[list(row) for row in m.confusion], seconds=seconds,
            inference_s=inference_s, accuracy_ci=Share.of(round(m.accuracy * m.n), m.n),
            parts=parts, correct="".join("1" if c else "0" for c in correct),
            public_mask="".join("1" if p else "0" for p in public) if parts and public is not None else "",
            predicted=encode_predicted(predictions, [r.name for r in m.rows]),  # the challenge's classes
        )

    def too_few(self, row: dict[str, float | int | str]) -> bool:
        """Whether the class of ``row`` (one of :attr:`per_class`) has too few images to tell
        its recall: its interval is wider than :data:`grader.score.stats.TOO_FEW_WIDTH`
        (False for a schema 1 row, which has no interval)."""
        low, high = row.get("recall_low"), row.get("recall_high")
        if not isinstance(low, float | int) or not isinstance(high, float | int):
            return False
        return high - low > TOO_FEW_WIDTH

    def part(self, name: Literal["public", "private", "all"]) -> Share | None:
        """The accuracy on part ``name`` (``all``: the whole hidden test set)."""
        if name == "all":
            return self.accuracy_ci
        return next((p.accuracy for p in self.parts if p.part == name), None)


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_predicted(predictions: Sequence[str], classes: Sequence[str]) -> str:
    """``predictions`` (class names, one per hidden image) as :attr:`ModelReport.predicted`:
    one base-36 character per image, the index of its class in ``classes``, ``-`` for an answer
    that is no class; ``""`` for more than 36 classes."""
    if len(classes) > len(_BASE36):
        return ""
    index = {name: _BASE36[i] for i, name in enumerate(classes)}
    return "".join(index.get(p, "-") for p in predictions)


def decode_predicted(predicted: str) -> list[int]:
    """:attr:`ModelReport.predicted` as class indices (``-1`` for an answer that is no class).

    Raises:
        ValueError: a character that is neither base 36 nor ``-``.
    """
    out = []
    for ch in predicted:
        if ch == "-":
            out.append(-1)
        elif ch in _BASE36:
            out.append(_BASE36.index(ch))
        else:
            raise ValueError(f"not a recorded prediction: {ch!r}")
    return out


class NewImageRow(_Model):
    """A new image with its prediction; the thumbnail (a data URI) stays out of JSON.

    ``dataset_match``: the ``<class>/<file>`` of a *public* dataset image it copies (same content
    or a pHash within :data:`grader.execute.prepare.PHASH_MAX_DISTANCE`), shown to everyone (in schema 1
    and 2 results it may name a hidden image). ``hidden_match``: the hidden test image it copies,
    where no public one matched (schema 3): the coach's record only, never on a team's scorecard
    (naming it would tell the team a hidden image's class).
    """

    file: str
    prediction: str | None
    imagenet: str | None = None
    dataset_match: str | None
    error: str | None
    hidden_match: str | None = None
    thumbnail: str = Field(default="", exclude=True)


class History(_Model):
    source: str
    loss: list[float | None]
    val_loss: list[float | None]


class NotebookResult(_Model):
    """One notebook of a submission, graded against its challenge's rubric."""

    notebook: str
    challenge: str | None
    profile: str
    verdict: Verdict
    verdict_reason: str = ""
    score: float
    max_score: float
    criteria: list[CriterionResult]
    execution: ExecutionSummary
    models: list[ModelReport] = []
    new_images: list[NewImageRow] = []
    history: History | None = None
    figures_captured: int = 0
    claimed_accuracy: float | None = None
    claim_flagged: bool = False
    claim_line: str | None = None  # the printed line the claim was read from
    claim_kind: str | None = None  # test, validation, training or unknown (grader.evidence.claims.Claim)
    claim_cell: int | None = None  # the student's number of the cell that printed it (schema 2)
    claim_margin: float | None = None  # how far above the interval's upper end a claim is flagged
    notes: list[str] = []  # how the notebook was read and run (grader.intake.notebook.notebook_notes)
    loss_plot_svg: str = Field(default="", exclude=True)
    notebook_loss_plot: str = Field(default="", exclude=True)


class Environment(_Model):
    grader: str
    python: str
    platform: str
    device: str
    sandbox: str
    sandbox_warning: str | None = None


class SubmissionResult(_Model):
    """``result.json``: the whole scorecard of one submission."""

    # 1: before intervals, 2: before bars, 3: before written answers; still read
    schema_version: Literal[1, 2, 3, 4] = SCHEMA_VERSION
    submission: str
    path: str
    verdict: Verdict
    verdict_reason: str = ""
    score: float
    max_score: float
    notebooks: list[NotebookResult]
    problems: list[str] = []
    ignored: list[str] = []
    started: str
    finished: str
    environment: Environment
    # scored on the practice split of the public data (``grader check --practice``,
    # :mod:`grader.data.practice`), not on the hidden test set: labelled so on every output
    practice: bool = False
