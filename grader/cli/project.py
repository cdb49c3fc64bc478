"""The project's commands: ``grader challenges``, ``checks`` and ``validate`` (the challenges, the
checks a rubric can use, and every challenge.toml, rubric and split checked), and ``grader
verify-references`` (every reference solution passes, every starter notebook fails).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.cli.options import announced, detect_device, resolve_sandbox, sandbox_option, validate_options
from grader.core import (
    ChallengeError,
    DataError,
    ExitStatus,
    GraderError,
    HarnessError,
    RubricError,
    Settings,
    UsageError,
    write_atomic,
)

if TYPE_CHECKING:
    from grader.core import Challenge

__all__ = ["add_parsers", "cmd_challenges", "cmd_checks", "cmd_validate", "cmd_verify"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify-references``, ``challenges``, ``checks`` and ``validate`` to the ``grader``
    parser's commands."""
    verify = sub.add_parser(
        "verify-references", help="check that every reference passes and every starter fails",
        description="Grade every reference solution and starter notebook through the real check "
        "path. Reference results are archived under reference_solutions/results/ and "
        "reference_solutions/RESULTS.md is regenerated from them.")
    verify.add_argument("--profile", default="ci",
                        help="profile to run, one the challenges declare (default: ci)")
    verify.add_argument("--challenge", metavar="ID", help="only this challenge")
    verify.add_argument("--out", default="out/verify", metavar="DIR",
                        help="where scorecards go (default: out/verify)")
    verify.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    verify.add_argument("--no-archive", action="store_true",
                        help="do not archive results or rewrite RESULTS.md")
    verify.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="notebooks graded at once, each kernel with cores/N threads (default 1; archived "
                        "wall times are then of shared cores)")
    sandbox_option(verify)

    sub.add_parser("challenges", help="list the challenges")
    sub.add_parser("checks", help="list the checks a rubric can use, with their pass conditions")
    sub.add_parser("validate", help="validate every challenge.toml and rubric")


def cmd_challenges(settings: Settings) -> int:
    """``grader challenges``: each challenge's id and title."""
    from grader.core import challenge_ids, load_challenge  # here for start-up time

    for cid in challenge_ids(settings.project_dir):
        c = load_challenge(settings.project_dir, cid)
        print(f"{cid:20} {c.title}")
    return ExitStatus.PASSED


def cmd_checks() -> int:
    """``grader checks``: each registered check, its parameters and its pass condition."""
    from grader.score.checks import check_names, get_check  # here for start-up time

    for name in check_names():
        spec = get_check(name)
        fields = ", ".join(f"{k}" for k in spec.params.model_fields) or "no parameters"
        print(f"{name} ({fields})\n    {' '.join(spec.doc.split())}\n")
    return ExitStatus.PASSED


def cmd_validate(settings: Settings) -> int:
    """``grader validate``: load every challenge and its rubric and check its splits (public,
    practice, near-duplicates where the data directory is set), one line each.

    Raises:
        HarnessError: no challenge is found.
        GraderError: a rubric is for another challenge.
        ChallengeError, RubricError, DataError: a challenge, rubric or split is invalid.
    """
    from grader.core import challenge_ids, load_challenge  # here for start-up time
    from grader.data import CrossSplit, list_dataset, load_split, validate_split
    from grader.score import load_rubric

    start = time.perf_counter()
    memo: dict[tuple[object, ...], CrossSplit] = {}
    ids = challenge_ids(settings.project_dir)
    if not ids:
        raise HarnessError("no challenges found", path=settings.project_dir / "challenges")
    for cid in ids:
        challenge = load_challenge(settings.project_dir, cid)
        rubric = load_rubric(settings.project_dir, challenge.rubric)
        if rubric.challenge != cid:
            raise GraderError(f"rubric {challenge.rubric} is for {rubric.challenge}, not {cid}")
        for criterion in rubric.criteria + rubric.disabled:
            stray = sorted(set(criterion.profile_params) - set(challenge.profiles))
            if stray:
                raise RubricError(f"criterion {criterion.id}: profile_params for {', '.join(stray)}, a "
                                  f"profile {cid} does not declare", path=f"rubrics/{challenge.rubric}.toml",
                                  fix=f"use one of {', '.join(challenge.profiles) or 'no profile'} "
                                  "or declare it in challenge.toml")
        entries: tuple[tuple[str, str], ...] | None = None
        listing = None if settings.data_dir is None else list_dataset(settings.data_dir, challenge)  # once
        if listing is not None:
            entries = listing.hidden
            hidden = f"hidden test set of {len(entries)} images"
        elif challenge.dataset.hidden_split:
            entries = tuple((e, e.split("/", 1)[0]) for e in load_split(challenge))
            hidden = f"hidden test set of {len(entries)} images"
        else:
            hidden = f"hidden test set: {challenge.dataset.source}/test"
        frameworks = sorted({f for c in rubric.criteria for f in c.fixes})
        fixes = f"; fixes for {', '.join(frameworks)}" if frameworks else ""
        public = _validate_public_split(challenge, entries)
        practice = _validate_practice_split(challenge, None if listing is None else listing.public)
        near = ("near-duplicates not checked (no data directory)" if listing is None
                else validate_split(settings, challenge, listing, memo))
        disabled = (f" (disabled, not graded: {', '.join(c.id for c in rubric.disabled)})"
                    if rubric.disabled else "")
        print(f"ok  {cid}: {len(rubric.criteria)} criteria{disabled}, {rubric.total_points:g} points, {hidden}{fixes}"
              f"; {public}; {practice}; {near}")
    print(f"validated {len(ids)} challenges in {time.perf_counter() - start:.1f} s")
    return ExitStatus.PASSED


