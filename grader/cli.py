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
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.errors import GraderError, HarnessError, UsageError
from grader.settings import (
    DATA_DIR_ENV,
    Settings,
    environ_snapshot,
    limit_own_blas_threads,
    resolve_settings,
)

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
    check.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                       help="submissions graded at once (default 1); each kernel then gets "
                       "cores/N threads")
    check.add_argument("--gpus", metavar="IDS",
                       help="GPU ids to hand out, one per running submission (CUDA_VISIBLE_DEVICES)"
                       "; default: every GPU nvidia-smi lists when the device is cuda")
    check.add_argument("--no-cache", action="store_true",
                       help="grade again even when the submission, challenge, rubric, data and "
                       "grader are unchanged since a cached result (the new result replaces it)")
    check.add_argument("--executor", choices=["local", "dask"], default="local",
                       help="local: threads on this machine; dask: futures on the Dask cluster "
                       "at --scheduler (workers need the same paths)")
    check.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler address for --executor dask, e.g. tcp://host:8786")
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


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from concurrent.futures import ThreadPoolExecutor

    settings.require_data_dir()
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    # the sandbox's test run (a process: 0.03 s) goes on while the grading code loads
    with ThreadPoolExecutor(1, thread_name_prefix="grader-sandbox") as pool:
        sandbox = pool.submit(_resolve_sandbox, args.sandbox)
        from grader.cohort import CohortOptions, Interrupted, Job, Outcome, grade_cohort
        from grader.grade import GradeOptions, discover
        from grader.report import safe_name, write_cohort, write_submission

        submissions = [discover(Path(p)) for p in args.paths]
        device = _detect_device(args.device)
        options = GradeOptions(profile=args.profile, challenge=args.challenge, device=device,
                               keep_workdir=args.keep_workdir, sandbox=_announced(sandbox.result()))
    cohort = CohortOptions(jobs=args.jobs, gpus=_gpus(args.gpus, device), executor=args.executor,
                           scheduler=args.scheduler, use_cache=not args.no_cache)
    out = Path(args.out)
    jobs, used = [], set()
    for number, submission in enumerate(submissions, 1):
        folder = safe_name(submission.name)
        while folder in used:
            folder += "_"
        used.add(folder)
        jobs.append(Job(number, submission, folder))
    faults = 0

    def write(outcome: Outcome) -> None:
        nonlocal faults
        if outcome.result is None:
            faults += 1
            return
        write_submission(out, outcome.result, outcome.job.folder, outcome.scorecard)

    display = _display(len(jobs), cohort.jobs, out)
    interrupted = False
    try:
        with display:
            outcomes = grade_cohort(jobs, settings, options, cohort, write=write, events=display)
    except Interrupted as stop:
        outcomes, interrupted = stop.outcomes, True
    graded = [o for o in outcomes if o.result is not None]
    paths = write_cohort(out, [o.result for o in graded if o.result], [o.job.folder for o in graded])
    print(f"index: {paths[0]} (also {paths[1].name}, {paths[2].name})", file=sys.stderr)
    if interrupted:
        print(f"grader: interrupted; {len(graded)} of {len(jobs)} submissions graded and kept",
              file=sys.stderr)
        return 130
    if faults:
        return HarnessError.exit_code
    return EXIT_PASS if all(o.result and o.result.verdict == "pass" for o in outcomes) else EXIT_FAIL


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
        return f"{head} harness fault: {outcome.error}"
    failed = [c.id for nb in result.notebooks for c in nb.criteria if c.status == "fail"]
    detail = f" (failed: {', '.join(failed)})" if failed else ""
    how = "cached" if outcome.cached else f"in {outcome.seconds:.0f} s"
    return (f"{head} {result.verdict.upper()} {result.score:g}/{result.max_score:g} points "
            f"{how}{detail} -> {out / job.folder / 'scorecard.html'}")


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
                           sandbox=_announced(_resolve_sandbox(args.sandbox)))
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
