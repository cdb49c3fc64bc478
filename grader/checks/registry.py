"""The registry of checks: each registers under a name with a parameter schema.

Each check registers under a name with a parameter schema; ``get_check`` fails loudly with the
list of known names. A check's docstring says what evidence it reads and its exact pass
condition. A student's failure is a ``fail`` result with a message, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from grader.errors import RubricError
from grader.evidence import Evidence

__all__ = ["CheckResult", "CheckSpec", "NoParams", "Params", "check_names", "fail", "get_check", "passed",
           "register"]

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


def register(name: str, params: type[Params]) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
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


def passed(ok: bool, message: str, **measured: float | int | str) -> CheckResult:
    return CheckResult(status="pass" if ok else "fail", message=message, measured=measured)


def fail(message: str, **measured: float | int | str) -> CheckResult:
    return passed(False, message, **measured)


class NoParams(Params):
    pass

