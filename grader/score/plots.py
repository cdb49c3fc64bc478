"""Figures the grader draws itself (matplotlib, Agg backend), returned as inline SVG text."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.score.scorecard import SubmissionResult

__all__ = ["loss_curve_svg", "with_loss_plots"]


def loss_curve_svg(loss: Sequence[float | None], val_loss: Sequence[float | None]) -> str:
    """Redraw the loss curves from the recorded history.

    Args:
        loss: average training loss per epoch (``None`` for a non-finite value).
        val_loss: average validation loss per epoch.

    Returns:
        an ``<svg>`` document as text, 6 x 3.2 inches.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    for values, label in ((loss, "training loss"), (val_loss, "validation loss")):
        if values:
            epochs = range(1, len(values) + 1)
            ax.plot(list(epochs), [float("nan") if v is None else v for v in values],
                    marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("average loss")
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend()
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def with_loss_plots(result: SubmissionResult) -> SubmissionResult:
    """``result`` (read from a ``result.json``, which keeps no figure) with each notebook's loss
    curves redrawn from its recorded history, where it has one and none is drawn yet."""
    notebooks = [nb.model_copy(update={"loss_plot_svg": loss_curve_svg(nb.history.loss, nb.history.val_loss)})
                 if nb.history and nb.history.loss and not nb.loss_plot_svg else nb for nb in result.notebooks]
    return result.model_copy(update={"notebooks": notebooks})
