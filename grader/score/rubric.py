"""Rubrics: ``rubrics/<challenge>.toml``, declarative and validated at load.

A rubric is data: a list of criteria, each naming a registered check with its parameters, the
points it is worth, whether it is required for a pass, and what to tell a student who misses
it. Unknown keys, unknown check names and bad parameters are errors. A rubric is never executed.

A criterion of a threshold check may say how it decides: ``decision = "point"`` (the default:
the measured share against the threshold) or ``decision = "lower_bound"`` (the lower end of the
share's 95% Wilson interval against it; see :mod:`grader.score.checks.registry`). ``claim_margin``
(default 0.05) is how far above the upper end of the measured accuracy's interval a printed
test or validation accuracy may lie before the scorecard flags it (:mod:`grader.evidence.claims`).

A coach-graded criterion (``check = "coach_graded"``, :mod:`grader.score.checks.answers`) asks a
``question`` a person grades; it may list rubric ``items`` (each with ``points`` and ``text``, as
Gradescope's rubric items; their points add up to at most the criterion's) and reusable
``comments``. These three keys are refused on any other criterion, and ``question`` is required on
a coach-graded one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grader.core import RubricError, rubric_file
from grader.evidence import Framework
from grader.score.checks import Params, check_names, get_check
from grader.score.checks.answers import COACH_GRADED
from grader.score.checks.registry import DECISIONS, Decision

__all__ = ["Criterion", "Rubric", "RubricItem", "load_rubric"]


class RubricItem(BaseModel):
    """One rubric item of a coach-graded criterion (as Gradescope's): ``points`` (>= 0) the coach
    gives when the answer has it, ``text`` what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: float = Field(ge=0)
    text: str = Field(min_length=1, max_length=2_000)


class Criterion(BaseModel):
    """One success criterion.

    Attributes:
        id: stable identifier (gradebook column, JUnit test name).
        title: what the criterion asks, for a person.
        check: registered check name (``grader.score.checks.check_names()``).
        points: points awarded when it passes.
        required: whether the submission fails without it.
        fix: what a student should do when it fails.
        fixes: per framework (``pytorch``, ``tensorflow``, ``sklearn``), a fix that names the
            framework's own calls; it replaces ``fix`` for a notebook of that framework
            (:func:`grader.evidence.frameworks.framework_of`).
        params: the check's parameters.
        profile_params: per profile, parameters that replace those in ``params``.
        decision: for a threshold check, ``point`` (pass on the measured share, the default)
            or ``lower_bound`` (pass only when the lower end of its 95% interval clears the
            threshold); passed to the check as its ``decision`` parameter.
        enabled: false for a criterion kept in the rubric but switched off: it is not graded and
            not counted (:attr:`Rubric.disabled`), and ``grader validate`` lists it as disabled.
        question: for a coach-graded criterion (``check = "coach_graded"``), the question the
            team answers in writing (required there, refused elsewhere).
        items: for a coach-graded criterion, its rubric items, in order (numbered from 1).
        comments: for a coach-graded criterion, comments the coach reuses.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    check: str
    points: float = Field(ge=0)
    required: bool = True
    fix: str
    fixes: dict[Framework, str] = {}
    params: dict[str, Any] = {}
    profile_params: dict[str, dict[str, Any]] = {}
    decision: Decision = "point"
    enabled: bool = True
    question: str | None = Field(default=None, min_length=1, max_length=4_000)
    items: list[RubricItem] = Field(default=[], max_length=50)
    comments: list[str] = Field(default=[], max_length=100)

    @field_validator("decision", mode="before")
    @classmethod
    def _known_decision(cls, value: object) -> object:
        if value not in DECISIONS:
            raise ValueError(f"decision {value!r} is not one of {', '.join(repr(d) for d in DECISIONS)}: write "
                             'decision = "point" (pass on the measured figure, the default) or decision = '
                             '"lower_bound" (pass only when the lower end of its 95% interval clears the threshold)')
        return value

    @model_validator(mode="after")
    def _coach_keys(self) -> Criterion:
        if self.check != COACH_GRADED:
            given = [k for k in ("question", "items", "comments") if getattr(self, k)]
            if given:
                raise ValueError(f"criterion {self.id}: {', '.join(given)} only go on a coach-graded criterion "
                                 f'(check = "{COACH_GRADED}"), not on {self.check}; remove '
                                 f"{'them' if len(given) > 1 else 'it'}")
            return self
        if self.question is None:
            raise ValueError(f'criterion {self.id}: a coach-graded criterion needs question = "..." (what the '
                             "team answers in writing)")
        total = sum(item.points for item in self.items)
        if total > self.points + 1e-9:
            raise ValueError(f"criterion {self.id}: its rubric items add up to {total:g} points, more than its "
                             f"{self.points:g}; lower an item's points or raise the criterion's")
        return self

    @property
    def coach_graded(self) -> bool:
        """Whether the coach grades this criterion (``check = "coach_graded"``)."""
        return self.check == COACH_GRADED

    @model_validator(mode="after")
    def _known_check(self) -> Criterion:
        spec = get_check(self.check)
        if "criterion" in spec.params.model_fields and any(
                "criterion" in p for p in [self.params, *self.profile_params.values()]):
            raise ValueError(f"criterion {self.id}: remove criterion from params (it is the criterion's own id)")
        if any("decision" in p for p in [self.params, *self.profile_params.values()]):
            raise ValueError(f'criterion {self.id}: write decision = "{self.decision}" on the criterion itself, '
                             "not in params")
        if self.decision != "point" and "decision" not in spec.params.model_fields:
            threshold = [n for n in check_names() if "decision" in get_check(n).params.model_fields]
            raise ValueError(f"criterion {self.id}: decision = {self.decision!r} needs a threshold check "
                             f"({', '.join(threshold)}), not {self.check}; remove it")
        for profile in [None, *self.profile_params]:
            try:
                spec.params.model_validate(self.merged_params(profile))
            except ValidationError as err:
                where = f" (profile {profile})" if profile else ""
                raise ValueError(f"criterion {self.id}: bad params for {self.check}{where}: {err}") from err
        return self

    def fix_for(self, framework: Framework | None) -> str:
        """The fix for a notebook of ``framework``: its entry in ``fixes``, else ``fix``."""
        return self.fixes.get(framework, self.fix) if framework is not None else self.fix

    def merged_params(self, profile: str | None) -> dict[str, Any]:
        """``params`` with the profile's overrides applied, ``decision`` for a threshold check and
        ``criterion`` (this criterion's id) for a coach-graded one."""
        merged = {**self.params, **(self.profile_params.get(profile, {}) if profile else {})}
        fields = get_check(self.check).params.model_fields
        if "decision" in fields:
            merged["decision"] = self.decision
        if "criterion" in fields:  # a coach-graded criterion's check finds the answer by the criterion's id
            merged["criterion"] = self.id
        return merged

    def params_for(self, profile: str | None) -> Params:
        """The validated parameter object for ``profile``."""
        return get_check(self.check).params.model_validate(self.merged_params(profile))


class Rubric(BaseModel):
    """A challenge's rubric, schema version 1.

    Attributes:
        claim_margin: how far (a share, 0..1) above the upper end of the 95% interval of the
            measured accuracy a printed test or validation accuracy may lie before it is flagged.
        criteria: the criteria graded, in order (those with ``enabled = false`` are moved to
            :attr:`disabled` when the rubric is read: no other code sees them).
        disabled: the criteria switched off (``enabled = false``): checked like the others when
            read, never graded or counted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    challenge: str
    criteria: list[Criterion] = Field(min_length=1)
    disabled: list[Criterion] = []
    claim_margin: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _set_disabled_apart(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("criteria"), list) or "disabled" in data:
            return data

        def off(c: Any) -> bool:
            return (c.get("enabled") is False) if isinstance(c, dict) else getattr(c, "enabled", True) is False

        return {**data, "criteria": [c for c in data["criteria"] if not off(c)],
                "disabled": [c for c in data["criteria"] if off(c)]}

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        ids = [c.id for c in self.criteria + self.disabled]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"criterion ids repeat: {', '.join(dup)}")
        return self

    @property
    def total_points(self) -> float:
        return sum(c.points for c in self.criteria)


def load_rubric(project_dir: Path, name: str) -> Rubric:
    """Load and validate ``rubrics/<name>.toml``, from the first project folder that holds it
    (:func:`grader.core.project.rubric_file`: a coach's project, then the shipped one).

    Raises:
        RubricError: missing file, invalid TOML, unknown keys or checks, bad parameters.
    """
    path = rubric_file(project_dir, name)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise RubricError(f"cannot read the rubric: {err}", path=path) from err
    try:
        return Rubric.model_validate(raw)
    except ValidationError as err:
        raise RubricError(f"invalid rubric:\n{err}", path=path,
                          fix="see the checks' parameters with `grader checks`") from err
    except RubricError as err:
        raise RubricError(err.message, path=path) from err
