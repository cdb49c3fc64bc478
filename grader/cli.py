"""The ``grader`` command line. The only module that prints or turns errors into exit codes.

Exit status: 0 every submission passed, 1 some failed, 2 usage or configuration error,
3 harness fault. Heavy libraries (nbclient, torch, matplotlib) are imported only by the
commands that need them, so ``grader --help`` and ``grader challenges`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.errors import EXIT_FAIL, EXIT_HARNESS, EXIT_PASS, GraderError, HarnessError, RubricError, UsageError
from grader.settings import (
    DATA_DIR_ENV,
    Settings,
    environ_snapshot,
    limit_own_blas_threads,
    resolve_settings,
    sandbox_uid,
)

if TYPE_CHECKING:
    from grader.challenge import Challenge
    from grader.sandbox import Sandbox

__all__ = ["main"]

log = logging.getLogger(__name__)
DEFAULT_PROFILE = "full"


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
    check.add_argument("--profile", default=DEFAULT_PROFILE,
                       help="profile passed to the notebook as PROFILE, one the challenges "
                       "declare (default: full)")
    check.add_argument("--challenge", metavar="ID",
                       help="challenge id, when the notebook does not name one")
    check.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="passed as DEVICE (auto: cuda when an NVIDIA GPU is present)")
    check.add_argument("--keep-workdir", action="store_true",
                       help="keep each notebook's working copy for debugging")
    check.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                       help="submissions graded at once (default 1); each kernel then gets "
                       "cores/N threads")
    check.add_argument("--gpus", metavar="IDS",
                       help="GPU ids to hand out, one per running submission (CUDA_VISIBLE_DEVICES)"
                       "; default: every GPU nvidia-smi lists when the device is cuda")
    check.add_argument("--no-cache", action="store_true",
                       help="grade again even when the submission, challenge, rubric, data and "
                       "grader are unchanged since a cached result (the new result replaces it)")
    check.add_argument("--leaderboard", choices=["public", "private", "all"], default="all",
                       help="what index.html ranks by: the public part of the hidden test set (during "
                       "an event), its private part (at the end) or all of it (default)")
    _executor_options(check, local="threads on this machine")
    check.add_argument("--practice", action="store_true",
                       help="score on the practice split of the public data, not on the hidden test set "
                       "(works on a `grader data export` folder as GRADER_DATA_DIR); every output is "
                       "labelled practice")
    _sandbox_option(check)

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
    _sandbox_option(verify)

    sub.add_parser("challenges", help="list the challenges")
    sub.add_parser("checks", help="list the checks a rubric can use, with their pass conditions")
    sub.add_parser("validate", help="validate every challenge.toml and rubric")
    data = sub.add_parser("data", help="the challenges' data: export the public data")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    export = data_sub.add_parser(
        "export", help="write a challenge's public data to a folder",
        description="Write the public data of CHALLENGE to DIR in the layout of the datasets folder (the "
        "public images, extra folders, the added class's public images, the prepared views, README.txt), "
        "never a file of the hidden test set, for a coach to hand out. Then GRADER_DATA_DIR=DIR grader "
        "check --practice team/ works offline on it.")
    export.add_argument("challenge", metavar="CHALLENGE", help="challenge id (`grader challenges` lists them)")
    export.add_argument("dir", metavar="DIR", help="folder to write (new or empty)")
    export.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")
    export.add_argument("--no-views", action="store_true",
                        help="leave out the prepared views (the grader builds them when it checks)")
    export.add_argument("--ingestion", action="store_true",
                        help="also write the hidden sets' images without labels (neutral names, the grader's "
                        "order) and ingestion.json: a data folder for Dask workers that only execute notebooks "
                        "(GRADER_WORKER_DATA_DIR=DIR dask worker ...), the labels staying with the scorer; "
                        "add more challenges with --force")
    from grader.server.commands import add_parsers

    add_parsers(sub, sandbox_option=_sandbox_option, executor_options=_executor_options)
    return parser


def _sandbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto",
                        help="where notebooks run: bwrap (bubblewrap: no network, own pid "
                        "namespace, non-root uid, memory/process/file-size limits), none (as the "
                        "grader's user), auto (bwrap when it works, else none with a warning on "
                        "every scorecard; the default)")


def _executor_options(parser: argparse.ArgumentParser, *, local: str) -> None:
    """``--executor local|dask`` and ``--scheduler``, for ``check`` and ``serve``; ``local`` says
    where the notebooks run without Dask."""
    parser.add_argument("--executor", choices=["local", "dask"], default="local",
                        help=f"local: {local} (the default); dask: one task a submission on the Dask "
                        "cluster at --scheduler (workers need the same paths)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address for --executor dask, e.g. tcp://host:8786")
    parser.add_argument("--scoring", choices=["here", "workers"], default="here",
                        help="with --executor dask, where the hidden labels are: here (the default: the workers "
                        "only run the notebooks and send back the probe's predictions, scored on this machine, "
                        "so a worker may hold an ingestion folder of `grader data export --ingestion`) or "
                        "workers (each worker grades whole submissions and needs the full datasets)")


def _resolve_sandbox(choice: str) -> Sandbox:
    from grader.sandbox import resolve_sandbox

    return resolve_sandbox(choice)


def _announced(sandbox: Sandbox) -> Sandbox:
    """``sandbox``, once said on stderr (its warning, where it has one)."""
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
        disabled = (f" (disabled, not graded: {', '.join(c.id for c in rubric.disabled)})"
                    if rubric.disabled else "")
        print(f"ok  {cid}: {len(rubric.criteria)} criteria{disabled}, {rubric.total_points:g} points, {hidden}{fixes}"
              f"; {public}; {practice}")
    return EXIT_PASS


def _validate_public_split(challenge: Challenge, hidden: tuple[tuple[str, str], ...] | None) -> str:
    """Check ``challenge``'s public split file against its hidden test set (``hidden``: its
    ``(entry, class)`` pairs, None when the data directory is not set and the challenge takes
    its hidden test set from ``test/``); return what ``validate`` says of it.

    Raises:
        ChallengeError: the challenge records no public split.
        DataError: the file cannot be read, or it is not stratified halves of the hidden test set
            (every problem :func:`grader.data.public_split_problems` finds, named).
    """
    from grader.data import load_public_split, public_split_problems
    from grader.errors import ChallengeError, DataError

    recorded = load_public_split(challenge)
    if recorded is None:
        raise ChallengeError(f"{challenge.id} records no public split of its hidden test set",
                             path=challenge.folder / "challenge.toml",
                             fix="add public_split = \"splits/<dataset>-public.txt\" under [dataset] and "
                             "run python -m grader.data --make-public-split " + challenge.id)
    path = challenge.folder.parent / str(challenge.dataset.public_split)
    if hidden is None:
        return f"public split of {len(recorded)} images (not checked: no data directory)"
    problems = public_split_problems(hidden, recorded)
    if problems:
        raise DataError(f"public split of {challenge.id}: " + "; ".join(problems), path=path,
                        fix="regenerate it with python -m grader.data --make-public-split " + challenge.id)
    return f"public part {len(recorded)}, private part {len(hidden) - len(recorded)}"


def _cmd_data_export(args: argparse.Namespace, settings: Settings) -> int:
    """``grader data export CHALLENGE DIR``: :func:`grader.export.export_public_data`, its
    progress on stderr."""
    from grader.export import export_public_data

    def progress(done: int, total: int) -> None:
        print(f"    {done} of {total} files", file=sys.stderr, flush=True)

    if args.ingestion:
        from grader.ingestion import export_ingestion

        images, size = export_ingestion(settings, args.challenge, Path(args.dir), force=args.force,
                                        views=not args.no_views)
        print(f"wrote the public data and {images} hidden images without labels ({size / 1e6:.1f} MB) of "
              f"{args.challenge} to {args.dir}: an ingestion folder; on a Dask worker: "
              f"GRADER_WORKER_DATA_DIR={args.dir} dask worker ADDRESS")
        return EXIT_PASS
    summary = export_public_data(settings, args.challenge, Path(args.dir), force=args.force,
                                 views=not args.no_views, on_progress=progress)
    print(f"wrote {summary.files} files ({summary.bytes / 1e6:.1f} MB) to {summary.target}: "
          f"{sum(n for _, n in summary.per_class)} public images of {args.challenge}"
          + (f", {summary.added} of the added class" if summary.added else "")
          + "; see README.txt there")
    return EXIT_PASS


def _validate_practice_split(challenge: Challenge, public: Sequence[tuple[str, str]] | None) -> str:
    """Check ``challenge``'s practice split (:func:`grader.practice.practice_split_problems`:
    disjoint from the hidden test set, every class present and, given the data folder's
    ``public`` entries, every entry among them); return what ``validate`` says of it.

    Raises:
        DataError: the file cannot be read or has a problem (each named).
    """
    from grader.errors import DataError
    from grader.practice import load_practice_split, practice_split_problems

    practice = load_practice_split(challenge)
    if practice is None:
        return "no practice split"
    problems = practice_split_problems(challenge, practice, public)
    if problems:
        raise DataError(f"practice split of {challenge.id}: " + "; ".join(problems),
                        path=challenge.folder.parent / str(challenge.dataset.practice_split),
                        fix="regenerate it with python -m grader.data --make-practice-split " + challenge.id)
    return f"practice split {len(practice)}" + ("" if public is not None else " (not checked against the data)")


class _Progress:
    """Prints a running notebook's status lines, timed from the start of its submission."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def restart(self) -> None:
        self.started = time.monotonic()

    def __call__(self, status: str) -> None:
        print(f"    {time.monotonic() - self.started:5.0f} s  {status}", file=sys.stderr, flush=True)


