"""The checks a rubric criterion can name: pure functions of :class:`~grader.evidence.Evidence`.

Each check registers under a name with a parameter schema; ``get_check`` fails loudly with the
list of known names. A check's docstring says what evidence it reads and its exact pass
condition. A student's failure is a ``fail`` result with a message, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.errors import RubricError
from grader.evidence import Evidence
from grader.measure import measure

__all__ = ["CheckResult", "CheckSpec", "check_names", "get_check"]

Status = Literal["pass", "fail"]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: ``status``, a message for the student, figures it measured."""

    status: Status
    message: str
    measured: dict[str, float | int | str] = field(default_factory=dict)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its name, parameter schema and function."""

    name: str
    params: type[Params]
    run: Callable[[Evidence, Params], CheckResult]

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip()


_REGISTRY: dict[str, CheckSpec] = {}


def _register(name: str, params: type[Params]) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    def decorate(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        _REGISTRY[name] = CheckSpec(name=name, params=params, run=fn)
        return fn

    return decorate


def check_names() -> list[str]:
    """Names of every registered check, sorted."""
    return sorted(_REGISTRY)


def get_check(name: str) -> CheckSpec:
    """Return the check registered as ``name``.

    Raises:
        RubricError: unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RubricError(
            f"unknown check {name!r}; known checks: {', '.join(check_names())}"
        ) from None


def _passed(ok: bool, message: str, **measured: float | int | str) -> CheckResult:
    return CheckResult(status="pass" if ok else "fail", message=message, measured=measured)


def _fail(message: str, **measured: float | int | str) -> CheckResult:
    return _passed(False, message, **measured)


class NoParams(Params):
    pass


@_register("notebook_runs", NoParams)
def notebook_runs(ev: Evidence, params: NoParams) -> CheckResult:
    """Reads the execution facts. Passes when every cell ran without error inside its time
    limit, the kernel stayed alive and the probe ran to its end."""
    ex = ev.execution
    if ex.status != "ok":
        return _fail(ex.message or f"the run ended with status {ex.status}", status=ex.status)
    if ex.probe is None or ex.probe.status != "ok":
        detail = ex.probe.message if ex.probe else "it did not run"
        return _fail(f"the notebook ran, but calling its contract failed: {detail}")
    if ev.probe_error:
        return _fail(ev.probe_error)
    return _passed(True, f"all cells ran in {ex.wall_s:.0f} s", wall_s=round(ex.wall_s, 1))


def _predictions(ev: Evidence, role: str, name: str) -> tuple[list[str] | None, str]:
    """The predictions of ``role`` on the hidden test set, or None and why not."""
    if ev.probe is None:
        return None, f"`{name}` could not be called: {ev.probe_error or ev.execution.message}"
    run = ev.probe.models.get(role)  # type: ignore[call-overload]
    if run is None:
        return None, f"`{name}` was not called"
    if run.error is not None or run.predictions is None:
        return None, f"`{name}` {run.error or 'returned nothing'}"
    if len(run.predictions) != len(ev.hidden_labels):
        return None, (
            f"`{name}` returned {len(run.predictions)} predictions for "
            f"{len(ev.hidden_labels)} hidden test images"
        )
    return run.predictions, ""


class AccuracyParams(Params):
    model: Literal["predict", "transfer"] = "predict"
    threshold: float = Field(ge=0, le=1)


@_register("hidden_accuracy", AccuracyParams)
def hidden_accuracy(ev: Evidence, params: AccuracyParams) -> CheckResult:
    """Reads the probe's predictions of ``model`` on the hidden test set and the hidden labels.
    Passes when every prediction is one of the challenge's class names and accuracy (share of
    correct predictions) >= ``threshold``."""
    contract = ev.challenge.contract
    name = contract.predict if params.model == "predict" else contract.transfer
    predictions, why = _predictions(ev, params.model, name)
    if predictions is None:
        return _fail(why)
    m = measure(ev.hidden_labels, predictions, ev.challenge.dataset.classes)
    if m.unknown_labels:
        shown = ", ".join(repr(u) for u in m.unknown_labels[:5])
        return _fail(
            f"`{name}` returned names that are not classes: {shown}; return names from "
            f"{contract.class_names}",
            accuracy=round(m.accuracy, 4),
        )
    ok = m.accuracy >= params.threshold
    verdict = "at least" if ok else "below"
    return _passed(
        ok,
        f"`{name}` scored {m.accuracy:.3f} on {m.n} hidden test images, {verdict} "
        f"{params.threshold:.2f}",
        accuracy=round(m.accuracy, 4),
    )


class HistoryParams(Params):
    min_epochs: int = Field(default=2, ge=1)


def _series(values: list[float | None] | None) -> list[float] | None:
    if values is None or any(v is None for v in values):
        return None
    return [float(v) for v in values if v is not None]


