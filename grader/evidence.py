"""What crosses the trust boundary, and the evidence the checks read.

The probe's JSON and the runner's timeline are written by processes the student controls; they
are parsed here with strict schemas and size limits, never unpickled or executed. The
:class:`Evidence` bundle joins them with what only the grader holds (hidden labels, dataset
hashes) and is the sole input of every check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.challenge import Challenge

__all__ = [
    "CellRecord",
    "Evidence",
    "ExecutionFacts",
    "FigureData",
    "ModelFile",
    "NewImage",
    "ProbeOutput",
]

MAX_ITEMS = 100_000
Label = str


class _Wire(BaseModel):
    """Schema of data from the student's side: unknown keys are errors, strings are bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4000,
                              allow_inf_nan=False)


class ModelRun(_Wire):
    """One contract function run on a folder of images (``predict`` or ``predict_transfer``):
    ``seconds`` of the whole run (opening images included), ``inference_s`` inside the function."""

    predictions: list[Label] | None = Field(default=None, max_length=MAX_ITEMS)
    error: str | None = None
    seconds: float | None = None
    inference_s: float | None = None


class NewImagesRun(ModelRun):
    """``predict`` run on the submission's ``new_images/`` (file names, in order)."""

    files: list[str] = Field(max_length=1000)


class HistoryData(_Wire):
    """Loss per epoch as the notebook recorded it (``None`` marks a non-finite value)."""

    source: str
    loss: list[float | None] | None = Field(default=None, max_length=10_000)
    val_loss: list[float | None] | None = Field(default=None, max_length=10_000)


class LineData(_Wire):
    label: str
    x: list[float | None] | None = Field(default=None, max_length=10_000)
    y: list[float | None] | None = Field(default=None, max_length=10_000)


class AxesData(_Wire):
    title: str
    xlabel: str
    ylabel: str
    lines: list[LineData] = Field(max_length=20)
    images: int
    collections: int


class FigureData(_Wire):
    """Line data of one matplotlib figure, captured when the notebook showed or closed it."""

    execution_count: int
    suptitle: str
    axes: list[AxesData] = Field(max_length=20)


class ProbeOutput(_Wire):
    """The probe's JSON file (``grader/kernel/probe.py``), schema 1."""

    schema_: Literal[1] = Field(alias="schema")
    class_names: list[str] | None = Field(default=None, max_length=10_000)
    class_names_error: str | None = None
    models: dict[Literal["predict", "transfer"], ModelRun] = {}
    new_images: NewImagesRun | None = None
    new_images_extra: dict[Literal["imagenet"], ModelRun] = {}
    extra_sets: dict[Literal["added"], ModelRun] = {}
    history: HistoryData | None = None
    figures: list[FigureData] = Field(default=[], max_length=100)


class CellRecord(_Wire):
    """One cell in the timeline: ``status`` is ok, error, timeout, running, skipped or not_run."""

    index: int
    status: Literal["ok", "error", "timeout", "running", "skipped", "not_run"]
    seconds: float | None
    error: dict[str, str] | None
    execution_count: int | None = None


class ProbeFacts(_Wire):
    status: Literal["ok", "error", "timeout", "running", "not_run"]
    seconds: float | None
    message: str


class RunnerFacts(_Wire):
    """``facts.json`` as the runner writes it."""

    schema_: Literal[1] = Field(alias="schema")
    status: str
    message: str
    failed_cell: int | None
    kernel_start_s: float | None
    cells: list[CellRecord] = Field(max_length=10_000)
    probe: ProbeFacts


@dataclass(frozen=True)
class ExecutionFacts:
    """How the run went, as the grader saw it.

    Attributes:
        status: ok, cell_error, cell_timeout, deadline, kernel_died, kernel_failed, malformed or
            runner_failed.
        message: one line for a person.
        failed_cell: index of the cell that failed, if one did.
        cells: the cell timeline.
        sources: first line of each cell's source, for the timeline.
        wall_s: wall time of the whole run in seconds.
        sandboxed: whether the kernel ran in the sandbox.
        probe: how the probe went.
    """

    status: str
    message: str
    failed_cell: int | None
    cells: tuple[CellRecord, ...]
    sources: tuple[str, ...]
    wall_s: float
    sandboxed: bool
    probe: ProbeFacts | None

    def cell_of(self, execution_count: int) -> int | None:
        """Index of the notebook cell that ran with ``execution_count``, if any."""
        return next((c.index for c in self.cells if c.execution_count == execution_count), None)


@dataclass(frozen=True)
class NewImage:
    """One image of the submission's ``new_images/``.

    Attributes:
        file: file name.
        thumbnail: PNG data URI of a thumbnail at most 160 px on a side ("" if unreadable).
        dataset_match: ``<class>/<file>`` of a dataset image with the same content or a pHash
            within the threshold, else ``None``.
        error: why the image could not be read, if it could not.
    """

    file: str
    thumbnail: str
    dataset_match: str | None
    error: str | None = None


@dataclass(frozen=True)
class ModelFile:
    """A file under ``MODEL_DIR`` after the run: relative path, size in bytes, written by it."""

    path: str
    size: int
    written_during_run: bool


@dataclass(frozen=True)
class Evidence:
    """Everything the checks may read for one notebook; built only by :mod:`grader.grade`."""

    notebook: str
    challenge: Challenge
    profile: str
    execution: ExecutionFacts
    probe: ProbeOutput | None
    probe_error: str | None
    hidden_labels: tuple[str, ...]
    new_images: tuple[NewImage, ...]
    model_files: tuple[ModelFile, ...]
    output_text: str
    added_labels: tuple[str, ...] = ()
    code: str = ""  # the student's code cells' sources, joined (not the injected cells)
