"""``grader check``: grade submissions and write their scorecards and the batch's index, with a
live display of the running submissions (rich bars on a terminal, plain lines elsewhere).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.cli.options import (
    DEFAULT_PROFILE,
    announced,
    detect_device,
    executor_options,
    gpu_ids,
    resolve_sandbox,
    sandbox_option,
    validate_options,
)
from grader.core import ExitStatus, Settings

if TYPE_CHECKING:
    from grader.score import SubmissionResult

__all__ = ["add_parser", "cmd_check", "exit_status", "written_lines"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check`` to the ``grader`` parser's commands."""
    check = sub.add_parser("check", help="grade submissions and write scorecards",
                           description="Run each submission's notebooks, score them on the "
                           "hidden test set and write DIR/<submission>/scorecard.html, "
                           "result.json and DIR/index.html; where a rubric asks written questions "
                           "(coach-graded criteria), also DIR/grading-sheet.csv and DIR/answers.html.",
                           epilog="Exit status: 0 every submission passed; 1 some failed or await the coach "
                           "(a required written answer not graded yet: verdict AWAITING, never a pass); "
                           "2 usage or configuration error; 3 harness fault.")
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
    executor_options(check, local="threads on this machine")
    check.add_argument("--practice", action="store_true",
                       help="score on the practice split of the public data, not on the hidden test set "
                       "(works on a `grader data export` folder as GRADER_DATA_DIR); every output is "
                       "labelled practice")
    sandbox_option(check)
    check.add_argument("--grades", metavar="SHEET",
                       help="apply the coach's points, comments and rubric items of a filled grading sheet "
                       "(the grading-sheet.csv grader check wrote) to the cached results of PATH...: no notebook "
                       "runs again; scorecards, index, gradebook, JUnit and Gradescope files are written again, and "
                       "every row that could not be applied is listed with its line and why")


def cmd_check(args: argparse.Namespace, settings: Settings, *, workspace: Path) -> int:
    """``grader check``; zips are unpacked under ``workspace`` (see :mod:`grader.intake.submissions`)."""
    from concurrent.futures import ThreadPoolExecutor  # here for start-up time

    validate_options(args, settings)
    if args.grades and args.no_cache:
        from grader.core import UsageError

        raise UsageError("--grades applies the coach's grades to the cached results; --no-cache would run every "
                         "notebook again", fix="drop --no-cache")
    settings.require_data_dir()
    # the sandbox's test run (a process: 0.03 s) goes on while the grading code loads
    with ThreadPoolExecutor(1, thread_name_prefix="grader-sandbox") as pool:
        sandbox = pool.submit(resolve_sandbox, args.sandbox)
        # here for start-up time, loaded as the sandbox is tried
        from grader.core import challenge_ids, safe_name
        from grader.intake import intake
        from grader.pipeline import CohortOptions, GradeOptions, Interrupted, Job, Outcome, grade_cohort
        from grader.report import earlier_results, previous_result, write_cohort, write_submission
        from grader.sandbox import clean_stale_mounts
        from grader.score import carry_grades

        clean_stale_mounts()  # the tmpfs mounts of graders killed with SIGKILL (root only; never raises)
        submissions = intake([Path(p) for p in args.paths], workspace=workspace,
                             challenges=challenge_ids(settings.project_dir), explicit=args.challenge)
        device = detect_device(args.device)
        options = GradeOptions(profile=args.profile, challenge=args.challenge, device=device,
                               keep_workdir=args.keep_workdir, sandbox=announced(sandbox.result()),
                               practice=args.practice)
    cohort = CohortOptions(jobs=args.jobs, gpus=gpu_ids(args.gpus, device), executor=args.executor,
                           scheduler=args.scheduler, use_cache=not args.no_cache, scoring=args.scoring)
    out = Path(args.out)
    jobs, used = [], set()
    for number, submission in enumerate(submissions, 1):
        folder = safe_name(submission.name)
        while folder in used:
            folder += "_"
        used.add(folder)
        jobs.append(Job(number, submission, folder))
    if args.grades:
        from grader.cli.grading import apply_grades_sheet  # here for start-up time

        return apply_grades_sheet(Path(args.grades), jobs, settings, options, out, leaderboard=args.leaderboard,
                                  practice=args.practice)
    final: dict[str, SubmissionResult] = {}  # per folder, the result written: the coach's earlier grades kept

    def write(outcome: Outcome) -> None:
        if outcome.result is not None:
            folder = outcome.job.folder
            result = carry_grades(previous_result(out, folder), outcome.result)
            final[folder] = result
            write_submission(out, result, folder, outcome.scorecard if result == outcome.result else None)

    display = _display(len(jobs), cohort.jobs, out, final)
    interrupted = False
    try:
        with display:
            outcomes = grade_cohort(jobs, settings, options, cohort, write=write, events=display)
    except Interrupted as stop:
        outcomes, interrupted = stop.outcomes, True
    graded = [o for o in outcomes if o.result is not None]
    from grader.integrity import cohort_pairs  # here for start-up time

    results, folders = [final.get(o.job.folder, o.result) for o in graded if o.result], [o.job.folder for o in graded]
    # pairs need two submissions; a lone one has none (and needs no hidden test set read)
    pairs = cohort_pairs(results, [o.job.submission.notebooks for o in graded], folders,
                         settings) if len(results) > 1 else []
    # the index lists every submission graded into this --out folder, in this call or earlier ones
    earlier, earlier_folders, left_out = earlier_results(out, {job.folder for job in jobs}, practice=args.practice)
    for line in left_out:
        print(f"grader: {line}", file=sys.stderr)
    paths = write_cohort(out, [*earlier, *results], [*earlier_folders, *folders], leaderboard=args.leaderboard,
                         pairs=pairs)
    also = f"; with {len(earlier)} submission(s) graded into {out} earlier" if earlier else ""
    print(f"index: {paths[0]} (also {', '.join(p.name for p in paths[1:])}{also})", file=sys.stderr)
    if len(paths) > 3:
        print(written_lines([*earlier, *results], paths[3]), file=sys.stderr)
    if interrupted:
        print(f"grader: interrupted; {len(graded)} of {len(jobs)} submissions graded and kept",
              file=sys.stderr)
        return ExitStatus.INTERRUPTED
    return exit_status(outcomes, final)


