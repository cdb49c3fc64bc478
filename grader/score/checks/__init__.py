"""The checks a rubric criterion can name: pure functions of :class:`~grader.evidence.records.Evidence`.

Each check registers under a name with a parameter schema; ``get_check`` fails loudly with the
list of known names. A check's docstring says what evidence it reads and its exact pass
condition. A student's failure is a ``fail`` result with a message, never an exception.
"""

from __future__ import annotations

from grader.score.checks import accuracy, answers, images, shown, training, transfer
from grader.score.checks.registry import CheckResult, CheckSpec, Params, check_names, get_check

__all__ = ["CheckResult", "CheckSpec", "Params", "check_names", "get_check"]

_MODULES = (accuracy, answers, images, shown, training, transfer)  # importing them registers their checks
