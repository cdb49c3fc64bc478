"""What crosses the trust boundary, and the evidence the checks read.

The probe's JSON and the runner's timeline are written by processes the student controls; they
are parsed here with strict schemas and size limits, never unpickled or executed. The
:class:`Evidence` bundle joins them with what only the grader holds (hidden labels, dataset
hashes) and is the sole input of every check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.core import Challenge

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.intake import Answer

__all__ = [
    "CellRecord",
    "Evidence",
    "ExecutionFacts",
    "FigureData",
    "HiddenProbeOutput",
    "ModelFile",
    "RestoreFacts",
    "NewImage",
    "ProbeOutput",
    "RunResult",
    "UnreadableImage",
    "cell_number",
]

MAX_ITEMS = 100_000
Label = str


class _Wire(BaseModel):
    """Schema of data from the student's side: unknown keys are errors, strings are bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4000,
                              allow_inf_nan=False)


class UnreadableImage(_Wire):
    """An image file the probe could not decode (so left out of the call), and why."""

    file: str
    error: str


class ModelRun(_Wire):
    """One contract function run on a folder of images (``predict`` or ``predict_transfer``):
    ``seconds`` of the whole run (opening images included), ``inference_s`` inside the function,
    ``unreadable`` the files the probe could not decode (predictions are for the others, in order).
    """

    predictions: list[Label] | None = Field(default=None, max_length=MAX_ITEMS)
    error: str | None = None
    seconds: float | None = None
    inference_s: float | None = None
    unreadable: list[UnreadableImage] = Field(default=[], max_length=MAX_ITEMS)