@_register("loss_history", HistoryParams)
def loss_history(ev: Evidence, params: HistoryParams) -> CheckResult:
    """Reads the loss history the probe found (``HISTORY``, a Keras ``History`` or
    ``training_loss``/``validation_loss``). Passes when both the training and the validation
    loss are recorded for the same number of epochs, at least ``min_epochs``, all finite."""
    hist = ev.probe.history if ev.probe else None
    if hist is None:
        return _fail(
            "no loss history found: define HISTORY = {'loss': [...], 'val_loss': [...]} with "
            "the average training and validation loss of each epoch"
        )
    loss, val = _series(hist.loss), _series(hist.val_loss)
    if loss is None or val is None:
        return _fail(f"{hist.source}: training and validation loss must both be lists of "
                     "finite numbers")
    if len(loss) != len(val):
        return _fail(f"{hist.source}: {len(loss)} training losses but {len(val)} validation "
                     "losses; record one of each per epoch")
    ok = len(loss) >= params.min_epochs
    return _passed(ok, f"{hist.source}: {len(loss)} epochs recorded"
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


@_register("loss_plot", PlotParams)
def loss_plot(ev: Evidence, params: PlotParams) -> CheckResult:
    """Reads the captured matplotlib figures and the loss history. Passes when one figure
    holds a line whose y values equal the training loss and a line whose y values equal the
    validation loss (each within relative tolerance ``rtol``)."""
    hist = ev.probe.history if ev.probe else None
    loss = _series(hist.loss) if hist else None
    val = _series(hist.val_loss) if hist else None
    if loss is None or val is None:
        return _fail("no loss history to compare a plot with; record the history first")
    figures = ev.probe.figures if ev.probe else []
    for fig in figures:
        ys = [line.y for axes in fig.axes for line in axes.lines]
        if any(_matches(y, loss, params.rtol) for y in ys) and any(
            _matches(y, val, params.rtol) for y in ys
        ):
            cell = ev.execution.cell_of(fig.execution_count)
            where = f"in cell {cell}" if cell is not None else "in a figure"
            measured: dict[str, float | int | str] = {"figures": len(figures)}
            if cell is not None:
                measured["cell"] = cell
            return CheckResult(status="pass", message=f"training and validation loss plotted {where}",
                               measured=measured)
    return _fail(
        f"none of the {len(figures)} figures plots both the training and the validation loss "
        "of the history; plot both with plt.plot(...) and show the figure",
        figures=len(figures),
    )


class PerClassParams(Params):
    min_recall: float = Field(default=0.0, ge=0, le=1)


@_register("per_class_report", PerClassParams)
def per_class_report(ev: Evidence, params: PerClassParams) -> CheckResult:
    """Reads ``predict``'s predictions on the hidden test set. The grader computes precision,
    recall (per-class accuracy) and the confusion matrix with scikit-learn. Passes when every
    class present in the hidden test set has recall >= ``min_recall``."""
    predictions, why = _predictions(ev, "predict", ev.challenge.contract.predict)
    if predictions is None:
        return _fail(why)
    m = measure(ev.hidden_labels, predictions, ev.challenge.dataset.classes)
    present = [r for r in m.rows if r.support > 0]
    weak = [r for r in present if r.recall < params.min_recall]
    worst = min(present, key=lambda r: r.recall)
    if weak:
        names = ", ".join(f"{r.name} ({r.recall:.2f})" for r in weak)
        return _fail(f"classes below recall {params.min_recall:.2f}: {names}",
                     worst_recall=round(worst.recall, 4))
    return _passed(True, f"every class at recall {params.min_recall:.2f} or more; lowest: "
                   f"{worst.name} {worst.recall:.2f}", worst_recall=round(worst.recall, 4))


class NewImagesParams(Params):
    min_images: int = Field(default=5, ge=1)


@_register("new_image_predictions", NewImagesParams)
def new_image_predictions(ev: Evidence, params: NewImagesParams) -> CheckResult:
    """Reads the submission's ``new_images/`` (dataset matches by content and perceptual hash)
    and ``predict``'s answers on them. Passes when at least ``min_images`` readable images are
    there, none is a dataset image, and ``predict`` returned a class name for each."""
    readable = [im for im in ev.new_images if im.error is None]
    if len(readable) < params.min_images:
        return _fail(f"{len(readable)} readable images in new_images/; add at least "
                     f"{params.min_images} photos that are not in the dataset",
                     images=len(readable))
    copies = [f"{im.file} = {im.dataset_match}" for im in readable if im.dataset_match]
    if copies:
        return _fail("these are dataset images, not new ones: " + "; ".join(copies[:5]),
                     images=len(readable))
    run = ev.probe.new_images if ev.probe else None
    name = ev.challenge.contract.predict
    if run is None or run.predictions is None:
        return _fail(f"`{name}` gave no predictions for new_images/: "
                     f"{run.error if run else 'it was not called'}")
    unknown = sorted(set(run.predictions) - set(ev.challenge.dataset.classes))
    if unknown:
        return _fail(f"`{name}` returned names that are not classes: {unknown[:5]}")
    return _passed(True, f"{len(run.predictions)} new images classified", images=len(readable))


class TransferParams(Params):
    threshold: float = Field(ge=0, le=1)


@_register("transfer_learning", TransferParams)
def transfer_learning(ev: Evidence, params: TransferParams) -> CheckResult:
    """Reads the probe's predictions of the transfer-learning model on the hidden test set.
    Passes when the contract's transfer function is defined, returns class names and reaches
    accuracy >= ``threshold``."""
    return hidden_accuracy(ev, AccuracyParams(model="transfer", threshold=params.threshold))


class SavedModelParams(Params):
    min_bytes: int = Field(default=1024, ge=1)


@_register("saved_model", SavedModelParams)
def saved_model(ev: Evidence, params: SavedModelParams) -> CheckResult:
    """Reads the listing of ``MODEL_DIR`` after the run (files are never loaded). Passes when
    a file of at least ``min_bytes`` bytes was written there during this run."""
    fresh = [f for f in ev.model_files if f.written_during_run and f.size >= params.min_bytes]
    if not fresh:
        return _fail(f"no model file of {params.min_bytes} bytes or more was saved under "
                     "MODEL_DIR during this run; save your best model there "
                     "(torch.save(model.state_dict(), os.path.join(MODEL_DIR, 'best.pt')))",
                     files=len(ev.model_files))
    names = ", ".join(f"{f.path} ({f.size / 1e6:.1f} MB)" for f in fresh[:3])
    return _passed(True, f"saved: {names}", files=len(fresh))
