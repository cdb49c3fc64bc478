"""The registry of checks: each registers under a name with a parameter schema.

Each check registers under a name with a parameter schema; ``get_check`` fails loudly with the
list of known names. A check's docstring says what evidence it reads and its exact pass
condition. A student's failure is a ``fail`` result with a message, never an exception.

A criterion is measured only on a run that completed: when the run stopped early (a cell
raised or timed out, the kernel died, the file is not a notebook, the contract could not be
called or is not defined), :meth:`CheckSpec.evaluate` turns a check's ``fail`` into
``not_measured``, with the reason (:func:`run_problem`) and the run's fix in place of the
criterion's; a check that passed anyway (a model saved before the crash) keeps its pass.
``notebook_runs``, the check of the run itself, is registered with ``needs_run=False``.

A threshold check (its parameters derive from :class:`ThresholdParams`) measures a share of
``k`` in ``n`` images and decides on it as its criterion's ``decision`` says: ``point`` (the
default: the share itself against the threshold) or ``lower_bound`` (the lower end of its 95%
Wilson interval, :func:`grader.score.stats.wilson_interval`). Either way it reports the interval, and
the words of :attr:`CheckResult.borderline` when the interval contains the threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from grader.core import RubricError
from grader.evidence import Evidence
from grader.intake import Answer

__all__ = ["DECISIONS", "CheckResult", "CheckSpec", "Decision", "NoParams", "Params", "RunProblem", "ThresholdParams",
           "check_names", "fail", "get_check", "not_measured", "partial_run", "passed", "register", "run_problem"]

Status = Literal["pass", "fail", "not_measured", "awaiting"]
Decision = Literal["point", "lower_bound"]
DECISIONS: tuple[Decision, ...] = ("point", "lower_bound")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes:
        status: pass, fail, not_measured (the evidence does not exist: see the module) or awaiting
            (a written answer the coach has yet to grade).
        message: what the student is told.
        measured: figures the check measured.
        short: a figure for the verdict line, e.g. ``0.62 < 0.90`` (may be empty).
        fix: a fix that replaces the criterion's (the run's fix, for not_measured), or None.
        borderline: for a threshold check whose 95% interval contains its threshold, what that
            means, in words ("0.896, 95% interval 0.864-0.922 over 424 images: the threshold
            0.90 is inside it; another draw of test images could pass"); else "".
        of_run: not measured because of the run's problem (:func:`run_problem`), which the
            scorecard states once, above its criteria.
        answer: for a coach-graded criterion (:mod:`grader.score.checks.answers`), the written
            answer found (None: none); its status is then ``awaiting`` (the coach has it) or ``fail``.
    """

    status: Status
    message: str
    measured: dict[str, float | int | str] = field(default_factory=dict)
    short: str = ""
    fix: str | None = None
    borderline: str = ""
    of_run: bool = False
    answer: Answer | None = None


@dataclass(frozen=True)
class RunProblem:
    """Why a run gave no evidence to measure: ``reason`` (one line, e.g. ``cell 7 raised
    ValueError: bad shape``) and ``fix`` (what to do, for every criterion it leaves unmeasured)."""

    reason: str
    fix: str


def partial_run(ev: Evidence) -> bool:
    """Whether ``ev``'s run was stopped by a time limit (a cell's, or the notebook's: the runner
    interrupted the cell, :mod:`grader.student.runner`), or its kernel died or would not stop and
    the cells tagged ``grader-restore`` loaded the saved model in a fresh kernel, and the probe then
    called a defined contract: its figures are measured, on the model as it stood."""
    ex = ev.execution
    restored = ex.restore is not None and ex.restore.status == "ok"
    return ((ex.status in ("cell_timeout", "deadline") or restored) and ex.probe is not None
            and ex.probe.status == "ok" and ev.probe is not None and not _undefined_contract(ev)[0])


