"""One error tree for every fault of the harness or of its configuration.

A student's failure (a crashing cell, a missing plot, a timeout) is never an exception: it is a
criterion result. The exceptions here are for faults that stop the grader itself, and each class
owns the exit status the CLI turns it into (the ``click.ClickException.exit_code`` pattern).
"""

from __future__ import annotations

__all__ = [
    "ChallengeError",
    "ConfigError",
    "DataError",
    "GraderError",
    "HarnessError",
    "RubricError",
    "UsageError",
]


class GraderError(Exception):
    """Base of every error the grader raises on purpose.

    Attributes:
        exit_code: process exit status the CLI uses for this error (2 usage, 3 harness fault).
        path: the file or folder the error is about, if any.
        fix: one sentence that tells the user what to do.
    """

    exit_code: int = 3

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

    exit_code = 2


class ConfigError(GraderError):
    """A setting (environment variable, option) is missing or wrong (exit 2)."""

    exit_code = 2


class DataError(ConfigError):
    """The dataset folder is missing, incomplete or differs from what a challenge records."""


class ChallengeError(ConfigError):
    """A challenge folder or its ``challenge.toml`` is invalid."""


class RubricError(ConfigError):
    """A rubric file is invalid: unknown keys, unknown check names, bad parameters."""


class HarnessError(GraderError):
    """The grader itself failed (kernel could not start, runner crashed): exit 3."""

    exit_code = 3