def _gpus(choice: str | None, device: str) -> tuple[str, ...]:
    """GPU ids from ``--gpus 0,1``, else every GPU ``nvidia-smi`` lists when the device is cuda."""
    if choice:
        return tuple(g.strip() for g in choice.split(",") if g.strip())
    if device != "cuda":
        return ()
    import subprocess

    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10, check=True,
                                env=environ_snapshot()).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in listed.splitlines() if line.strip())


def _known_profiles(settings: Settings) -> list[str]:
    """The profiles any challenge declares (``[profiles.NAME]`` in ``challenge.toml``), sorted;
    when none declares one, every challenge runs with its rubric's base parameters and only the
    default profile (``full``) is known.

    Raises:
        ChallengeError: a ``challenge.toml`` is invalid.
    """
    from grader.challenge import challenge_ids, load_challenge

    declared = {name for cid in challenge_ids(settings.project_dir)
                for name in load_challenge(settings.project_dir, cid).profiles}
    return sorted(declared) or [DEFAULT_PROFILE]


def _validate(args: argparse.Namespace, settings: Settings) -> None:
    """Find the coach's mistakes before any notebook runs: an unknown ``--profile`` or
    ``--challenge``, a ``--jobs`` below 1, a bad ``GRADER_SANDBOX_UID``.

    Raises:
        UsageError: an option names something that does not exist (exit 2, with the fix).
        ConfigError: a setting is wrong (exit 2, with the fix).
    """
    from grader.challenge import challenge_ids

    if getattr(args, "jobs", 1) < 1:
        raise UsageError(f"--jobs {args.jobs}: it must be at least 1",
                         fix="pass --jobs 1 (one submission at a time) or more")
    known = challenge_ids(settings.project_dir)
    if args.challenge is not None and args.challenge not in known:
        raise UsageError(f"--challenge {args.challenge}: no such challenge; known: "
                         f"{', '.join(known) or 'none'}",
                         fix="pass one of the known ids (`grader challenges` lists them), or leave "
                         "--challenge out to read it from each notebook")
    profiles = _known_profiles(settings)
    if args.profile not in profiles:
        raise UsageError(f"--profile {args.profile}: no challenge declares this profile; known: "
                         f"{', '.join(profiles)}",
                         fix=f"pass one of {', '.join(profiles)} (each challenge.toml declares its "
                         "profiles under [profiles])")
    sandbox_uid()