def written_lines(results: Sequence[SubmissionResult], sheet: Path) -> str:
    """What the coach has to grade: ``written answers: 3 awaiting the coach, 2 graded (grade them
    in answers.html, fill grading-sheet.csv and apply it with --grades)``."""
    rows = [c for r in results for nb in r.notebooks for c in nb.criteria if c.coach_graded]
    awaiting, graded = sum(c.status == "awaiting" for c in rows), sum(c.status == "graded" for c in rows)
    return (f"written answers: {awaiting} awaiting the coach, {graded} graded, {len(rows) - awaiting - graded} "
            f"missing (read them in {sheet.with_name('answers.html')}, fill {sheet} and apply it with "
            f"--grades {sheet}: no notebook runs again)")


def exit_status(outcomes: Sequence[Any], final: Mapping[str, SubmissionResult] | None = None) -> int:
    """The batch's exit status: the highest of its outcomes' (3 a harness fault, 2 a
    configuration error, 1 a failing scorecard or one awaiting the coach, 0 all passed); 1 when
    nothing was graded. ``final``: per output folder, the result written where it differs from the
    outcome's (the coach's grades kept from an earlier call)."""

    def code(o: Any) -> int:
        result = (final or {}).get(o.job.folder) if o.result is not None else None
        if result is None:
            return int(o.exit_code)
        return ExitStatus.PASSED if result.verdict == "pass" else ExitStatus.FAILED

    return max((code(o) for o in outcomes), default=ExitStatus.FAILED)


LINES_EVERY_S = 30.0  # plain progress lines: at most one a cell this often (logs, CI)

def _display(total: int, jobs: int, out: Path, final_results: Mapping[str, Any] | None = None) -> Any:
    final: Mapping[str, Any] = final_results if final_results is not None else {}
    from grader.pipeline import Events, Job, Outcome  # here for start-up time

    class Lines(Events):
        """Progress as plain lines on stderr (logs, CI, pipes)."""

        def __init__(self) -> None:
            self.t0: dict[int, float] = {}
            self.said: dict[int, tuple[str, float]] = {}  # job -> (cell line, when)
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
            # a running cell's own last line changes every second or two: in a log, a line per
            # new cell, and within one cell at most one every LINES_EVERY_S
            now = time.monotonic()
            head = status.split(" · ", 1)[0]
            said = self.said.get(job.number)
            if said is not None and said[0] == head and now - said[1] < LINES_EVERY_S:
                return
            self.said[job.number] = (head, now)
            elapsed = now - self.t0.get(job.number, now)
            prefix = f"{job.submission.name}: " if jobs > 1 else ""
            self._say(f"    {elapsed:5.0f} s  {prefix}{status}")

        def finished(self, outcome: Outcome) -> None:
            self._say(_summary(outcome, out, total, final))

        def _say(self, line: str) -> None:
            with self.lock:
                print(line, file=sys.stderr, flush=True)

    if not sys.stderr.isatty():
        return Lines()

    from rich.console import Console  # here for start-up time
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
                head, _, line = status.partition(" · ")  # the cell, and its last printed line
                shown = f"{head[:44]} · {line[:44]}" if line else status[:70]
                self.bars.update(self.tasks[job.number], status=shown)

        def finished(self, outcome: Outcome) -> None:
            task = self.tasks.pop(outcome.job.number, None)
            if task is not None:
                self.bars.remove_task(task)
            self.bars.advance(self.all)
            self.bars.console.print(_summary(outcome, out, total, final), markup=False,
                                        highlight=False)

    return Bars()


def _summary(outcome: Any, out: Path, total: int, final: Mapping[str, Any]) -> str:
    job = outcome.job
    result = final.get(job.folder, outcome.result) if outcome.result is not None else None
    head = f"[{job.number}/{total}] {job.submission.name}:"
    if result is None:
        kind = "harness fault" if outcome.exit_code == ExitStatus.HARNESS else "configuration error"
        return f"{head} {kind}: {outcome.error}"
    failed = [c.id for nb in result.notebooks for c in nb.criteria if not c.met and c.status != "awaiting"]
    awaiting = [c.id for nb in result.notebooks for c in nb.criteria if c.status == "awaiting"]
    said = [*([f"not passed: {', '.join(failed)}"] if failed else []),
            *([f"awaiting the coach: {', '.join(awaiting)}"] if awaiting else [])]
    failed += awaiting
    detail = f" ({'; '.join(said)})" if said else ""
    if result.verdict != "pass" and not failed and result.verdict_reason:
        detail = f" ({result.verdict_reason[:300]})"
    how = "cached" if outcome.cached else f"in {outcome.seconds:.0f} s"
    return (f"{head} {result.verdict.upper()} {result.score:g}/{result.max_score:g} points "
            f"{how}{detail} -> {out / job.folder / 'scorecard.html'}")