def run_problem(ev: Evidence) -> RunProblem | None:
    """Why ``ev``'s run left nothing to measure, or None when it ran to the end and defines
    the contract (``CLASS_NAMES`` a list of str, the predict function callable), or was cut by a
    time limit and still defines it (:func:`partial_run`).

    Cell numbers in the reasons are the student's own (see :mod:`grader.score.scorecard`).
    """
    ex = ev.execution
    if ex.status == "malformed":
        return RunProblem("the notebook is not a valid notebook",
                          "Fix the notebook file as its first criterion says; every other "
                          "criterion is measured once it runs.")
    if ex.status == "cancelled":
        return RunProblem(ex.message or "the run was cancelled by the coach",
                          "The coach cancelled this run; this criterion is measured when the "
                          "submission is graded again.")
    if ex.status != "ok" and not partial_run(ev):
        number = ex.number_of(ex.failed_cell) if ex.failed_cell is not None else None
        slow = ex.status in ("cell_timeout", "deadline")
        if number is not None:
            what = f"Make cell {number} {'finish within its time limit' if slow else 'run without error'}"
        else:
            what = "Make the notebook run top to bottom within its time limits"
        restore = ex.restore
        if restore is not None and restore.status != "ok":
            reason = f"{ex.message}; the cells tagged grader-restore did not restore the model: {restore.message}"
        else:
            reason = ex.message or f"the run ended with status {ex.status}"
        tip = (" Tag the cells that load your saved model and define predict (with their imports) "
               "grader-restore: when the kernel dies or a cell cannot be stopped, the grader runs them in a fresh "
               "kernel and scores that model." if ex.status in ("kernel_died", "cell_timeout", "deadline")
               and restore is None else "")
        return RunProblem(reason, f"{what}, then restart the kernel and run all cells; this criterion is "
                          f"measured once the notebook runs to its end.{tip}")
    if ex.probe is None or ex.probe.status != "ok":
        detail = ex.probe.message if ex.probe and ex.probe.message else "it did not run"
        return RunProblem(f"the notebook ran, but calling its contract failed: {detail}",
                          "Check that predict(images) returns one class name per PIL image, "
                          "quickly; this criterion is measured once it does.")
    if ev.probe is None:
        return RunProblem(ev.probe_error or "the probe gave no output",
                          "Check that the notebook's last cell leaves CLASS_NAMES and predict "
                          "defined; this criterion is measured once it does.")
    missing, details = _undefined_contract(ev)
    if missing:
        why = f" ({'; '.join(details)})" if details else ""
        return RunProblem(f"the notebook ran, but does not define {' / '.join(missing)}{why}",
                          f"Define {' and '.join(missing)} (see the challenge's contract): "
                          f"{ev.challenge.contract.class_names} = [...] class names, "
                          f"def {ev.challenge.contract.predict}(images): ... returning one name per image.")
    return None


def _undefined_contract(ev: Evidence) -> tuple[list[str], list[str]]:
    """The contract names the probe did not find defined as the contract asks, in the
    contract's order, and what it found instead where a name is defined but of the wrong kind
    (``CLASS_NAMES is dict, expected a list of str``)."""
    contract = ev.challenge.contract
    probe = ev.probe
    if probe is None:
        return [contract.class_names, contract.predict], []
    missing, details = [], []
    if probe.class_names is None:
        missing.append(contract.class_names)
        error = probe.class_names_error or ""
        if error and not error.endswith("is not defined"):
            details.append(error[:200])
    run = probe.models.get("predict")
    if run is None or (run.predictions is None and run.error is not None
                       and (run.error == "is not defined" or run.error.endswith("not a function"))):
        missing.append(contract.predict)
        if run is not None and run.error and run.error != "is not defined":
            details.append(f"{contract.predict} {run.error[:200]}")
    return missing, details


def not_measured(problem: RunProblem, **measured: float | int | str) -> CheckResult:
    """A not_measured result: ``not measured: <reason>``, with the run's fix."""
    return CheckResult(status="not_measured", message=f"not measured: {problem.reason}",
                       measured=measured, fix=problem.fix, of_run=True)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThresholdParams(Params):
    """Parameters of a threshold check. Each declares, last, ``decision: Decision = "point"``,
    set from the criterion's own ``decision`` key (:class:`grader.score.rubric.Criterion`), not
    written in ``params`` (declared by each, so that ``grader checks`` lists it last)."""


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its name, parameter schema and function."""

    name: str
    params: type[Params]
    run: Callable[[Evidence, Params], CheckResult]
    needs_run: bool = True

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip()

    def evaluate(self, ev: Evidence, params: Params) -> CheckResult:
        """:attr:`run`, with a ``fail`` turned into ``not_measured`` when the run left nothing
        to measure (see the module) and the check reads the run (``needs_run``)."""
        result = self.run(ev, params)
        if result.status != "fail" or not self.needs_run:
            return result
        problem = run_problem(ev)
        return result if problem is None else not_measured(problem, **result.measured)


_REGISTRY: dict[str, CheckSpec] = {}


def register(name: str, params: type[Params], *,
             needs_run: bool = True) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Register the decorated check as ``name`` with parameter schema ``params``; ``needs_run``
    False for a check that is measured whatever became of the run (``notebook_runs``)."""

    def decorate(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        _REGISTRY[name] = CheckSpec(name=name, params=params, run=fn, needs_run=needs_run)
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


def passed(ok: bool, message: str, *, short: str = "", borderline: str = "",
           **measured: float | int | str) -> CheckResult:
    """A pass when ``ok``, else a fail with ``short`` for the verdict line; ``borderline`` as
    :attr:`CheckResult.borderline`."""
    return CheckResult(status="pass" if ok else "fail", message=message, measured=measured,
                       short="" if ok else short, borderline=borderline)


def fail(message: str, *, short: str = "", borderline: str = "", **measured: float | int | str) -> CheckResult:
    """A fail, with ``short`` for the verdict line; ``borderline`` as :attr:`CheckResult.borderline`."""
    return CheckResult(status="fail", message=message, measured=measured, short=short, borderline=borderline)


class NoParams(Params):
    pass