def _cmd_check(args: argparse.Namespace, settings: Settings, *, workspace: Path) -> int:
    """``grader check``; zips are unpacked under ``workspace`` (see :mod:`grader.intake`)."""
    from concurrent.futures import ThreadPoolExecutor

    _validate(args, settings)
    settings.require_data_dir()
    # the sandbox's test run (a process: 0.03 s) goes on while the grading code loads
    with ThreadPoolExecutor(1, thread_name_prefix="grader-sandbox") as pool:
        sandbox = pool.submit(_resolve_sandbox, args.sandbox)
        from grader.challenge import challenge_ids
        from grader.cohort import CohortOptions, Interrupted, Job, Outcome, grade_cohort
        from grader.grade import GradeOptions
        from grader.intake import intake
        from grader.report import safe_name, write_cohort, write_submission
        from grader.sandbox import clean_stale_mounts

        clean_stale_mounts()  # the tmpfs mounts of graders killed with SIGKILL (root only; never raises)
        submissions = intake([Path(p) for p in args.paths], workspace=workspace,
                             challenges=challenge_ids(settings.project_dir), explicit=args.challenge)
        device = _detect_device(args.device)
        options = GradeOptions(profile=args.profile, challenge=args.challenge, device=device,
                               keep_workdir=args.keep_workdir, sandbox=_announced(sandbox.result()),
                               practice=args.practice)
    cohort = CohortOptions(jobs=args.jobs, gpus=_gpus(args.gpus, device), executor=args.executor,
                           scheduler=args.scheduler, use_cache=not args.no_cache, scoring=args.scoring)
    out = Path(args.out)
    jobs, used = [], set()
    for number, submission in enumerate(submissions, 1):
        folder = safe_name(submission.name)
        while folder in used:
            folder += "_"
        used.add(folder)
        jobs.append(Job(number, submission, folder))

    def write(outcome: Outcome) -> None:
        if outcome.result is not None:
            write_submission(out, outcome.result, outcome.job.folder, outcome.scorecard)

    display = _display(len(jobs), cohort.jobs, out)
    interrupted = False
    try:
        with display:
            outcomes = grade_cohort(jobs, settings, options, cohort, write=write, events=display)
    except Interrupted as stop:
        outcomes, interrupted = stop.outcomes, True
    graded = [o for o in outcomes if o.result is not None]
    from grader.integrity import cohort_pairs

    results, folders = [o.result for o in graded if o.result], [o.job.folder for o in graded]
    # pairs need two submissions; a lone one has none (and needs no hidden test set read)
    pairs = cohort_pairs(results, [o.job.submission.notebooks for o in graded], folders,
                         settings) if len(results) > 1 else []
    paths = write_cohort(out, results, folders, leaderboard=args.leaderboard, pairs=pairs)
    print(f"index: {paths[0]} (also {paths[1].name}, {paths[2].name})", file=sys.stderr)
    if interrupted:
        print(f"grader: interrupted; {len(graded)} of {len(jobs)} submissions graded and kept",
              file=sys.stderr)
        return 130
    return _exit_status(outcomes)


