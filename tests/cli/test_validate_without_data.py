"""``grader validate`` without a challenge's data: it says plainly that the data is not there and
which checks it skipped, and guesses nothing (a ``labels-csv`` entry's class is in the CSV, not in
its path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grader.author import Request, new_challenge
from grader.cli.main import main
from grader.core import Settings
from tests.author.conftest import photo, write_class_folders


def make_leaves(tmp_path: Path) -> Settings:
    """A project with ``leaves``, made by ``grader new-challenge`` from a Kaggle-style folder
    (``train/<n>.png`` and ``labels.csv``, three classes of ten)."""
    settings = Settings(project_dir=tmp_path / "project", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                        python=sys.executable)
    (settings.project_dir / "challenges").mkdir(parents=True)
    root = tmp_path / "data" / "leaves"
    (root / "train").mkdir(parents=True)
    rows = ["id,label"]
    for n in range(30):
        label = ("red", "green", "blue")[n % 3]
        photo({"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}[label], n).save(
            root / "train" / f"{n}.png")
        rows.append(f"{n},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    new_challenge(settings, Request(challenge_id="leaves", data=root))
    return settings


@pytest.fixture
def leaves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = make_leaves(tmp_path)
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    monkeypatch.delenv("GRADER_PROJECT_DIR", raising=False)
    return settings


def _line(capsys: pytest.CaptureFixture[str]) -> str:
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ok  leaves: ")]
    return line


def test_a_labels_csv_challenge_without_its_data_says_what_it_skipped(
        leaves: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ["--project", str(leaves.project_dir)]
    assert main([*project, "--data-dir", str(leaves.data_dir), "validate", "--challenge", "leaves"]) == 0
    assert "; public part 3, private part 3;" in _line(capsys)  # with the data: checked per class
    assert main([*project, "validate", "--challenge", "leaves"]) == 0  # no data directory
    line = _line(capsys)
    assert "hidden test set of 6 images (their classes are in the labels CSV)" in line
    assert "public split of 3 images (not checked against the data)" in line
    assert "public part" not in line  # not "checked" against classes guessed from the path (train/)
    assert line.endswith("; data not there: no data directory is set (GRADER_DATA_DIR or --data-dir); skipped: "
                         "the labels CSV, the hidden test set's files, the public split's halves per class, the "
                         "practice split against the data, the near-duplicate check")
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    assert main([*project, "--data-dir", str(empty), "validate", "--challenge", "leaves"]) == 0
    assert f"; data not there: the data directory {empty} holds no leaves/; skipped: the labels CSV" in _line(capsys)


def test_a_class_folders_challenge_without_its_data_still_checks_the_public_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    settings = Settings(project_dir=tmp_path / "project", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                        python=sys.executable)
    (settings.project_dir / "challenges").mkdir(parents=True)
    folder = write_class_folders(tmp_path / "data" / "fruit", {"red": 12, "green": 12, "blue": 12})
    new_challenge(settings, Request(challenge_id="fruit", data=folder))
    assert main(["--project", str(settings.project_dir), "validate", "--challenge", "fruit"]) == 0
    line = capsys.readouterr().out
    assert "hidden test set of 6 images; " in line and "; public part 3, private part 3;" in line  # <class>/<file>
    assert ("data not there: no data directory is set (GRADER_DATA_DIR or --data-dir); skipped: the class "
            "folders, the hidden test set's files, the practice split against the data, the near-duplicate check"
            ) in line


def test_validate_says_when_the_reference_lacks_the_new_images_its_rubric_asks_for(
        leaves: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    toml = leaves.project_dir / "challenges" / "leaves" / "challenge.toml"
    project = ["--project", str(leaves.project_dir), "--data-dir", str(leaves.data_dir)]
    assert main([*project, "validate", "--challenge", "leaves"]) == 0
    assert "; [verify] new_images names 0 of the 5 photos new-images asks for: verify-references fails" in _line(capsys)
    text = toml.read_text()
    toml.write_text(text.replace("new_images = []", 'new_images = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]'))
    assert main([*project, "validate", "--challenge", "leaves"]) == 0
    assert "[verify] new_images" not in _line(capsys)
