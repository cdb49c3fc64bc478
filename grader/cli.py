"""The ``grader`` command line. The only module that prints or turns errors into exit codes.

Exit status: 0 every submission passed, 1 some failed, 2 usage or configuration error,
3 harness fault. Heavy libraries (nbclient, torch, matplotlib) are imported only by the
commands that need them, so ``grader --help`` and ``grader challenges`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader import __version__
from grader.errors import GraderError, HarnessError
from grader.settings import DATA_DIR_ENV, Settings, resolve_settings

if TYPE_CHECKING:
    from grader.sandbox import Sandbox

__all__ = ["main"]

EXIT_PASS, EXIT_FAIL = 0, 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade image-classification notebooks on hidden test sets and write "
        "HTML scorecards.",
        epilog="Exit status: 0 all passed, 1 some failed, 2 usage or configuration error, "
        "3 harness fault.",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    parser.add_argument("--data-dir", help=f"dataset folder (default: ${DATA_DIR_ENV})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="grade submissions and write scorecards",
                           description="Run each submission's notebooks, score them on the "
                           "hidden test set and write DIR/<submission>/scorecard.html, "
                           "result.json and DIR/index.html.")
    check.add_argument("paths", nargs="+", metavar="PATH",
                       help="submission folder (notebooks + new_images/) or a notebook file")
    check.add_argument("--out", required=True, metavar="DIR", help="output folder")
    check.add_argument("--profile", default="full",
                       help="profile passed to the notebook as PROFILE (default: full)")
    check.add_argument("--challenge", metavar="ID",
                       help="challenge id, when the notebook does not name one")
    check.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="passed as DEVICE (auto: cuda when an NVIDIA GPU is present)")
    check.add_argument("--keep-workdir", action="store_true",
                       help="keep each notebook's working copy for debugging")
    _sandbox_option(check)

    verify = sub.add_parser(
        "verify-references", help="check that every reference passes and every starter fails",
        description="Grade every reference solution and starter notebook through the real check "
        "path. Reference results are archived under reference_solutions/results/ and "
        "reference_solutions/RESULTS.md is regenerated from them.")
    verify.add_argument("--profile", default="ci", help="profile to run (default: ci)")
    verify.add_argument("--challenge", metavar="ID", help="only this challenge")
    verify.add_argument("--out", default="out/verify", metavar="DIR",
                        help="where scorecards go (default: out/verify)")
    verify.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    verify.add_argument("--no-archive", action="store_true",
                        help="do not archive results or rewrite RESULTS.md")
    _sandbox_option(verify)

    sub.add_parser("challenges", help="list the challenges")
    sub.add_parser("checks", help="list the checks a rubric can use, with their pass conditions")
    sub.add_parser("validate", help="validate every challenge.toml and rubric")
    return parser


def _sandbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto",
                        help="where notebooks run: bwrap (bubblewrap: no network, own pid "
                        "namespace, non-root uid, memory/process/file-size limits), none (as the "
                        "grader's user), auto (bwrap when it works, else none with a warning on "
                        "every scorecard; the default)")


def _sandbox(choice: str) -> Sandbox:
    from grader.sandbox import resolve_sandbox

    sandbox = resolve_sandbox(choice)
    if sandbox.warning:
        print(f"grader: warning: {sandbox.warning}", file=sys.stderr)
    else:
        print(f"sandbox: {sandbox.description}", file=sys.stderr)
    return sandbox


def _detect_device(choice: str) -> str:
    if choice != "auto":
        return choice
    return "cuda" if os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl") else "cpu"


def _cmd_challenges(settings: Settings) -> int:
    from grader.challenge import challenge_ids, load_challenge

    for cid in challenge_ids(settings.project_dir):
        c = load_challenge(settings.project_dir, cid)
        print(f"{cid:20} {c.title}")
    return EXIT_PASS


def _cmd_checks() -> int:
    from grader.checks import check_names, get_check

    for name in check_names():
        spec = get_check(name)
        fields = ", ".join(f"{k}" for k in spec.params.model_fields) or "no parameters"
        print(f"{name} ({fields})\n    {' '.join(spec.doc.split())}\n")
    return EXIT_PASS


def _cmd_validate(settings: Settings) -> int:
    from grader.challenge import challenge_ids, load_challenge
    from grader.data import list_dataset, load_split
    from grader.rubric import load_rubric

    ids = challenge_ids(settings.project_dir)
    if not ids:
        raise HarnessError("no challenges found", path=settings.project_dir / "challenges")
    for cid in ids:
        challenge = load_challenge(settings.project_dir, cid)
        rubric = load_rubric(settings.project_dir, challenge.rubric)
        if rubric.challenge != cid:
            raise GraderError(f"rubric {challenge.rubric} is for {rubric.challenge}, not {cid}")
        if settings.data_dir is not None:
            hidden = f"hidden test set of {len(list_dataset(settings.data_dir, challenge).hidden)} images"
        elif challenge.dataset.hidden_split:
            hidden = f"hidden test set of {len(load_split(challenge))} images"
        else:
            hidden = f"hidden test set: {challenge.dataset.source}/test"
        print(f"ok  {cid}: {len(rubric.criteria)} criteria, {rubric.total_points:g} points, {hidden}")
    return EXIT_PASS


class _Progress:
    """Prints a running notebook's status lines, timed from the start of its submission."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def restart(self) -> None:
        self.started = time.monotonic()

    def __call__(self, status: str) -> None:
        print(f"    {time.monotonic() - self.started:5.0f} s  {status}", file=sys.stderr, flush=True)


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from grader.grade import GradeOptions, discover, grade_submission
    from grader.report import safe_name, write_index, write_submission

    settings.require_data_dir()
    progress = _Progress()
    submissions = [discover(Path(p)) for p in args.paths]
    options = GradeOptions(profile=args.profile, challenge=args.challenge,
                           device=_detect_device(args.device), keep_workdir=args.keep_workdir,
                           on_progress=progress, sandbox=_sandbox(args.sandbox))
    out = Path(args.out)
    results, folders, faults = [], [], 0
    used: set[str] = set()
    for number, submission in enumerate(submissions, 1):
        folder = safe_name(submission.name)
        while folder in used:
            folder += "_"
        used.add(folder)
        print(f"[{number}/{len(submissions)}] {submission.name}: grading "
              f"{len(submission.notebooks)} notebook(s)...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        progress.restart()
        try:
            result = grade_submission(submission, settings, options)
        except HarnessError as err:  # one broken run never loses the others
            faults += 1
            print(f"    harness fault: {err}", file=sys.stderr)
            continue
        write_submission(out, result, folder)
        results.append(result)
        folders.append(folder)
        failed = [c.id for nb in result.notebooks for c in nb.criteria if c.status == "fail"]
        detail = f" (failed: {', '.join(failed)})" if failed else ""
        print(f"    {result.verdict.upper()} {result.score:g}/{result.max_score:g} points in "
              f"{time.monotonic() - t0:.0f} s{detail} -> {out / folder / 'scorecard.html'}",
              file=sys.stderr, flush=True)
    index = write_index(out, results, folders)
    print(f"index: {index}", file=sys.stderr)
    if faults:
        return HarnessError.exit_code
    return EXIT_PASS if all(r.verdict == "pass" for r in results) else EXIT_FAIL


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from grader.grade import GradeOptions
    from grader.results import archive_result, render_results
    from grader.verify import Verification, verify

    progress = _Progress()

    def report(v: Verification) -> None:
        e, r = v.expectation, v.result
        accuracy = [f"{m.function} {m.accuracy:.3f}" for nb in r.notebooks for m in nb.models]
        wall = sum(nb.execution.wall_s for nb in r.notebooks)
        failed = [c.id for nb in r.notebooks for c in nb.criteria if c.status == "fail"]
        print(f"{'ok  ' if v.ok else 'BAD '} {e.name} ({e.role}, {args.profile}): {r.verdict} "
              f"{r.score:g}/{r.max_score:g}, {', '.join(accuracy) or 'no accuracy'}, {wall:.0f} s"
              + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
        if e.role == "reference" and not args.no_archive:
            archive_result(settings, e.name, args.profile, r)
        progress.restart()

    options = GradeOptions(device=_detect_device(args.device), on_progress=progress,
                           sandbox=_sandbox(args.sandbox))
    results = verify(settings, profile=args.profile, challenge=args.challenge,
                     out=Path(args.out), options=options, on_result=report)
    if not args.no_archive:
        path = settings.project_dir / "reference_solutions" / "RESULTS.md"
        path.write_text(render_results(settings), encoding="utf-8")
        print(f"wrote {path}")
    bad = [v.expectation.name for v in results if not v.ok]
    print(f"{len(results) - len(bad)} of {len(results)} as expected"
          + (f"; not as expected: {', '.join(bad)}" if bad else ""))
    return EXIT_PASS if not bad else EXIT_FAIL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = resolve_settings(data_dir=args.data_dir)
        if args.command == "check":
            return _cmd_check(args, settings)
        if args.command == "verify-references":
            return _cmd_verify(args, settings)
        if args.command == "challenges":
            return _cmd_challenges(settings)
        if args.command == "checks":
            return _cmd_checks()
        return _cmd_validate(settings)
    except GraderError as err:
        print(f"grader: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