def _exit_status(outcomes: Sequence[Any]) -> int:
    """The batch's exit status: the highest of its outcomes' (3 a harness fault, 2 a
    configuration error, 1 a failing scorecard, 0 all passed); 1 when nothing was graded."""
    return max((o.exit_code for o in outcomes), default=EXIT_FAIL)


def _display(total: int, jobs: int, out: Path) -> Any:
    from grader.cohort import Events, Job, Outcome

    class Lines(Events):
        """Progress as plain lines on stderr (logs, CI, pipes)."""

        def __init__(self) -> None:
            self.t0: dict[int, float] = {}
            self.lock = threading.Lock()

        def __enter__(self) -> Lines:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def started(self, job: Job, gpu: str | None) -> None:
            self.t0[job.number] = time.monotonic()
            where = f" on GPU {gpu}" if gpu is not None else ""
            self._say(f"[{job.number}/{total}] {job.submission.name}: grading "
                      f"{len(job.submission.notebooks)} notebook(s){where}...")

        def progress(self, job: Job, status: str) -> None:
            elapsed = time.monotonic() - self.t0.get(job.number, time.monotonic())
            prefix = f"{job.submission.name}: " if jobs > 1 else ""
            self._say(f"    {elapsed:5.0f} s  {prefix}{status}")

        def finished(self, outcome: Outcome) -> None:
            self._say(_summary(outcome, out, total))

        def _say(self, line: str) -> None:
            with self.lock:
                print(line, file=sys.stderr, flush=True)

    if not sys.stderr.isatty():
        return Lines()

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    class Bars(Events):
        """A rich progress display: one line per running submission, one for the batch."""

        def __init__(self) -> None:
            self.console = Console(stderr=True)
            self.bars = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     TextColumn("{task.fields[status]}"), console=self.console)
            self.all = self.bars.add_task("all submissions", total=total, status="")
            self.tasks: dict[int, Any] = {}

        def __enter__(self) -> Bars:
            self.bars.start()
            return self

        def __exit__(self, *exc: object) -> None:
            self.bars.stop()

        def started(self, job: Job, gpu: str | None) -> None:
            where = f" [GPU {gpu}]" if gpu is not None else ""
            self.tasks[job.number] = self.bars.add_task(
                f"{job.submission.name}{where}", total=None, status="starting")

        def progress(self, job: Job, status: str) -> None:
            if job.number in self.tasks:
                self.bars.update(self.tasks[job.number], status=status[:70])

        def finished(self, outcome: Outcome) -> None:
            task = self.tasks.pop(outcome.job.number, None)
            if task is not None:
                self.bars.remove_task(task)
            self.bars.advance(self.all)
            self.bars.console.print(_summary(outcome, out, total), markup=False,
                                        highlight=False)

    return Bars()


