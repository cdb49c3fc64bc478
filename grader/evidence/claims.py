"""What the notebook says about itself: accuracy figures it printed, compared with measurement.

A notebook can print anything; the grader never trusts it. It reads the printed accuracy claims
so that the scorecard can show a coach when the notebook's own figure and the grader's
measurement on the hidden test set are far apart (a leaky validation split, a forged print).

Only a claim about held-out data can be compared with a measurement on the hidden test set: a
training accuracy is higher by nature (Keras prints it beside ``val_accuracy`` in every progress
line). So each claim is read with its kind (test, validation, training, unknown) and whether the
parser is certain of it; only a certain test or validation claim can be flagged, anything else is
shown for the coach to read.

A measurement on the hidden test set is itself uncertain, so a claim is judged against the 95%
interval of the measured accuracy (:mod:`grader.score.stats`): it is flagged when it lies above the
interval's upper end by more than a margin (the rubric's ``claim_margin``, 0.05 by default).
And a notebook often trains several models: the claim compared is the one that belongs to the
model measured, read by a stated rule (:func:`compare_claim`) from the cell that defines the
predict function (:func:`defining_cell`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

__all__ = ["PRINTED_CELL_CHARS", "PRINTED_CHARS", "Claim", "ClaimCheck", "ClaimKind", "accuracy_claims",
           "as_terminal_shows", "cell_outputs", "compare_claim", "defining_cell", "notebook_claim", "printed_cells",
           "read_claims"]

ClaimKind = Literal["test", "validation", "training", "unknown"]

# ANSI escapes (Keras 3 prints bold progress lines) and the backspaces of old progress bars
_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[A-Za-z]|\x1b\][^\x07\x1b\n]{0,200}\x07|[\x08]")
# "accuracy", "acc", "val_accuracy", "test_acc", "Validation-Accuracy"; "accurate" is not one
_KEYWORD = re.compile(r"(?<![a-z])(?:(?P<prefix>val|valid|validation|test|train|training)[_-])?"
                      r"acc(?:uracy)?(?![a-z])")
_PREFIX_KIND: dict[str, ClaimKind] = {"val": "validation", "valid": "validation",
                                      "validation": "validation", "test": "test",
                                      "train": "training", "training": "training"}
_KIND_WORDS = re.compile(r"(?<![a-z])(?:(?P<test>test|testing)|"
                         r"(?P<validation>val|valid|validation|dev|holdout|held[- ]out)|"
                         r"(?P<training>train|training))(?![a-z])")
# a Keras progress line: "10/10 [====...] - 3s 250ms/step - loss: ...", Keras 3's "━━━" bar,
# or verbose=2's "10/10 - 3s - loss: ..."
_KERAS_PROGRESS = re.compile(r"^\s*(?P<step>\d+)/(?P<total>\d+)\s*(?:\[[=>.]*\]|[━─]+|-)\s.*\s-\s[a-z_]+:\s*[\d.]",
                             re.IGNORECASE)
_KERAS_EPOCH = re.compile(r"^\s*Epoch \d+/\d+\s*$")
# where the figure of a claim may stand: up to the next accuracy keyword or loss
_WINDOW_END = re.compile(r"(?<![a-z])(?:[a-z]+[_-])?(?:acc(?:uracy)?|loss)(?![a-z])")
_NUMBER = re.compile(r"(?<![\d.])(?P<value>\d+(?:\.\d+)?|\.\d+)(?![\d.]*\d)")
_COUNTER = re.compile(r"(?<![a-z])(?:epochs?|steps?|iter(?:ation)?s?|batch(?:es)?|folds?|rounds?|top)"
                      r"[\s#:=\[(-]*$")
_FRACTION = re.compile(r"\s*/\s*(?P<total>\d+)(?![\d.])(?:\s*\(\s*(?P<pct>\d+(?:\.\d+)?)\s*%\s*\))?")
_COUNT_NOUN = re.compile(r"\s*(?:[a-z]+\s+)?(?:images|samples|examples|photos|pictures|items|"
                         r"batches|epochs|steps)\b")
_PERCENT = re.compile(r"\s*%")
_CLAUSE_BREAK = re.compile(r"[,;|]|\s-\s")
_LINE_CHARS = 1000  # what is read of each printed line
_CLAUSE_REACH = 80  # characters either side of a keyword read for its kind


@dataclass(frozen=True)
class Claim:
    """One accuracy figure printed by the notebook.

    Attributes:
        value: the figure as a share in [0, 1].
        line: the printed line it came from (ANSI escapes removed, stripped, at most 200 characters).
        kind: what it is about: ``test``, ``validation``, ``training`` or ``unknown``.
        certain: whether the kind was read from explicit words (``val_accuracy``, "test
            accuracy", a Keras training progress line); ``False`` for an ambiguous line.
    """

    value: float
    line: str
    kind: ClaimKind
    certain: bool


def _kinds(text: str) -> set[ClaimKind]:
    """The kinds whose words ``text`` (lower case) holds: "test", "val", "training", ..."""
    return {cast(ClaimKind, m.lastgroup) for m in _KIND_WORDS.finditer(text)}


def _figure(after: str) -> float | None:
    """The first number in ``after`` (the text following an accuracy keyword) that reads as an
    accuracy, as a share; None if there is none.

    Skipped: a number right after a counter word ("epoch 10", "step 3/5"), a count of things
    ("on the 10000 test images") and numbers above 100. ``47/50 (94%)`` reads 0.94 and ``47/50``
    reads 0.94 too; a number followed by ``%`` or above 1 is a percentage.
    """
    end = _WINDOW_END.search(after)
    window = after[:end.start()] if end else after
    window = window[:80]
    pos = 0
    while (match := _NUMBER.search(window, pos)) is not None:
        pos = match.end()
        rest = window[match.end():]
        fraction = _FRACTION.match(rest)
        if _COUNTER.search(window[:match.start()]):
            if fraction:
                pos += fraction.end()
            continue
        value = float(match.group("value"))
        if fraction:
            total = int(fraction.group("total"))
            if fraction.group("pct") is not None:
                share = float(fraction.group("pct")) / 100
            elif "." not in match.group("value") and 0 <= value <= total and total > 0:
                share = value / total
            else:
                pos += fraction.end()
                continue
            return share if 0 <= share <= 1 else None
        if _COUNT_NOUN.match(rest):
            continue
        if _PERCENT.match(rest) or value > 1:
            value /= 100
        if 0 <= value <= 1:
            return value
    return None


def _kind_of(line: str, lower: str, match: re.Match[str], *, keras_fit: bool) -> tuple[ClaimKind, bool]:
    """The kind of the claim at ``match`` in ``line`` and whether it is certain.

    In order: the keyword's own prefix (``val_accuracy``); a Keras progress line (its bare
    ``accuracy`` is the training figure in ``fit``; after no ``Epoch k/n`` line and beside no
    ``val_`` metric it may be ``evaluate``'s, so unknown); the words of the clause it stands in
    ("test accuracy", "accuracy on the test set"); the words of the whole line when only one kind
    is named there ("Test set: Average loss: 0.03, Accuracy: 9900/10000 (99%)").
    """
    prefix = match.group("prefix")
    if prefix:
        return _PREFIX_KIND[prefix], True
    if _KERAS_PROGRESS.match(line):
        if keras_fit or "val_" in lower:
            return "training", True
        return "unknown", False
    low = max(0, match.start() - _CLAUSE_REACH)
    breaks = [m.end() for m in _CLAUSE_BREAK.finditer(lower, low, match.start())]
    after = _CLAUSE_BREAK.search(lower, match.end(), match.end() + _CLAUSE_REACH)
    clause = lower[breaks[-1] if breaks else low:after.start() if after else match.end() + _CLAUSE_REACH]
    kinds = _kinds(clause)
    if len(kinds) == 1:
        return kinds.pop(), True
    if kinds:
        return "unknown", False
    colon = lower.find(":", 0, min(match.start(), _CLAUSE_REACH))
    if colon > 0 and not _WINDOW_END.search(lower, 0, colon):
        heading_kinds = _kinds(lower[:colon])
        if len(heading_kinds) == 1:
            return heading_kinds.pop(), True
    return "unknown", False


def read_claims(text: str) -> list[Claim]:
    """Every accuracy claim printed in ``text``, in order.

    Args:
        text: the notebook's printed output (streams and ``text/plain`` results).

    Returns:
        One :class:`Claim` per accuracy keyword ("acc", "accuracy", ``val_accuracy``, any case)
        followed by a figure that reads as an accuracy (see :func:`_figure`).

    Method: regular expressions over each line, after removing ANSI escapes; Keras's progress
    line formats are those of ``keras.utils.Progbar`` (Keras 2: ``10/10 [====] - 3s 250ms/step -
    loss: ... - accuracy: ...``; Keras 3: ``10/10 ━━━━ 3s 250ms/step - accuracy: ...``).
    """
    claims: list[Claim] = []
    keras_fit = False  # inside an epoch of Keras's fit: after "Epoch k/n", before its last step
    for raw in _ANSI.sub("", text).splitlines():
        line = raw.strip()[:_LINE_CHARS]  # bounded work per line, whatever the notebook prints
        if not line:
            continue
        if _KERAS_EPOCH.match(line):
            keras_fit = True
            continue
        lower = line.lower()
        for match in _KEYWORD.finditer(lower):
            value = _figure(lower[match.end():match.end() + 200])
            if value is None:
                continue
            kind, certain = _kind_of(line, lower, match, keras_fit=keras_fit)
            claims.append(Claim(value=value, line=line[:200], kind=kind, certain=certain))
        progress = _KERAS_PROGRESS.match(line)
        if progress and progress.group("step") == progress.group("total"):
            keras_fit = False  # the epoch's last line: what follows without "Epoch" is evaluate's
    return claims


def accuracy_claims(text: str) -> list[float]:
    """The values of :func:`read_claims`, in order, as shares in [0, 1]."""
    return [claim.value for claim in read_claims(text)]


@dataclass(frozen=True)
class ClaimCheck:
    """The notebook's claim beside the grader's measurement (shares, 0..1).

    Attributes:
        claim: the claim compared (see :func:`compare_claim` for which one).
        measured: the grader's accuracy on the hidden test set.
        high: the upper end of the 95% interval of ``measured`` (``measured`` itself when the
            interval is not known).
        margin: how far above ``high`` a claim may be before it is flagged.
        cell: the 0-based index of the cell whose output printed the claim, when the output
            was read per cell; else None.
    """

    claim: Claim
    measured: float
    high: float
    margin: float
    cell: int | None = None

    @property
    def claimed(self) -> float:
        return self.claim.value

    @property
    def gap(self) -> float:
        """``claimed - measured``."""
        return self.claimed - self.measured

    @property
    def above_interval(self) -> float:
        """``claimed - high``: how far the claim lies above the interval (negative inside it)."""
        return self.claimed - self.high

    @property
    def flagged(self) -> bool:
        """True only when the claim is a certain test or validation figure above the interval's
        upper end by more than ``margin``; a training or ambiguous figure is shown, never flagged."""
        return (self.claim.certain and self.claim.kind in ("test", "validation")
                and self.above_interval > self.margin + 1e-12)


def defining_cell(sources: Sequence[str], name: str) -> int | None:
    """The index of the last cell in ``sources`` that defines ``name``: ``def name(`` or an
    assignment ``name = ...`` at the start of a line; None when no cell does.

    Args:
        sources: the source of each cell of the notebook as run, in order (markdown cells may
            be given as "" or as their text: a line of prose rarely starts with ``def predict(``).
        name: the function's name (the contract's ``predict``).
    """
    pattern = re.compile(rf"^[ \t]*(?:(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(|"
                         rf"{re.escape(name)}[ \t]*(?::[^=\n]*)?=(?!=))", re.MULTILINE)
    found = [i for i, source in enumerate(sources) if pattern.search(source)]
    return found[-1] if found else None


_OTHER_MODEL = re.compile(r"(?i)\btransfer\b|\bpre-?trained\b|\bfine-?tun")


def compare_claim(text: str | Sequence[str], measured: float | None, *, high: float | None = None,
                  margin: float = 0.05, defined_in: int | None = None) -> ClaimCheck | None:
    """Compare the notebook's claim with ``measured``; None if either is missing.

    Args:
        text: the notebook's printed output, as one string or one string per cell (index
            ``i`` the output of cell ``i`` of the notebook as run).
        measured: the grader's accuracy on the hidden test set (0..1), or None.
        high: the upper end of its 95% interval (None: ``measured``).
        margin: how far above ``high`` a claim may lie before it is flagged (the rubric's
            ``claim_margin``).
        defined_in: the index of the cell that defines the predict function
            (:func:`defining_cell`), when ``text`` is per cell.

    Returns:
        the check of one claim, chosen by this rule (lines that name transfer learning, a
        pretrained model or fine-tuning are left out while another claim exists: they speak of
        the transfer model): the last certain test or validation figure
        printed in a cell at or before ``defined_in`` (what the notebook said of the model it
        hands to the grader, usually printed right after training or evaluating it); without
        one, the last certain test or validation figure printed anywhere; without one, the
        last figure of any kind (shown, never flagged).
    """
    per_cell = [text] if isinstance(text, str) else list(text)
    claims = [(i, c) for i, out in enumerate(per_cell) for c in read_claims(out)]
    if not claims or measured is None:
        return None
    # a line about the transfer-learning model speaks of predict_transfer, not of predict
    own = [(i, c) for i, c in claims if not _OTHER_MODEL.search(c.line)]
    claims = own or claims
    held_out = [(i, c) for i, c in claims if c.certain and c.kind in ("test", "validation")]
    before = [(i, c) for i, c in held_out if defined_in is not None and i <= defined_in]
    cell, claim = (before or held_out or claims)[-1]
    return ClaimCheck(claim=claim, measured=measured, high=measured if high is None else max(high, measured),
                      margin=margin, cell=None if isinstance(text, str) else cell)


PRINTED_CELL_CHARS = 20_000  # the most of one cell's printed text a team's run log keeps (its end)
PRINTED_CHARS = 400_000  # the most of one notebook's printed text it keeps, over its cells
# what a terminal acts on and does not show: ANSI CSI sequences (ECMA-48) and backspaces; the runner
# has its own copy (grader.student.runner.last_line): the student's side imports nothing of grader
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x08")


def as_terminal_shows(text: str) -> str:
    """``text`` as a terminal leaves it on screen, roughly: each line only after its last
    carriage return (a progress bar's last state, as tqdm and Keras redraw it), colour codes
    and backspaces removed."""
    text = _TERMINAL_CONTROL.sub("", text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def printed_cells(cells: Sequence[Mapping[str, object]], *, skip: int | None = None) -> dict[int, str]:
    """What each cell of an executed notebook printed, as a terminal shows it
    (:func:`as_terminal_shows` over :func:`cell_outputs`), by cell index (0-based, as the
    timeline counts them); cells that printed nothing absent, cell ``skip`` (the grader's
    injected cell) left out. Each cell keeps the end of its text, at most
    :data:`PRINTED_CELL_CHARS` characters ("…" first where cut), the notebook at most
    :data:`PRINTED_CHARS` over its cells (later cells dropped).

    Args:
        cells: the executed notebook's cells (nbformat), as the runner wrote them before the
            hidden images' gate opened (:mod:`grader.sandbox.gate`): the student's cells only.
        skip: the index of a cell to leave out, or None.
    """
    out: dict[int, str] = {}
    left = PRINTED_CHARS
    for index, raw in enumerate(cell_outputs(cells, limit=4 * PRINTED_CHARS)):
        text = as_terminal_shows(raw).strip("\n")
        if index == skip or not text.strip() or left <= 0:
            continue
        if len(text) > PRINTED_CELL_CHARS:
            text = "…" + text[-(PRINTED_CELL_CHARS - 1):]
        text = text[:left]
        left -= len(text)
        out[index] = text
    return out


def cell_outputs(cells: Sequence[Mapping[str, object]], *, limit: int = 2_000_000) -> list[str]:
    """The printed text of each cell of an executed notebook: its streams and ``text/plain``
    results, in order; at most ``limit`` characters in all (later cells get "").

    Args:
        cells: the notebook's cells as nbformat gives them (``cell["outputs"]``).
        limit: the most characters read, over all cells.
    """
    texts: list[str] = []
    left = limit
    for cell in cells:
        parts: list[str] = []
        outputs = cell.get("outputs", [])
        for output in outputs if isinstance(outputs, list) else []:
            if not isinstance(output, Mapping):
                continue
            if output.get("output_type") == "stream":
                parts.append(str(output.get("text", "")))
            elif output.get("output_type") in ("execute_result", "display_data"):
                data = output.get("data", {})
                parts.append(str(data.get("text/plain", "") if isinstance(data, Mapping) else "") + "\n")
        text = "".join(parts)[:left]
        left -= len(text)
        texts.append(text)
    return texts


def notebook_claim(cells: Sequence[Mapping[str, object]], measured: float | None, *,
                   high: float | None, margin: float, predict: str) -> ClaimCheck | None:
    """:func:`compare_claim` on an executed notebook: its output read per cell
    (:func:`cell_outputs`), the claim chosen by the cell that defines ``predict``
    (:func:`defining_cell` over the code cells' sources).

    Args:
        cells: the executed notebook's cells (nbformat), the grader's injected cell included.
        measured: the accuracy of ``predict`` on the hidden test set, or None.
        high: the upper end of its 95% interval, or None.
        margin: the rubric's ``claim_margin``.
        predict: the contract's name of the predict function.
    """
    sources = [str(c.get("source", "")) if c.get("cell_type") == "code" else "" for c in cells]
    return compare_claim(cell_outputs(cells), measured, high=high, margin=margin,
                         defined_in=defining_cell(sources, predict))
