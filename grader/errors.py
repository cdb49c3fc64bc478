"""One error tree for every fault of the harness or of its configuration.

A student's failure (a crashing cell, a missing plot, a timeout) is never an exception: it is a
criterion result. The exceptions here are for faults that stop the grader itself, and each class
owns the exit status the CLI turns it into (the ``click.ClickException.exit_code`` pattern).

Exit statuses, in rising priority (a batch exits with the highest of its submissions'):
``EXIT_PASS`` 0 every submission passed, ``EXIT_FAIL`` 1 some failed (every student-side fault
is a failing scorecard), ``EXIT_USAGE`` 2 a coach-side mistake (option, setting, challenge,
rubric, dataset), ``EXIT_HARNESS`` 3 a fault of the grader itself.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAIL",
    "EXIT_HARNESS",
    "EXIT_PASS",
    "EXIT_USAGE",
    "ChallengeError",
    "ConfigError",
    "DataError",
    "GraderError",
    "HarnessError",
    "InternalError",
    "RubricError",
    "UsageError",
    "exit_code_of",
]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_HARNESS = 0, 1, 2, 3


class GraderError(Exception):
    """Base of every error the grader raises on purpose.

    Attributes:
        exit_code: process exit status the CLI uses for this error (2 usage, 3 harness fault).
        path: the file or folder the error is about, if any.
        fix: one sentence that tells the user what to do.
    """

    exit_code: int = EXIT_HARNESS

    def __init__(self, message: str, *, path: object = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.fix = fix

    def __str__(self) -> str:
        text = self.message
        if self.path is not None and self.path not in text:
            text = f"{self.path}: {text}"
        if self.fix:
            text = f"{text}\n  fix: {self.fix}"
        return text


class UsageError(GraderError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(GraderError):
    """A setting (environment variable, option) is missing or wrong (exit 2)."""

    exit_code = EXIT_USAGE


class DataError(ConfigError):
    """The dataset folder is missing, incomplete or differs from what a challenge records."""


class ChallengeError(ConfigError):
    """A challenge folder or its ``challenge.toml`` is invalid."""


class RubricError(ConfigError):
    """A rubric file is invalid: unknown keys, unknown check names, bad parameters."""


class HarnessError(GraderError):
    """The grader itself failed (kernel could not start, runner crashed): exit 3."""

    exit_code = EXIT_HARNESS


class InternalError(HarnessError):
    """An exception the grader did not expect (a bug of the grader's), wrapped with the name of
    its type so that it can be reported like any other harness fault (exit 3)."""


def exit_code_of(err: BaseException) -> int:
    """The exit status ``err`` stands for: its ``exit_code`` for a :class:`GraderError`, else
    ``EXIT_HARNESS`` (anything unexpected is a fault of the harness)."""
    return err.exit_code if isinstance(err, GraderError) else EXIT_HARNESS
