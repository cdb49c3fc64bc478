"""verify-references targets, and RESULTS.md generated from the archived result.json files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.core.settings import Settings
from grader.pipeline.results import render_results
from grader.pipeline.verify import targets
from tests.conftest import REPO
from tests.support.toy import GOOD_TOY_CELLS, new_image

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


@pytest.mark.kernel
def test_two_at_once_grade_every_target_and_keep_their_order(make_toy: Callable[..., Settings],
                                                             tmp_path: Path) -> None:
    """``verify-references --jobs 2``: a reference and a starter graded at once, each kernel with
    half the cores, the results in the targets' order, each reported once."""
    import os

    import nbformat

    from grader.pipeline.grade import GradeOptions
    from grader.pipeline.verify import verify
    from grader.sandbox.session import resolve_sandbox

    settings = make_toy()
    assert settings.data_dir is not None
    (settings.data_dir / "new_images").mkdir()
    for i in range(2):
        new_image(settings.data_dir / "new_images" / f"new{i}.png", seed=4 * i)
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text() + '\n[verify]\nnew_images = ["new0.png", "new1.png"]\n')
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    cells = [*GOOD_TOY_CELLS, f"assert os.environ['OMP_NUM_THREADS'] == {threads!r}"]
    for path, source in ((settings.project_dir / "reference_solutions" / "toy" / "numpy.ipynb", cells),
                         (settings.project_dir / "challenges" / "toy" / "starter.ipynb", ["1 / 0"])):
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in source]), str(path))
    reported: list[str] = []
    results = verify(settings, profile="ci", challenge=None, out=tmp_path / "out", jobs=2,
                     options=GradeOptions(sandbox=resolve_sandbox("none")),
                     on_result=lambda v: reported.append(v.expectation.name))
    assert [v.expectation.name for v in results] == ["toy-numpy", "toy-starter"]
    assert sorted(reported) == ["toy-numpy", "toy-starter"]
    assert [(v.result.verdict, v.ok) for v in results] == [("pass", True), ("fail", True)]
    assert (tmp_path / "out" / "toy-numpy" / "scorecard.html").is_file()
