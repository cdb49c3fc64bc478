"""benchmarks/run.py keeps working: its sections print the rows RESULTS.md is made of.

Only what the figures rest on is asserted (the rows exist, the grader's runs graded the notebook,
the peers it cannot find are said to be missing); the figures themselves are for RESULTS.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"


def _bench(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GRADER_DATA_DIR"}
    done = subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.kernel  # its run includes the "batch" section: every tool's kernels (about 120 s)
def test_startup_and_time_to_accuracy_rows() -> None:
    out = _bench("--repeat", "1", "--skip", "overhead,probe,cohort")
    assert re.search(r"start-up: grader --help +\d+\.\d\d s", out)
    assert re.search(r"start-up: grader challenges +\d+\.\d\d s", out)
    archived = sorted(p.stem for p in (ROOT / "reference_solutions" / "results").glob("*.json"))
    assert archived
    for name in archived:
        assert re.search(rf"time-to-accuracy: {re.escape(name)} +\d+ s  0\.\d+ vs 0\.\d+ ", out)
    assert "time-to-accuracy: anchors" in out


@pytest.mark.kernel
def test_overhead_rows_for_every_tool() -> None:
    out = _bench("--repeat", "1", "--copies", "2", "--skip", "startup,probe,cohort,accuracy")
    peers = ROOT / ".venv-peers"
    for label, papermill in (("overhead", "papermill"),
                             ("overhead, 2 per call, per notebook", "papermill (Python API)")):
        for tool in ("nbclient", "nbconvert --execute", papermill, "grader check --sandbox none"):
            assert re.search(rf"{re.escape(label)}: {re.escape(tool)} +\d+\.\d\d s", out), out
        grader = next(line for line in out.splitlines()
                      if line.startswith(f"{label}: grader check --sandbox none"))
        assert re.search(r"cpu \d+\.\d\d s \([+-]\d+\.\d\d s\); probe \d+\.\d\d s, "
                         r"fixed cost [+-]\d+\.\d\d s; run \d+\.\d\d s", grader), grader
        for tool, venv in (("nbval", "nbval"), ("nbgrader autograde", "nbgrader")):
            line = next(line for line in out.splitlines() if line.startswith(f"{label}: {tool}"))
            if (peers / venv).exists():
                assert re.search(r"\d+\.\d\d s", line)
            else:
                assert "not measured: run benchmarks/setup-peers.sh" in line
    floor = re.search(r"overhead: python -c 'import sklearn.metrics' +cpu (\d+\.\d\d) s "
                      r"\(\+(\d+\.\d\d) s over python -c pass\)", out)
    assert floor, out
    assert float(floor[2]) > 0.0 and float(floor[1]) > float(floor[2])  # the import costs CPU
    assert "per notebook: python -c" not in out  # the floor is measured alone only


@pytest.mark.kernel  # grades a few toy notebooks through a real `grader serve` (about 30 s)
def test_server_benchmark_smoke() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "server.py"), "--quick", "--database", "sqlite",
                           "--sandbox", "none"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for phase, n in (("uploads", 4), ("uploads graded", 4), ("inserted", 24), ("throughput, 1 workers", 2)):
        assert f"[sqlite {phase}] accounted: {n} acknowledged, {n} stored, 0 lost, 0 duplicated" in out, out
    assert "[sqlite inserted] accounted: 24 acknowledged, 24 stored, 0 lost, 0 duplicated; 24 with exactly one " \
           "result, 0 without" in out
    for figure in ("upload acknowledged (4 at once)", "team page (12 teams polling)",
                   "leaderboard, team view, 24 graded", "coach's page (all submissions), 24 graded",
                   "grading 2 notebooks, 1 workers", "team page (4 polling, 10 slow connections open)",
                   "grading: question page, 12 teams' answers", "grading: a grade saved (one coach)"):
        assert re.search(rf"^sqlite +{re.escape(figure)} .*(PASS|MISS)$", out, re.MULTILINE), out
    assert "NOT ACCOUNTED" not in out
