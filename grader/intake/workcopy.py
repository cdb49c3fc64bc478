"""A submission's working copy: the size of the team's files checked against the challenge's
limit, then exactly those files copied into the folder the notebook runs in."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.intake.submissions import Submission
from grader.intake.unzip import size_text

__all__ = ["copy_submission", "size_problem", "submission_bytes"]


def submission_bytes(submission: Submission) -> int:
    """The size of the team's files, in bytes (``lstat``; a file gone counts 0)."""
    total = 0
    for rel in submission.files:
        try:
            total += (submission.root / rel).lstat().st_size
        except OSError:
            continue
    return total


def size_problem(submission: Submission, *, limit_mb: int) -> str | None:
    """Why the team's files do not fit the working copy (``limit_mb``, MiB: the challenge's
    ``disk_mb``, the size of its tmpfs), or None when they fit."""
    size = submission_bytes(submission)
    if size <= limit_mb * 2**20:
        return None
    return (f"the submission holds {size_text(size)}, over this challenge's limit of {limit_mb} MB "
            "for the working copy: leave datasets and checkpoints out; the grader gives the "
            "data in DATA_DIR")


def copy_submission(submission: Submission, workdir: Path, *, limit_mb: int) -> str | None:
    """Copy exactly the team's files into ``workdir`` (an existing folder), their size checked
    first (:func:`size_problem`).

    Returns:
        None when copied; else why not, in one message for the scorecard (over the limit, or the
        OS error of the copy, ENOSPC included). Symbolic links that appeared since intake are
        skipped.
    """
    too_large = size_problem(submission, limit_mb=limit_mb)
    if too_large is not None:
        return too_large
    rel = ""
    try:
        for rel in submission.files:
            src, dst = submission.root / rel, workdir / rel
            if src.is_symlink():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    except OSError as err:
        return (f"the submission could not be copied into its working copy: {err.strerror or err} at {rel}."
                " Leave datasets, checkpoints and other large or "
                "unreadable files out of the submission")
    return None
