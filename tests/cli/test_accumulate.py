"""``grader check`` into one ``--out`` folder, one team a call: the index and the gradebook list
every team graded into it (issue 27: grading teams one call at a time left only the last)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from grader.cli.main import main
from grader.core.settings import Settings
from tests.support.toy import GOOD_TOY_CELLS, write_submission

BAD_CELLS = [GOOD_TOY_CELLS[0], "def predict(images):\n    return ['red' for _ in images]"]


def gradebook(out: Path) -> dict[str, str]:
    rows = csv.DictReader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8")))
    return {row["submission"]: row["verdict"] for row in rows}


def check(folder: Path, out: Path, *extra: str) -> int:
    return main(["check", str(folder), "--out", str(out), "--sandbox", "none", *extra])


def test_teams_graded_one_call_at_a_time_all_reach_the_index(
        toy_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    alpha = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    beta = write_submission(tmp_path / "subs", "beta", BAD_CELLS)
    assert check(alpha, out) == 0
    assert check(beta, out) == 1
    assert gradebook(out) == {"alpha": "pass", "beta": "fail"}
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "alpha" in index and "beta" in index
    assert "with 1 submission(s) graded into" in capsys.readouterr().err
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert sorted(suite.get("name") for suite in suites) == ["alpha", "beta"]

    # beta fixed and graded again: its row is replaced, not added
    write_submission(tmp_path / "subs", "beta", GOOD_TOY_CELLS)
    assert check(beta, out) == 0
    assert gradebook(out) == {"alpha": "pass", "beta": "pass"}


def test_a_result_this_grader_cannot_read_is_named_and_left_out(
        toy_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "result.json").write_text(json.dumps({"schema_version": 99, "submission": "old"}))
    alpha = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    assert check(alpha, out) == 0
    err = capsys.readouterr().err
    assert f"{out / 'old' / 'result.json'}: not a result this grader reads" in err
    assert gradebook(out) == {"alpha": "pass"}


def test_practice_and_hidden_set_results_are_not_mixed(
        toy_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    alpha = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    beta = write_submission(tmp_path / "subs", "beta", GOOD_TOY_CELLS)
    assert check(alpha, out) == 0
    practice = json.loads((out / "alpha" / "result.json").read_text())
    practice["practice"] = True
    (out / "alpha" / "result.json").write_text(json.dumps(practice))
    assert check(beta, out) == 0
    assert "a practice result, left out of this run's index" in capsys.readouterr().err
    assert gradebook(out) == {"beta": "pass"}
