"""``grader check`` with written answers: the answers await the coach (exit 1), the grading sheet and
the grade-by-question page are written, and ``--grades`` brings a filled sheet's points onto the
scorecards and the gradebook without running a notebook again."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from grader.cli.main import main
from grader.core.settings import Settings
from tests.support.toy import GOOD_TOY_CELLS, new_image, toy_notebook

WRITTEN = '''
[[criteria]]
id = "why"
title = "Why the colour means work"
check = "coach_graded"
points = 2
question = "Why does the mean colour tell the classes apart?"
fix = "Answer under the question, in the cell tagged answer:why"
params = { min_words = 5 }
[[criteria.items]]
points = 1
text = "Names the channel means"
[[criteria.items]]
points = 1
text = "Says why they differ"
'''


def submission(root: Path, name: str, answer: str, *, tagged: bool = True) -> Path:
    nb = toy_notebook(GOOD_TOY_CELLS)
    nb.cells += [new_markdown_cell("### Question (why)\nWhy does the mean colour tell the classes apart?"),
                 new_markdown_cell(answer, metadata={"tags": ["answer:why"]} if tagged else {})]
    folder = root / name
    (folder / "new_images").mkdir(parents=True)
    for i in range(2):
        new_image(folder / "new_images" / f"new{i}.png", seed=4 * i)
    nbformat.write(nb, folder / "toy.ipynb")
    return folder


def table(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.kernel
def test_the_coach_grades_from_the_sheet_without_running_a_notebook(
        toy_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    rubric = toy_env.project_dir / "rubrics" / "toy.toml"
    rubric.write_text(rubric.read_text() + WRITTEN)
    subs, out = tmp_path / "subs", tmp_path / "out"
    paths = [str(submission(subs, "alpha", "Each channel's **mean** differs: red, green and blue photos.")),
             str(submission(subs, "beta", "*YOUR ANSWER HERE*")),
             str(submission(subs, "gamma", "The mean of the three channels separates them well.", tagged=False))]
    assert main(["check", *paths, "--out", str(out), "--sandbox", "none", "--jobs", "3"]) == 1  # awaits the coach
    book = {r["submission"]: r for r in table(out / "gradebook.csv")}
    assert {k: (r["verdict"], r["toy:why"]) for k, r in book.items()} == {
        "alpha": ("awaiting", "awaiting"), "beta": ("fail", "0"), "gamma": ("awaiting", "awaiting")}
    assert "written answers: 2 awaiting the coach, 0 graded, 1 missing" in capsys.readouterr().err
    assert "<strong>mean</strong>" in (out / "answers.html").read_text()
    result = json.loads((out / "gamma" / "result.json").read_text())
    row = result["notebooks"][0]["criteria"][-1]
    assert (result["schema_version"], row["status"], row["question"]) == (
        4, "awaiting", "Why does the mean colour tell the classes apart?")
    assert row["answer"].startswith("The mean of the three") and len(row["answer_sha256"]) == 64

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("a notebook ran")

    sheet = table(out / "grading-sheet.csv")
    assert [r["submission"] for r in sheet] == ["alpha", "beta", "gamma"]
    sheet[0].update(points="2", comment="Right: the channel means.", items="1;2")
    sheet[1].update(points="1")  # the placeholder: nothing to grade
    sheet[2].update(items="1")
    sheet.append({**sheet[0], "submission": "delta"})
    filled = tmp_path / "filled.csv"
    with filled.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(sheet[0]))
        writer.writeheader()
        writer.writerows(sheet)
    with monkeypatch.context() as patched:
        patched.setattr("grader.pipeline.grade.execute_submission", no_run)
        assert main(["check", *paths, "--out", str(out), "--sandbox", "none", "--grades", str(filled)]) == 1  # beta
    err = capsys.readouterr().err
    assert "line 3: beta, toy:why: no answer to grade" in err and "line 5: unknown submission 'delta'" in err
    book = {r["submission"]: r for r in table(out / "gradebook.csv")}
    assert {k: (r["verdict"], r["toy:why"], r["score"]) for k, r in book.items()} == {
        "alpha": ("pass", "2", "13"), "beta": ("fail", "0", "11"), "gamma": ("pass", "1", "12")}
    card = (out / "alpha" / "scorecard.html").read_text()
    assert "2 of 2 points" in card and "Right: the channel means." in card and "<svg" in card
    assert table(out / "grading-sheet.csv")[2]["points"] == "1"

    # graded again (from the cache): the coach's grades stay; alpha alone now exits 0
    assert main(["check", paths[0], "--out", str(out), "--sandbox", "none"]) == 0
    assert {r["submission"]: r["toy:why"] for r in table(out / "gradebook.csv")}["alpha"] == "2"
