"""A challenge made by ``grader new-challenge`` graded for real: its reference skeleton (scikit-learn's
baseline) passes, its starter fails, and a student's notebook grades to a scorecard."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.author import Request, new_challenge
from grader.core import Settings
from tests.author.conftest import photo, write_class_folders


@pytest.mark.kernel
def test_the_generated_reference_passes_and_its_starter_fails(project: Settings, tmp_path: Path) -> None:
    from grader.pipeline.grade import GradeOptions
    from grader.pipeline.verify import verify
    from grader.sandbox.session import resolve_sandbox

    assert project.data_dir is not None
    folder = write_class_folders(project.data_dir / "fruit", {"red": 15, "green": 15, "blue": 15})
    (project.data_dir / "new_images").mkdir()
    for i in range(5):
        photo((200, 40, 40), 700 + i, size=(60, 50)).save(project.data_dir / "new_images" / f"mine{i}.jpg")
    new_challenge(project, Request(challenge_id="fruit", data=folder, framework="scikit-learn"))
    results = verify(project, profile="ci", challenge="fruit", out=tmp_path / "out",
                     options=GradeOptions(sandbox=resolve_sandbox("none")))
    by_name = {v.expectation.name: v for v in results}
    reference, starter = by_name["fruit-scikit-learn"], by_name["fruit-starter"]
    assert reference.result.verdict == "pass", [(c.id, c.status, c.message) for nb in reference.result.notebooks
                                                for c in nb.criteria]
    assert starter.result.verdict == "fail" and reference.ok and starter.ok
    # a team's notebook: the reference handed in as a submission gets its scorecard
    team = tmp_path / "team3"
    (team / "new_images").mkdir(parents=True)
    shutil.copy(project.project_dir / "reference_solutions" / "fruit" / "scikit-learn.ipynb", team / "fruit.ipynb")
    for image in (project.data_dir / "new_images").iterdir():
        shutil.copy(image, team / "new_images" / image.name)
    from grader.cli.main import main

    code = main(["--project", str(project.project_dir), "--data-dir", str(project.data_dir), "check", str(team),
                 "--out", str(tmp_path / "graded"), "--profile", "ci", "--sandbox", "none"])
    assert code == 0 and (tmp_path / "graded" / "team3" / "scorecard.html").is_file()