def _summary(outcome: Any, out: Path, total: int) -> str:
    job, result = outcome.job, outcome.result
    head = f"[{job.number}/{total}] {job.submission.name}:"
    if result is None:
        kind = "harness fault" if outcome.exit_code == EXIT_HARNESS else "configuration error"
        return f"{head} {kind}: {outcome.error}"
    failed = [c.id for nb in result.notebooks for c in nb.criteria if c.status != "pass"]
    detail = f" (not passed: {', '.join(failed)})" if failed else ""
    if result.verdict != "pass" and not failed and result.verdict_reason:
        detail = f" ({result.verdict_reason[:300]})"
    how = "cached" if outcome.cached else f"in {outcome.seconds:.0f} s"
    return (f"{head} {result.verdict.upper()} {result.score:g}/{result.max_score:g} points "
            f"{how}{detail} -> {out / job.folder / 'scorecard.html'}")


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from grader.grade import GradeOptions
    from grader.results import archive_result, render_results
    from grader.verify import Verification, verify

    _validate(args, settings)
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

    options = GradeOptions(device=_detect_device(args.device), on_progress=progress,
                           sandbox=_announced(_resolve_sandbox(args.sandbox)))
    results = verify(settings, profile=args.profile, challenge=args.challenge,
                     out=Path(args.out), options=options, on_result=report, jobs=args.jobs)
    if not args.no_archive:
        path = settings.project_dir / "reference_solutions" / "RESULTS.md"
        path.write_text(render_results(settings), encoding="utf-8")
        print(f"wrote {path}")
    bad = [v.expectation.name for v in results if not v.ok]
    print(f"{len(results) - len(bad)} of {len(results)} as expected"
          + (f"; not as expected: {', '.join(bad)}" if bad else ""))
    return EXIT_PASS if not bad else EXIT_FAIL


def _cmd_event(args: argparse.Namespace, settings: Settings) -> int:
    """``grader event create`` (prints the join links, shown only once) and ``grader event list``."""
    from grader.challenge import challenge_ids
    from grader.server.commands import join_links, parse_cap, parse_ends, read_teams
    from grader.server.db import shown_url
    from grader.server.state import resolve_state_dir
    from grader.server.store import Store

    state = resolve_state_dir(args.state)
    if args.event_command == "list":
        store = Store(state, args.database_url)
        try:
            for ev in store.events():
                print(f"{ev.name:20} {ev.title}: {', '.join(ev.challenges)}; {len(store.teams(ev.name))} teams"
                      + (f", {ev.cap_per_day}/day" if ev.cap_per_day else "")
                      + (f", ends {ev.ends_at:%Y-%m-%d %H:%M} UTC" if ev.ends_at else ""))
        finally:
            store.close()
        return EXIT_PASS
    known = challenge_ids(settings.project_dir)
    unknown = [c for c in args.challenge if c not in known]
    if unknown:
        raise UsageError(f"--challenge {', '.join(unknown)}: no such challenge; known: {', '.join(known) or 'none'}",
                         fix="pass ids that `grader challenges` lists")
    teams = read_teams(Path(args.teams))
    cap, ends = parse_cap(args.cap), parse_ends(args.ends)
    store = Store(state, args.database_url)
    try:
        created = store.create_event(args.name, challenges=args.challenge, teams=teams, cap_per_day=cap,
                                     ends_at=ends, title=args.title)
    finally:
        store.close()
    print(f"event {args.name}: {', '.join(args.challenge)}; {len(teams)} teams"
          + (f"; {cap} submissions a day each" if cap else "")
          + (f"; ends {ends:%Y-%m-%d %H:%M} UTC" if ends else "") + f"; state in {state}")
    print("join links (secret: each is shown only this once, the server keeps only hashes):")
    for who, link in join_links(f"http://{args.host}:{args.port}", created.team_tokens, created.coach_token):
        print(f"  {who}: {link}")
    print(f"start it with: grader serve --event {args.name} --host {args.host} --port {args.port}"
          + (f" --state {state}" if args.state else "")
          + (f" --database-url {shown_url(args.database_url)}" if args.database_url else ""))
    return EXIT_PASS


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """``grader serve``: the event's pages and its grading workers until SIGINT or SIGTERM."""
    from grader.grade import GradeOptions
    from grader.server.serve import KERNEL_NICE, serve
    from grader.server.state import resolve_state_dir
    from grader.server.store import Store

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: it must be at least 1", fix="pass --workers 1 or more")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (tcp://host:8786)",
                         fix="start one with `dask scheduler` and pass its address")
    args.challenge = None
    _validate(args, settings)
    settings.require_data_dir()
    device = _detect_device(args.device)
    gpus = _gpus(args.gpus, device)
    if args.workers is None:  # one submission per GPU, else one at a time
        args.workers = len(gpus) if gpus and args.executor == "local" else 1
    store = Store(resolve_state_dir(args.state), args.database_url, workers=args.workers)
    try:
        row = store.event(args.event)
        _gpu_challenges_served(settings, args, row.challenges, gpus)
        options = GradeOptions(profile=args.profile, device=device, nice=KERNEL_NICE,
                               sandbox=_announced(_resolve_sandbox(args.sandbox)))
    except BaseException:
        store.close()
        raise

    def ready(url: str) -> None:
        print(f"serving {args.event} on {url} with {args.workers} worker(s); the coach's pages: {url}coach",
              file=sys.stderr, flush=True)

    return serve(store, settings, options, event=args.event, host=args.host, port=args.port,
                 workers=args.workers, gpus=gpus, embedded=args.database_url is None, on_ready=ready,
                 lease_s=args.lease, scheduler=args.scheduler if args.executor == "dask" else None,
                 scoring=args.scoring)


