"""verify-references targets, and RESULTS.md generated from the archived result.json files."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.results import render_results
from grader.settings import Settings
from grader.verify import targets
from tests.conftest import REPO

SETTINGS = Settings(project_dir=REPO, data_dir=None, cache_dir=Path("/nonexistent"),
                    python=sys.executable)


def test_every_challenge_has_a_starter_and_a_reference() -> None:
    found = targets(SETTINGS, None)
    starters = {t.challenge for t in found if t.role == "starter"}
    references = {(t.challenge, t.framework) for t in found if t.role == "reference"}
    assert len(starters) == 8
    assert {c for c, _ in references} == starters
    assert {("gear-cnn", "pytorch"), ("gear-cnn", "tensorflow"), ("gear-deep", "tensorflow"),
            ("cifar10-tf-cnn", "tensorflow"), ("fashion-mnist", "pytorch"),
            ("fashion-mnist", "tensorflow")} <= references
    assert [t.name for t in targets(SETTINGS, "gear-deep")] == [
        "gear-deep-pytorch", "gear-deep-tensorflow", "gear-deep-starter"]


def test_results_md_is_generated_from_the_archived_results() -> None:
    committed = (REPO / "reference_solutions" / "RESULTS.md").read_text()
    assert committed == render_results(SETTINGS), "run grader verify-references to regenerate it"
    rows = [ln for ln in committed.splitlines() if ln.startswith(("| gear", "| cifar", "| fashion"))]
    assert len(rows) == 2 * 11  # every reference, ci and full
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] in ("pass", "fail", "not run")
        if cells[3] != "not run":
            assert (REPO / "reference_solutions" / "results" / f"{cells[0]}-{cells[1]}-{cells[2]}.json").is_file()
