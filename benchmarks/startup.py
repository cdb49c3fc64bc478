"""Start-up cost of the CLI: wall time of `grader --help` and `grader challenges`.

Prints the median and spread of repeated runs, each in a fresh interpreter, beside a bare
`python -c pass` measured in the same loop (interleaved), so the figure of interest is the
difference. Usage: .venv/bin/python benchmarks/startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "grader --help": [sys.executable, "-m", "grader", "--help"],
    "grader challenges": [sys.executable, "-m", "grader", "challenges"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':20} {'median s':>9} {'min s':>7} {'max s':>7} {'over python':>12}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:20} {median:9.3f} {min(values):7.3f} {max(values):7.3f} {median - base:12.3f}")


if __name__ == "__main__":
    main()
