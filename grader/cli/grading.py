"""``grader check PATH... --out DIR --grades SHEET``: the coach's grades of written answers, from a
filled grading sheet, applied to the cached results of the submissions; no notebook runs again.

For each submission of PATH...: its result from the result cache (:func:`grader.pipeline.cached_result`,
the same key ``grader check`` stored it under; where the cache no longer holds it, because the grader,
a challenge or the data changed since, the ``DIR/<submission>/result.json`` it wrote, its loss curves
redrawn), the grades already in ``DIR/<submission>/result.json`` kept where the answer is unchanged
(:func:`grader.score.carry_grades`), then the sheet's rows applied (:func:`grader.report.apply_sheet`).
Its scorecard, ``result.json`` and Gradescope file are written again, then the run's index,
gradebook, JUnit file, grading sheet and grade-by-question page. Every row that could not be
applied is printed with its line and why; a submission neither the cache nor ``DIR`` holds is named
and left out (grade it first without ``--grades``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import ExitStatus, Settings, UsageError

if TYPE_CHECKING:
    from grader.pipeline import GradeOptions, Job
    from grader.report import Part

__all__ = ["apply_grades_sheet"]


def _read(sheet: Path) -> str:
    try:
        return sheet.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise UsageError(f"cannot read the grading sheet: {err.strerror or err}", path=sheet,
                         fix="pass the grading-sheet.csv that grader check wrote into --out, filled in") from err
    except UnicodeDecodeError as err:
        raise UsageError("the grading sheet is not UTF-8 text", path=sheet,
                         fix="save it from the spreadsheet as CSV UTF-8") from err


def apply_grades_sheet(sheet: Path, jobs: Sequence[Job], settings: Settings, options: GradeOptions, out: Path, *,
                       leaderboard: Part, practice: bool) -> int:
    """Apply the grading sheet ``sheet`` to the cached results of ``jobs`` and write every output
    into ``out`` again (module docstring).

    Returns:
        the exit status: 0 when every submission of ``jobs`` passes, else 1 (one fails, awaits the
        coach, or is not in the cache).

    Raises:
        UsageError: the sheet cannot be read, or has no column the grader wrote.
    """
    from grader.integrity import cohort_pairs  # here for start-up time
    from grader.pipeline import cached_result
    from grader.report import (
        apply_sheet,
        earlier_results,
        previous_result,
        read_grading_sheet,
        write_cohort,
        write_submission,
    )
    from grader.score import carry_grades, with_loss_plots

    rows, problems = read_grading_sheet(_read(sheet))
    if not rows and problems and problems[0].startswith(("line 1:", "the sheet is empty")):
        raise UsageError(f"not a grading sheet: {problems[0]}", path=sheet,
                         fix="fill the grading-sheet.csv that grader check wrote into --out and pass it")
    found, missing, stored = [], [], []
    for job in jobs:
        earlier = previous_result(out, job.folder)
        result = cached_result(job.submission, settings, options)
        if result is None and earlier is not None and earlier.practice == practice:
            result = with_loss_plots(earlier)  # the cache was emptied, or the grader changed since
            stored.append(job)
        if result is None:
            missing.append(job)
            continue
        found.append((job, carry_grades(earlier, result)))
    folders = [job.folder for job, _ in found]
    graded, refused = apply_sheet([r for _, r in found], folders, rows)
    for result, folder in zip(graded, folders, strict=True):
        write_submission(out, result, folder)
    for line in [*problems, *refused]:
        print(f"grader: {sheet}: {line}", file=sys.stderr)
    for job in missing:
        print(f"grader: {job.submission.name}: not graded into {out} and not in the result cache with these options; "
              "left out (grade it without --grades first)", file=sys.stderr)
    for job in stored:
        print(f"grader: {job.submission.name}: not in the result cache (the grader or the challenge changed since it "
              f"was graded): its grades applied to {out / job.folder / 'result.json'}, its scorecard drawn again "
              "without the new images' thumbnails and the notebook's own loss plot", file=sys.stderr)
    pairs = cohort_pairs(graded, [job.submission.notebooks for job, _ in found], folders,
                         settings) if len(graded) > 1 else []
    others, other_folders, left_out = earlier_results(out, set(folders), practice=practice)
    for line in left_out:
        print(f"grader: {line}", file=sys.stderr)
    paths = write_cohort(out, [*others, *graded], [*other_folders, *folders], leaderboard=leaderboard, pairs=pairs)
    applied = len(rows) - len(refused)
    print(f"grades: {applied} of {len(rows)} graded row(s) of {sheet} applied to {len(graded)} submission(s), no "
          f"notebook run; {len(problems) + len(refused)} row(s) not applied"
          + (f", {len(missing)} submission(s) not in the cache" if missing else ""), file=sys.stderr)
    print(f"index: {paths[0]} (also {', '.join(p.name for p in paths[1:])})", file=sys.stderr)
    for result in graded:
        print(f"{result.submission}: {result.verdict.upper()} {result.score:g}/{result.max_score:g} points",
              file=sys.stderr)
    ok = not missing and bool(graded) and all(r.verdict == "pass" for r in graded)
    return ExitStatus.PASSED if ok else ExitStatus.FAILED