def _gpu_challenges_served(settings: Settings, args: argparse.Namespace, challenges: Sequence[str],
                           gpus: Sequence[str]) -> None:
    """Say what happens to the event's challenges that need a GPU under the profile when this
    server's workers have none: with PostgreSQL they wait for a server with GPUs (a warning);
    on SQLite, where this server is the only worker, nothing would grade them.

    Raises:
        UsageError: on SQLite (embedded), challenges need a GPU and neither --gpus nor a Dask
            cluster gives one.
    """
    from grader.cohort import gpu_challenges

    if gpus or args.executor == "dask":
        return
    waiting = sorted(gpu_challenges(settings, args.profile) & set(challenges))
    if not waiting:
        return
    told = (f"{', '.join(waiting)} need{'s' if len(waiting) == 1 else ''} a GPU under profile {args.profile}, "
            "and this server's workers have none")
    if args.database_url is None:
        raise UsageError(f"{told}: nothing would grade them",
                         fix="serve on a machine with GPUs (--gpus), pass --profile ci, or put the event on "
                         "PostgreSQL with a server that has GPUs beside this one")
    print(f"grader: warning: {told}; their submissions wait in the queue for a server started with --gpus",
          file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = resolve_settings(data_dir=args.data_dir)
        if args.command in ("check", "verify-references"):
            signal.signal(signal.SIGTERM, _interrupt)  # a CI job cancelled: stop as on Ctrl-C
        if args.command == "check":
            with tempfile.TemporaryDirectory(prefix="grader-intake-", ignore_cleanup_errors=True) as workspace:
                return _cmd_check(args, settings, workspace=Path(workspace))
        if args.command == "verify-references":
            return _cmd_verify(args, settings)
        if args.command == "challenges":
            return _cmd_challenges(settings)
        if args.command == "checks":
            return _cmd_checks()
        if args.command == "data":
            return _cmd_data_export(args, settings)
        if args.command == "event":
            return _cmd_event(args, settings)
        if args.command == "serve":
            return _cmd_serve(args, settings)
        return _cmd_validate(settings)
    except GraderError as err:
        print(f"grader: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug of the grader's: a harness fault, its traceback logged
        log.critical("internal error: %s: %s", type(err).__name__, err, exc_info=True)
        print(f"grader: internal error ({type(err).__name__}: {err}); its traceback is above: "
              "please report it", file=sys.stderr)
        return EXIT_HARNESS


def entry() -> None:
    """The ``grader`` console script and ``python -m grader``: :func:`main`, then a fast exit.

    Everything the grader owns is closed before :func:`main` returns (runs, sandboxes, cgroups,
    thread pools, Dask clients; reports written with :func:`grader.report.write_atomic`), so the
    interpreter's own teardown only unloads modules: with scikit-learn and matplotlib loaded that
    took 0.17-0.26 s here, a third of the grader's fixed cost on a small notebook
    (``benchmarks/run.py``). Streams and logging are flushed, then ``os._exit``. Before
    anything loads NumPy, the grader's own process is given one OpenBLAS thread
    (:func:`grader.settings.limit_own_blas_threads`; kernels keep the user's setting).
    """
    limit_own_blas_threads()
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)
