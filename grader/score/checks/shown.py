"""Checks of what the notebook showed: its printed text and its captured figures.

These read the executed notebook's outputs (streams and ``text/plain`` results, which is also how
pandas and scikit-learn tables print) and the line data of its matplotlib figures. They say that
something was *shown*; the figures themselves are always measured by the grader.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from pydantic import Field

from grader.evidence import Evidence
from grader.score.checks.registry import CheckResult, Params, fail, passed, register

__all__ = ["ConfusionShownParams", "PerClassShownParams", "confusion_matrix_shown", "per_class_shown"]

# a figure that reads as an accuracy or recall: a share with a decimal point (0.94, .9, 1.00) or a
# percentage (75 %, 57.1%); never a bare integer, which is as likely a class index or a count
_NUMBER = re.compile(r"(?<![\w.])(?:0?\.\d+|1\.0+|\d{1,3}(?:\.\d+)?\s?%)(?![\w.])")
_FIGURE_REACH = 40  # characters after a class name in which its figure must stand
_LABELS = ("confusion", "predicted", "true", "actual")


def _name_pattern(name: str) -> re.Pattern[str]:
    wanted = re.escape(name.lower()).replace("_", "[_ ]").replace("\\ ", "[_ ]")
    return re.compile(rf"(?<![a-z]){wanted}(?![a-z])")


def _mentions(line: str, name: str) -> bool:
    return _name_pattern(name).search(line.lower()) is not None


def _classes_with_figures(line: str, classes: Sequence[str]) -> set[str]:
    """The classes that ``line`` names with a figure of their own: a share or percentage (see
    ``_NUMBER``) within ``_FIGURE_REACH`` characters after the name and before the next class
    name, as in a classification report row ("axes  0.94  0.94  0.94  16"), "Accuracy of axes :
    75 %" or ``{'axes': 0.94, 'boots': 0.92}``."""
    lower = line.lower()
    spans = sorted((m.start(), m.end(), c) for c in classes for m in _name_pattern(c).finditer(lower))
    starts = [start for start, _, _ in spans]
    shown = set()
    for i, (_, end, name) in enumerate(spans):
        if name in shown:
            continue
        following = bisect.bisect_left(starts, end, i + 1)
        stop = min(starts[following] if following < len(starts) else len(lower), end + _FIGURE_REACH)
        if _NUMBER.search(lower, end, stop):
            shown.add(name)
    return shown


class PerClassShownParams(Params):
    pass


@register("per_class_shown", PerClassShownParams)
def per_class_shown(ev: Evidence, params: PerClassShownParams) -> CheckResult:
    """Reads the notebook's text outputs. Passes when, for every class of the challenge, some
    output line names the class and shows, after the name and before the next class name, a
    figure that reads as an accuracy: a share with a decimal point or a percentage, never a bare
    integer (``list(enumerate(CLASS_NAMES))`` shows indices, not accuracies). A per-class
    accuracy table, scikit-learn's classification report or the PyTorch tutorial's "Accuracy of
    pulleys : 75 %" lines pass."""
    classes = ev.challenge.dataset.classes
    shown: set[str] = set()
    for line in ev.output_text.splitlines():
        if _NUMBER.search(line):
            shown |= _classes_with_figures(line, classes)
    missing = [c for c in classes if c not in shown]
    if missing:
        return fail(f"no per-class figure shown for {len(missing)} classes: "
                    f"{', '.join(missing[:6])}; print the accuracy of every class",
                    missing=len(missing))
    return passed(True, f"per-class figures shown for all {len(ev.challenge.dataset.classes)} classes")


class ConfusionShownParams(Params):
    min_classes: int = Field(default=2, ge=2)


def _matrix_in_text(text: str, size: int) -> bool:
    row = re.compile(rf"^[\s\[]*(?:[^\d\s\[\]]\S*\s+)?(?:\d+\s+){{{size - 1}}}\d+\s*\]*\s*$")
    run = 0
    for line in text.splitlines():
        run = run + 1 if row.match(line) else 0
        if run >= size:
            return True
    return False


@register("confusion_matrix_shown", ConfusionShownParams)
def confusion_matrix_shown(ev: Evidence, params: ConfusionShownParams) -> CheckResult:
    """Reads the captured figures and the text outputs. Passes when a figure draws an image or
    a heatmap on axes whose title or labels say confusion, predicted, true or actual, or when a
    text output holds a square matrix of integers with one row per class."""
    figures = ev.probe.figures if ev.probe else []
    for fig in figures:
        for axes in fig.axes:
            words = " ".join((axes.title, axes.xlabel, axes.ylabel, fig.suptitle)).lower()
            if (axes.images or axes.collections) and any(w in words for w in _LABELS):
                index = ev.execution.cell_of(fig.execution_count)
                cell = ev.execution.number_of(index) if index is not None else None  # the student's
                where = f"in cell {cell}" if cell is not None else "in a figure"
                return passed(True, f"confusion matrix drawn {where}")
    size = len(ev.challenge.dataset.classes)
    if size >= params.min_classes and _matrix_in_text(ev.output_text, size):
        return passed(True, f"a {size} x {size} confusion matrix printed")
    return fail("no confusion matrix shown: print sklearn.metrics.confusion_matrix(...) or draw "
                "it with ConfusionMatrixDisplay / plt.imshow and label the axes")