class NewImagesRun(ModelRun):
    """``predict`` run on the submission's ``new_images/``: ``files`` are the images it was
    called on, in order (the readable ones), ``unreadable`` those the probe could not decode.

    Validated: no file twice, none both read and unreadable, one prediction per file.
    """

    files: list[str] = Field(max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> NewImagesRun:
        bad = [u.file for u in self.unreadable]
        if len(set(self.files)) != len(self.files) or len(set(bad)) != len(bad):
            raise ValueError("new_images lists a file twice")
        if set(bad) & set(self.files):
            raise ValueError("new_images lists a file as both read and unreadable")
        if self.predictions is not None and len(self.predictions) != len(self.files):
            raise ValueError(f"new_images has {len(self.predictions)} predictions for {len(self.files)} files")
        return self


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
    """The probe's JSON file (``grader/student/kernel/probe.py``), schema 1."""

    schema_: Literal[1] = Field(alias="schema")
    class_names: list[str] | None = Field(default=None, max_length=10_000)
    class_names_error: str | None = None
    models: dict[Literal["predict", "transfer", "mlp"], ModelRun] = {}
    new_images: NewImagesRun | None = None
    new_images_extra: dict[Literal["imagenet"], ModelRun] = {}
    extra_sets: dict[Literal["added", "mnist"], ModelRun] = {}
    history: HistoryData | None = None
    figures: list[FigureData] = Field(default=[], max_length=100)


HiddenErrorKind = Literal["not_defined", "not_callable", "raised", "not_a_list", "wrong_count", "not_str",
                          "unreadable"]

# what a team is told of a hidden step's failure: fixed sentences, never the kernel's own text
# (an exception's message or a returned value could carry the hidden images out: grader.sandbox.gate)
HIDDEN_ERRORS: dict[str, str] = {
    "not_defined": "is not defined",
    "not_callable": "is not a function",
    "raised": ("raised an exception on the hidden test images; its message is not shown, since text "
               "the kernel writes once it has the hidden images could carry them out. Run your own "
               "test cell on a few images of the public data to see it"),
    "not_a_list": "did not return a list of class names on the hidden test images",
    "wrong_count": "returned a different number of answers than images on the hidden test images",
    "not_str": "returned something other than class names (str) on the hidden test images",
    "unreadable": "could not be given the hidden test images (they did not decode in the kernel)",
}
HIDDEN_STATUS: dict[str, str] = {
    "timeout": "ran past the probe's time limit on the hidden test images",
    "error": "stopped with an error while the probe called it on the hidden test images",
    "kernel_died": "was running when the kernel died, on the hidden test images",
    "gate_closed": ("was not called: the hidden test images were not made available "
                    "(a fault of the grader, not of the notebook: re-grade it)"),
}


class HiddenRun(_Wire):
    """One contract function on a held-out set, as the probe's hidden step reports it: answers
    (class names, bounded), or a fixed error kind; no text of the kernel's."""

    predictions: list[Label] | None = Field(default=None, max_length=MAX_ITEMS)
    error: HiddenErrorKind | None = None

    def as_model_run(self) -> ModelRun:
        return ModelRun(predictions=self.predictions,
                        error=HIDDEN_ERRORS[self.error] if self.error is not None else None)


class HiddenProbeOutput(_Wire):
    """``hidden.json``: the probe's hidden step (``grader/student/kernel/probe.py``,
    ``_grader_probe_hidden``) or, when it could not write, the runner's status of it."""

    schema_: Literal[1] = Field(alias="schema")
    status: Literal["ok", "timeout", "error", "kernel_died", "gate_closed"]
    models: dict[Literal["predict", "transfer", "mlp"], HiddenRun] = {}
    extra_sets: dict[Literal["added", "mnist"], HiddenRun] = {}

    def merged_into(self, visible: ProbeOutput, contract_models: dict[str, str]) -> ProbeOutput:
        """``visible`` (the visible step's output) with this step's answers as its ``models``
        and ``extra_sets``; every function of ``contract_models`` (role -> name) that has no
        answer gets this step's status as its error. Whatever ``visible`` held of those (a
        file the kernel wrote before the gate) is dropped."""
        if self.status != "ok":
            failed = ModelRun(error=HIDDEN_STATUS[self.status])
            return visible.model_copy(update={"models": {role: failed for role in contract_models},
                                              "extra_sets": {}})
        return visible.model_copy(update={
            "models": {role: run.as_model_run() for role, run in self.models.items()},
            "extra_sets": {role: run.as_model_run() for role, run in self.extra_sets.items()}})


class CellRecord(_Wire):
    """One cell in the timeline: ``status`` is ok, error, timeout, running, skipped or not_run
    (from the runner), or cancelled (set by the grader for the cell a cancel stopped);
    ``progress`` the last line it printed, as the runner saw it while it ran (at most once a
    second: an epoch line, a progress bar's last state)."""

    index: int
    status: Literal["ok", "error", "timeout", "running", "skipped", "not_run", "cancelled"]
    seconds: float | None
    error: dict[str, str] | None
    execution_count: int | None = None
    progress: str | None = None


class ProbeFacts(_Wire):
    status: Literal["ok", "error", "timeout", "running", "not_run"]
    seconds: float | None
    message: str


class RestoreFacts(_Wire):
    """The restore of a run whose kernel died or would not stop a cell: the cells tagged
    ``grader-restore`` run in a fresh kernel (:mod:`grader.student.runner`). ``cells``: their
    student numbers; ``status``: ``ok`` (the probe then ran in that kernel), ``error``,
    ``timeout``, ``kernel_died`` or ``running``; ``message``: why it did not end ``ok``."""

    status: Literal["ok", "error", "timeout", "kernel_died", "running"]
    cells: list[int] = Field(max_length=10_000)
    message: str = ""


class RunnerFacts(_Wire):
    """``facts.json`` as the runner writes it."""

    schema_: Literal[1] = Field(alias="schema")
    status: str
    message: str
    failed_cell: int | None
    kernel_start_s: float | None
    cells: list[CellRecord] = Field(max_length=10_000)
    probe: ProbeFacts
    restore: RestoreFacts | None = None


@dataclass(frozen=True)
class ExecutionFacts:
    """How the run went, as the grader saw it.

    Attributes:
        status: ok, cell_error, cell_timeout, deadline, cancelled (by the coach), kernel_died,
            kernel_failed, malformed, too_large, copy_failed or runner_failed.
        message: one line for a person.
        failed_cell: index of the cell that failed, if one did.
        cells: the cell timeline.
        sources: first line of each cell's source, for the timeline.
        wall_s: wall time of the whole run in seconds.
        sandboxed: whether the kernel ran in the sandbox.
        probe: how the probe went.
        injected_cell: index of the cell of parameters the grader injected, if any.
        restore: the restore in a fresh kernel, when the kernel died or would not stop a cell
            and the notebook tags cells ``grader-restore``; else None.

    Indexes (``failed_cell``, :attr:`CellRecord.index`) are 0-based positions in the notebook
    as run, the injected cell counted; :meth:`number_of` turns one into the student's cell
    number (see :mod:`grader.score.scorecard`).
    """

    status: str
    message: str
    failed_cell: int | None
    cells: tuple[CellRecord, ...]
    sources: tuple[str, ...]
    wall_s: float
    sandboxed: bool
    probe: ProbeFacts | None
    injected_cell: int | None = None
    restore: RestoreFacts | None = None

    def cell_of(self, execution_count: int) -> int | None:
        """Index of the notebook cell that ran with ``execution_count``, if any."""
        return next((c.index for c in self.cells if c.execution_count == execution_count), None)

    def number_of(self, index: int) -> int | None:
        """The student's number of the cell at ``index``: its 1-based position in the notebook
        as the student sees it (markdown cells included, the injected cell not counted); None
        for the injected cell or a negative index."""
        return cell_number(index, self.injected_cell)

    def index_of(self, number: int) -> int:
        """The index of the cell the student numbers ``number`` (the inverse of
        :meth:`number_of`)."""
        injected = self.injected_cell
        return number - 1 if injected is None or number - 1 < injected else number


def cell_number(index: int, injected: int | None) -> int | None:
    """The student's number of the cell at 0-based ``index`` of a notebook into which a cell
    was injected at ``injected`` (None: none was): see :meth:`ExecutionFacts.number_of`."""
    if index < 0 or index == injected:
        return None
    return index if injected is not None and index > injected else index + 1


@dataclass(frozen=True)
class NewImage:
    """One image of the submission's ``new_images/``.

    Attributes:
        file: file name.
        thumbnail: PNG data URI of a thumbnail at most 160 px on a side ("" if unreadable).
        dataset_match: ``<class>/<file>`` of a *public* dataset image with the same content or
            a pHash within the threshold, else ``None`` (what checks and teams see).
        error: why the image could not be read, if it could not.
        hidden_match: the hidden test image it copies where no public one matched, else
            ``None``: the coach's record only (:class:`grader.score.scorecard.NewImageRow`).
    """

    file: str
    thumbnail: str
    dataset_match: str | None
    error: str | None = None
    hidden_match: str | None = None


@dataclass(frozen=True)
class ModelFile:
    """A file (or a TensorFlow SavedModel folder) under ``MODEL_DIR`` after the run.

    Attributes:
        path: path relative to ``MODEL_DIR`` (``.`` when ``MODEL_DIR`` itself is a SavedModel).
        size: size in bytes (of every file, for a folder).
        written_during_run: modified after the run started (any file of a folder).
        format: name of the model format its signature shows (:func:`grader.evidence.modelfile.identify`),
            or None when it is not a model file.
        description: one line: the format (``PyTorch torch.save archive``), or what the file is
            instead (``it is all zero bytes``).
        outside: a model file the run wrote elsewhere in the working copy, not under
            ``MODEL_DIR`` (``path`` then relative to the working copy: ``best.h5`` beside the
            notebook), named by the ``saved_model`` check's failure.
    """

    path: str
    size: int
    written_during_run: bool
    format: str | None = None
    description: str = ""
    outside: bool = False


@dataclass(frozen=True)
class Evidence:
    """Everything the checks may read for one notebook; built only by :mod:`grader.pipeline.grade`."""

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
    mnist_labels: tuple[str, ...] = ()  # the MNIST test images' labels, "0".."9" (grader.data.mnist); empty: none
    code: str = ""  # the student's code cells' sources, joined (not the injected cells)
    # per hidden test image (its order), whether it is in the public part; None: no split
    hidden_public: tuple[bool, ...] | None = None
    # scored on the practice split of the public data (grader check --practice), not the hidden set
    practice: bool = False
    # the written answers of the notebook as submitted (grader.intake.answers), for coach-graded criteria
    answers: tuple[Answer, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """What the run left: the execution facts, the executed notebook, the validated probe."""

    facts: ExecutionFacts
    executed: NotebookNode | None
    probe: ProbeOutput | None
    probe_error: str | None
    started_at: float
