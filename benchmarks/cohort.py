"""Parallel grading and the result cache: wall time of one cohort at 1, 2, ... jobs, then again.

Copies one submission (default: examples/team3) COPIES times under distinct names, grades the
copies with ``grader check --jobs N --no-cache`` for every N given, then once more with the cache
on (the run after the last N filled it), and prints wall time, the speed-up over the first N and
how many submissions the cached run graded anew (0 expected). Each run is a fresh ``grader``
process; the runs go one after another, so compare them only within one invocation.

Usage: .venv/bin/python benchmarks/cohort.py [--copies 8] [--jobs 1,2] [--submission DIR]
       [--sandbox auto] [--profile full]      (needs GRADER_DATA_DIR)
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _grade(folders: list[Path], out: Path, extra: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader", "check", *map(str, folders),
                           "--out", str(out), *extra], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        sys.exit(f"grader check failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--jobs", default="1,2", help="comma-separated job counts (default 1,2)")
    parser.add_argument("--submission", type=Path, default=ROOT / "examples" / "team3")
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("--profile", default="full")
    args = parser.parse_args()
    if not os.environ.get("GRADER_DATA_DIR"):
        sys.exit("set GRADER_DATA_DIR to the datasets folder")
    counts = [int(n) for n in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        env = {**os.environ, "GRADER_CACHE_DIR": os.environ.get("GRADER_CACHE_DIR")
               or str(Path.home() / ".cache" / "grader")}
        folders = []
        for i in range(1, args.copies + 1):
            folder = Path(tmp) / "subs" / f"{args.submission.name}-{i}"
            shutil.copytree(args.submission, folder)
            folders.append(folder)
        common = ["--sandbox", args.sandbox, "--profile", args.profile]
        rows = []
        for n in counts:
            seconds, err = _grade(folders, Path(tmp) / f"out-{n}", [*common, "--jobs", str(n),
                                                                   "--no-cache"], env)
            passed = len(re.findall(r"\] \S+: PASS", err))
            rows.append((f"--jobs {n} --no-cache", seconds, passed, args.copies))
            print(f"  {rows[-1][0]}: {seconds:.1f} s, {passed}/{args.copies} passed",
                  file=sys.stderr, flush=True)
        seconds, err = _grade(folders, Path(tmp) / "out-cached", [*common, "--jobs",
                                                                  str(counts[-1])], env)
        rerun = args.copies - err.count(" cached ")
        rows.append((f"--jobs {counts[-1]} (cache on)", seconds, args.copies - rerun, rerun))
    print(f"# {args.copies} copies of {args.submission.name}, profile {args.profile}, sandbox "
          f"{args.sandbox}; {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"{'run':28} {'wall s':>8} {'speed-up':>9}  notes")
    base = rows[0][1]
    for name, seconds, a, b in rows[:-1]:
        print(f"{name:28} {seconds:8.1f} {base / seconds:9.2f}  {a}/{b} passed")
    name, seconds, cached, rerun = rows[-1]
    print(f"{name:28} {seconds:8.1f} {base / seconds:9.2f}  {cached} cached, {rerun} graded anew")


if __name__ == "__main__":
    main()
