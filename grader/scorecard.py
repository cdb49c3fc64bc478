"""The scorecard: results of one submission, the schema of ``result.json`` (version 1).

Pure: built from evidence and check results, rendered elsewhere. A submission passes when
every required criterion of every notebook passes; its score is the sum of earned points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.checks import CheckResult
from grader.measure import Measurement
from grader.rubric import Criterion

__all__ = [
    "CellRow",
    "CriterionResult",
    "ExecutionSummary",
    "ModelReport",
    "NewImageRow",
    "NotebookResult",
    "SubmissionResult",
    "score_criteria",
]

SCHEMA_VERSION: Literal[1] = 1
Verdict = Literal["pass", "fail"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriterionResult(_Model):
    """One criterion as graded: ``status`` pass or fail, ``points`` earned of ``max_points``."""

    id: str
    title: str
    status: Literal["pass", "fail"]
    required: bool
    points: float
    max_points: float
    message: str
    fix: str
    measured: dict[str, float | int | str] = {}


class CellRow(_Model):
    """One row of the cell timeline."""

    index: int
    status: str
    seconds: float | None
    source: str
    error: str | None


class ExecutionSummary(_Model):
    """How the notebook ran: status, message, failed cell, wall time (s), sandboxing, cells,
    and the probe's time (s) calling the contract after the last cell."""

    status: str
    message: str
    failed_cell: int | None
    wall_s: float
    sandboxed: bool
    probe_status: str
    cells: list[CellRow]
    probe_s: float | None = None


class ModelReport(_Model):
    """A model's figures on the hidden test set, as :class:`grader.measure.Measurement`."""

    role: Literal["predict", "transfer"]
    function: str
    accuracy: float
    n: int
    classes: list[str]
    per_class: list[dict[str, float | int | str]]
    confusion: list[list[int]]
    seconds: float | None
    inference_s: float | None = None

    @classmethod
    def of(cls, role: Literal["predict", "transfer"], function: str, m: Measurement,
           seconds: float | None, inference_s: float | None = None) -> ModelReport:
        return cls(
            role=role, function=function, accuracy=m.accuracy, n=m.n, classes=list(m.classes),
            per_class=[{"class": r.name, "support": r.support, "precision": r.precision,
                        "recall": r.recall, "f1": r.f1} for r in m.rows],
            confusion=[list(row) for row in m.confusion], seconds=seconds,
            inference_s=inference_s,
        )


class NewImageRow(_Model):
    """A new image with its prediction; the thumbnail (a data URI) stays out of JSON."""

    file: str
    prediction: str | None
    imagenet: str | None = None
    dataset_match: str | None
    error: str | None
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

    schema_version: Literal[1] = SCHEMA_VERSION
    submission: str
    path: str
    verdict: Verdict
    score: float
    max_score: float
    notebooks: list[NotebookResult]
    problems: list[str] = []
    started: str
    finished: str
    environment: Environment


def score_criteria(
    criteria: Sequence[Criterion], results: Sequence[CheckResult]
) -> tuple[list[CriterionResult], Verdict, float, float]:
    """Combine rubric criteria with their check results.

    Returns:
        the criterion results, the verdict (pass when every required criterion passes), the
        points earned and the points possible.
    """
    rows = [
        CriterionResult(
            id=c.id, title=c.title, status=r.status, required=c.required,
            points=c.points if r.status == "pass" else 0.0, max_points=c.points,
            message=r.message, fix=c.fix if r.status == "fail" else "", measured=r.measured,
        )
        for c, r in zip(criteria, results, strict=True)
    ]
    verdict: Verdict = "pass" if all(r.status == "pass" for r in rows if r.required) else "fail"
    return rows, verdict, sum(r.points for r in rows), sum(r.max_points for r in rows)