def _validate_public_split(challenge: Challenge, hidden: tuple[tuple[str, str], ...] | None) -> str:
    """Check ``challenge``'s public split file against its hidden test set (``hidden``: its
    ``(entry, class)`` pairs, None when the data directory is not set and the challenge takes
    its hidden test set from ``test/``); return what ``validate`` says of it.

    Raises:
        ChallengeError: the challenge records no public split.
        DataError: the file cannot be read, or it is not stratified halves of the hidden test set
            (every problem :func:`grader.data.splits.public_split_problems` finds, named).
    """
    from grader.data import load_public_split, public_split_problems  # here for start-up time

    recorded = load_public_split(challenge)
    if recorded is None:
        raise ChallengeError(f"{challenge.id} records no public split of its hidden test set",
                             path=challenge.folder / "challenge.toml",
                             fix="add public_split = \"splits/<dataset>-public.txt\" under [dataset] and "
                             "run grader data make-split " + challenge.id)
    path = challenge.folder.parent / str(challenge.dataset.public_split)
    if hidden is None:
        return f"public split of {len(recorded)} images (not checked: no data directory)"
    problems = public_split_problems(hidden, recorded)
    if problems:
        raise DataError(f"public split of {challenge.id}: " + "; ".join(problems), path=path,
                        fix="regenerate it with grader data make-split " + challenge.id)
    return f"public part {len(recorded)}, private part {len(hidden) - len(recorded)}"


def _validate_practice_split(challenge: Challenge, public: Sequence[tuple[str, str]] | None) -> str:
    """Check ``challenge``'s practice split (:func:`grader.data.practice.practice_split_problems`:
    disjoint from the hidden test set, every class present and, given the data folder's
    ``public`` entries, every entry among them); return what ``validate`` says of it.

    Raises:
        DataError: the file cannot be read or has a problem (each named).
    """
    from grader.data import load_practice_split, practice_split_problems  # here for start-up time

    practice = load_practice_split(challenge)
    if practice is None:
        return "no practice split"
    problems = practice_split_problems(challenge, practice, public)
    if problems:
        raise DataError(f"practice split of {challenge.id}: " + "; ".join(problems),
                        path=challenge.folder.parent / str(challenge.dataset.practice_split),
                        fix="regenerate it with grader data make-split " + challenge.id)
    return f"practice split {len(practice)}" + ("" if public is not None else " (not checked against the data)")


class _Progress:
    """Prints a running notebook's status lines, timed from the start of its submission."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def restart(self) -> None:
        self.started = time.monotonic()

    def __call__(self, status: str) -> None:
        print(f"    {time.monotonic() - self.started:5.0f} s  {status}", file=sys.stderr, flush=True)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """``grader verify-references``: grade every reference solution and starter notebook, archive
    the references' results and rewrite RESULTS.md (unless ``--no-archive``); 0 when each is as
    expected, else 1."""
    # here for start-up time
    from grader.pipeline import GradeOptions, Verification, archive_result, render_results
    from grader.pipeline.verify import verify

    validate_options(args, settings)
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: it must be at least 1", fix="pass --jobs 1 or more")
    progress = _Progress()

    def report(v: Verification) -> None:
        e, r = v.expectation, v.result
        accuracy = [f"{m.function} {m.accuracy:.3f}" for nb in r.notebooks for m in nb.models]
        wall = sum(nb.execution.wall_s for nb in r.notebooks)
        failed = [c.id for nb in r.notebooks for c in nb.criteria if c.status != "pass"]
        print(f"{'ok  ' if v.ok else 'BAD '} {e.name} ({e.role}, {args.profile}): {r.verdict} "
              f"{r.score:g}/{r.max_score:g}, {', '.join(accuracy) or 'no accuracy'}, {wall:.0f} s"
              + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
        if e.role == "reference" and not args.no_archive:
            archive_result(settings, e.name, args.profile, r)
        progress.restart()

    options = GradeOptions(device=detect_device(args.device), on_progress=progress,
                           sandbox=announced(resolve_sandbox(args.sandbox)))
    results = verify(settings, profile=args.profile, challenge=args.challenge,
                     out=Path(args.out), options=options, on_result=report, jobs=args.jobs)
    if not args.no_archive:
        path = settings.project_dir / "reference_solutions" / "RESULTS.md"
        write_atomic(path, render_results(settings))
        print(f"wrote {path}")
    bad = [v.expectation.name for v in results if not v.ok]
    print(f"{len(results) - len(bad)} of {len(results)} as expected"
          + (f"; not as expected: {', '.join(bad)}" if bad else ""))
    return ExitStatus.PASSED if not bad else ExitStatus.FAILED
