"""A coach's authoring mistakes as ``grader check`` meets them: a class without its folder and a split
file not made yet say what ``grader validate`` says (the nearest folder and the folders that are no
class; the command that makes the split), exit 2; a team's partial copy of the data is named too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.core import ChallengeError, Settings, load_challenge
from grader.data import list_dataset
from grader.data.export import export_public_data
from tests.author.conftest import write_class_folders
from tests.cli.test_validate_without_data import make_leaves


@pytest.fixture
def coach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path, Path]:
    """A project made with ``grader init`` holding ``fruit`` (``grader new-challenge``, seed 7, over
    three classes of twelve tiny images), a team folder with its starter; the options that name
    them, the data folder and the team folder."""
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADER_PROJECT_DIR", raising=False)
    project, data = tmp_path / "project", tmp_path / "data"
    assert main(["init", str(project)]) == 0
    folder = write_class_folders(data / "fruit", {"red": 12, "green": 12, "blue": 12})
    base = ["--project", str(project), "--data-dir", str(data)]
    assert main([*base, "new-challenge", "fruit", "--data", str(folder), "--seed", "7"]) == 0
    team = tmp_path / "team"
    team.mkdir()
    shutil.copy(project / "challenges" / "fruit" / "starter.ipynb", team / "fruit.ipynb")
    return base, data, team


def _check(base: list[str], team: Path, out: Path, capsys: pytest.CaptureFixture[str], *,
           practice: bool = False) -> str:
    """``grader check`` (``--practice``) of ``team``: its exit status must be 2; what it said, on one line."""
    capsys.readouterr()
    extra = ["--practice"] if practice else []
    assert main([*base, "check", *extra, str(team), "--out", str(out), "--sandbox", "none"]) == 2
    said = capsys.readouterr()
    return " ".join((said.out + said.err).split())


def test_check_names_the_nearest_folder_of_a_misspelt_class(coach: tuple[list[str], Path, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    base, data, team = coach
    (data / "fruit" / "red").rename(data / "fruit" / "reds")  # challenge.toml says red
    for practice in (False, True):
        said = _check(base, team, tmp_path / f"out{practice}", capsys, practice=practice)
        assert "fruit/challenge.toml: 1 of the 3 classes have no folder in" in said, practice
        assert "'red' (nearest folder: 'reds'); folders not listed as classes: reds" in said
        assert "fix: in [dataset] classes, write each class as its folder is named (red -> reds)" in said
        assert "restore the full dataset folder" not in said  # the old message, that named no folder
    assert main([*base, "validate", "--challenge", "fruit"]) == 2  # validate says the same
    assert "'red' (nearest folder: 'reds')" in capsys.readouterr().err


def test_check_names_the_command_that_makes_a_missing_split(coach: tuple[list[str], Path, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    base, _, team = coach
    project = Path(base[1])
    splits = project / "challenges" / "splits"
    made = {p.name: p.read_bytes() for p in splits.iterdir()}
    (splits / "fruit-hidden.txt").unlink()
    said = _check(base, team, tmp_path / "out", capsys)
    assert "fruit: not made yet: hidden split splits/fruit-hidden.txt" in said
    assert "No such file" not in said
    assert "fix: make them with grader data make-split fruit" in said
    # a challenge made by new-challenge: the recorded command, with --splits-only, names its options
    assert "`grader new-challenge fruit --data " in said and "--seed 7 --splits-only`" in said
    (splits / "fruit-practice.txt").unlink()
    said = _check(base, team, tmp_path / "out2", capsys, practice=True)
    assert "not made yet: hidden split splits/fruit-hidden.txt, practice split splits/fruit-practice.txt" in said
    # and the command named makes them again, as new-challenge chose them
    assert main([*base, "data", "make-split", "fruit"]) == 0
    assert {p.name: p.read_bytes() for p in splits.iterdir()} == made


def test_a_team_s_partial_copy_of_the_data_is_named_with_both_fixes(
        coach: tuple[list[str], Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, data, team = coach
    project = Path(base[1])
    settings = Settings(project_dir=project, data_dir=data, cache_dir=tmp_path / "cache", python="python3")
    export = export_public_data(settings, "fruit", tmp_path / "copy", views=False).target
    shutil.rmtree(export / "fruit" / "blue")  # the team's copy lost a folder
    said = _check(["--project", str(project), "--data-dir", str(export)], team, tmp_path / "out", capsys,
                  practice=True)
    assert "1 of the 3 classes have no folder in" in said and "'blue' (no folder is close)" in said
    assert ("fix: add the missing class folders to the dataset, or remove those classes from [dataset] classes; "
            "or, where the data folder holds a copy of the dataset, restore the full dataset") in said


def test_a_labels_csv_class_without_rows_names_the_nearest_label(tmp_path: Path) -> None:
    settings = make_leaves(tmp_path)
    toml = settings.project_dir / "challenges" / "leaves" / "challenge.toml"
    toml.write_text(toml.read_text().replace('"blue"', '"bleu"'))
    challenge = load_challenge(settings.project_dir, "leaves")
    with pytest.raises(ChallengeError) as caught:
        list_dataset(settings.require_data_dir(), challenge)
    assert caught.value.path == str(toml)
    assert "1 of the 3 classes have no label in the labels CSV" in caught.value.message
    assert "'bleu' (nearest label: 'blue'); labels not listed as classes: blue" in caught.value.message
    assert caught.value.fix is not None and caught.value.fix.startswith(
        "in [dataset] classes, write each class as its label is named (bleu -> blue)")
