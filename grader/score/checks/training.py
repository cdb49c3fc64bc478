"""Checks of the training record: the loss history and the plot of it."""

from __future__ import annotations

import math

from pydantic import Field

from grader.evidence import Evidence, framework_of
from grader.score.checks.registry import CheckResult, Params, fail, passed, register

__all__ = ["HistoryParams", "PlotParams", "loss_history", "loss_plot"]


class HistoryParams(Params):
    min_epochs: int = Field(default=2, ge=1)


def _series(values: list[float | None] | None) -> list[float] | None:
    if values is None or any(v is None for v in values):
        return None
    return [float(v) for v in values if v is not None]


@register("loss_history", HistoryParams)
def loss_history(ev: Evidence, params: HistoryParams) -> CheckResult:
    """Reads the loss history the probe found (``HISTORY``, a Keras ``History`` or
    ``training_loss``/``validation_loss``). Passes when both the training and the validation
    loss are recorded for the same number of epochs, at least ``min_epochs``, all finite."""
    hist = ev.probe.history if ev.probe else None
    if hist is None:
        if framework_of(ev.code) == "tensorflow":
            return fail("no loss history found: keep what Keras's fit returns, HISTORY = "
                        "model.fit(..., validation_data=...), or define HISTORY = {'loss': [...], "
                        "'val_loss': [...]}")
        return fail(
            "no loss history found: define HISTORY = {'loss': [...], 'val_loss': [...]} with "
            "the average training and validation loss of each epoch"
        )
    loss, val = _series(hist.loss), _series(hist.val_loss)
    if loss is None or val is None:
        return fail(f"{hist.source}: training and validation loss must both be lists of "
                     "finite numbers")
    if len(loss) != len(val):
        return fail(f"{hist.source}: {len(loss)} training losses but {len(val)} validation "
                     "losses; record one of each per epoch")
    ok = len(loss) >= params.min_epochs
    return passed(ok, f"{hist.source}: {len(loss)} epochs recorded"
                   + ("" if ok else f", fewer than {params.min_epochs}"), epochs=len(loss))


class PlotParams(Params):
    rtol: float = Field(default=0.01, gt=0)


def _matches(line: list[float | None] | None, target: list[float], rtol: float) -> bool:
    if line is None or len(line) != len(target) or any(v is None for v in line):
        return False
    return all(
        math.isclose(float(a), b, rel_tol=rtol, abs_tol=1e-6)  # type: ignore[arg-type]
        for a, b in zip(line, target, strict=True)
    )


@register("loss_plot", PlotParams)
def loss_plot(ev: Evidence, params: PlotParams) -> CheckResult:
    """Reads the captured matplotlib figures and the loss history. Passes when one figure
    holds a line whose y values equal the training loss and a line whose y values equal the
    validation loss (each within relative tolerance ``rtol``)."""
    hist = ev.probe.history if ev.probe else None
    loss = _series(hist.loss) if hist else None
    val = _series(hist.val_loss) if hist else None
    if loss is None or val is None:
        return fail("no loss history to compare a plot with; record the history first")
    figures = ev.probe.figures if ev.probe else []
    for fig in figures:
        ys = [line.y for axes in fig.axes for line in axes.lines]
        if any(_matches(y, loss, params.rtol) for y in ys) and any(
            _matches(y, val, params.rtol) for y in ys
        ):
            index = ev.execution.cell_of(fig.execution_count)
            cell = ev.execution.number_of(index) if index is not None else None
            where = f"in cell {cell}" if cell is not None else "in a figure"
            measured: dict[str, float | int | str] = {"figures": len(figures)}
            if cell is not None:
                measured["cell"] = cell  # the student's cell number
            return CheckResult(status="pass", message=f"training and validation loss plotted {where}",
                               measured=measured)
    return fail(
        f"none of the {len(figures)} figures plots both the training and the validation loss "
        "of the history; plot both with plt.plot(...) and show the figure",
        figures=len(figures),
    )
