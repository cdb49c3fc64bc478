"""Checks of what the notebook showed: its printed text and its captured figures.

These read the executed notebook's outputs (streams and ``text/plain`` results, which is also how
pandas and scikit-learn tables print) and the line data of its matplotlib figures. They say that
something was *shown*; the figures themselves are always measured by the grader.
"""

from __future__ import annotations

import re

from pydantic import Field

from grader.checks.registry import CheckResult, Params, fail, passed, register
from grader.evidence import Evidence

_NUMBER = re.compile(r"(?<![\w.])(?:0?\.\d+|1\.0+|[01]|\d{1,3}(?:\.\d+)?\s?%)(?![\w.])")
_LABELS = ("confusion", "predicted", "true", "actual")


def _mentions(line: str, name: str) -> bool:
    wanted = re.escape(name.lower()).replace("_", "[_ ]").replace("\\ ", "[_ ]")
    return re.search(rf"(?<![a-z]){wanted}(?![a-z])", line.lower()) is not None


class PerClassShownParams(Params):
    pass


@register("per_class_shown", PerClassShownParams)
def per_class_shown(ev: Evidence, params: PerClassShownParams) -> CheckResult:
    """Reads the notebook's text outputs. Passes when, for every class of the challenge, some
    output line names the class and shows a number that reads as an accuracy (0 to 1, or a
    percentage): a per-class accuracy table, or scikit-learn's classification report."""
    lines = ev.output_text.splitlines()
    missing = [c for c in ev.challenge.dataset.classes
               if not any(_mentions(line, c) and _NUMBER.search(line) for line in lines)]
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
                cell = ev.execution.cell_of(fig.execution_count)
                where = f"in cell {cell}" if cell is not None else "in a figure"
                return passed(True, f"confusion matrix drawn {where}")
    size = len(ev.challenge.dataset.classes)
    if size >= params.min_classes and _matrix_in_text(ev.output_text, size):
        return passed(True, f"a {size} x {size} confusion matrix printed")
    return fail("no confusion matrix shown: print sklearn.metrics.confusion_matrix(...) or draw "
                "it with ConfusionMatrixDisplay / plt.imshow and label the axes")
