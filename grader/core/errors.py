"""One error tree for every fault of the harness or of its configuration.

A student's failure (a crashing cell, a missing plot, a timeout) is never an exception: it is a
criterion result. The exceptions here are for faults that stop the grader itself, and each class
owns the exit status the CLI turns it into (the ``click.ClickException.exit_code`` pattern).

The exit statuses are the members of :class:`ExitStatus` (pytest's ``ExitCode`` pattern).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ChallengeError",
    "ConfigError",
    "DataError",
    "ExitStatus",
    "GraderError",
    "HarnessError",
    "RubricError",
    "UsageError",
    "exit_code_of",
]


class ExitStatus(IntEnum):
    """The ``grader`` command's exit statuses (the README's), the first four in rising priority:
    a batch exits with the highest of its submissions'.

    Attributes:
        PASSED: every submission passed.
        FAILED: some failed (every student-side fault is a failing scorecard), or none was graded.
        USAGE: a coach-side mistake (option, setting, challenge, rubric, dataset).
        HARNESS: a fault of the grader itself.
        INTERRUPTED: stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
    """

    PASSED = 0
    FAILED = 1
    USAGE = 2
    HARNESS = 3
    INTERRUPTED = 130


class GraderError(Exception):
    """Base of every error the grader raises on purpose.

    Attributes:
        exit_code: process exit status the CLI uses for this error (``ExitStatus.USAGE``,
            ``ExitStatus.HARNESS``).
        path: the file or folder the error is about, if any.
        fix: one sentence that tells the user what to do.
    """

    exit_code: ExitStatus = ExitStatus.HARNESS

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

    exit_code = ExitStatus.USAGE


class ConfigError(GraderError):
    """A setting (environment variable, option) is missing or wrong (exit 2)."""

    exit_code = ExitStatus.USAGE


class DataError(ConfigError):
    """The dataset folder is missing, incomplete or differs from what a challenge records."""


class ChallengeError(ConfigError):
    """A challenge folder or its ``challenge.toml`` is invalid."""


class RubricError(ConfigError):
    """A rubric file is invalid: unknown keys, unknown check names, bad parameters."""


class HarnessError(GraderError):
    """The grader itself failed (kernel could not start, runner crashed): exit 3."""

    exit_code = ExitStatus.HARNESS


def exit_code_of(err: BaseException) -> ExitStatus:
    """The exit status ``err`` stands for: its ``exit_code`` for a :class:`GraderError`, else
    ``ExitStatus.HARNESS`` (anything unexpected is a fault of the harness)."""
    return err.exit_code if isinstance(err, GraderError) else ExitStatus.HARNESS
