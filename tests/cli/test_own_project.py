"""``grader init``, ``--project``, ``grader validate --challenge``, and a coach's authoring mistakes:
each exits 2 and names the fix."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.core import PROJECT_FILE, Settings, load_challenge, project_file_text
from grader.data import list_dataset, public_split_text
from tests.conftest import REPO


def _coach_toy(settings: Settings, monkeypatch: pytest.MonkeyPatch, *, include_shipped: bool = True) -> Path:
    """The toy project as a coach's project (marker, public split), found by its marker from the
    current folder; the toy's data as the data folder."""
    project = settings.project_dir
    (project / PROJECT_FILE).write_text(project_file_text(include_shipped=include_shipped))
    toml = project / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace("[dataset]\n", '[dataset]\npublic_split = "splits/toy-public.txt"\n'))
    toy = load_challenge(project, "toy")
    (project / "challenges" / "splits" / "toy-public.txt").write_text(
        public_split_text(toy, list_dataset(settings.require_data_dir(), toy)))
    monkeypatch.delenv("GRADER_PROJECT_DIR", raising=False)
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.chdir(project / "challenges")
    return project


def test_init_makes_a_project_and_refuses_a_folder_that_is_not_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "hackday"
    assert main(["init", str(folder)]) == 0
    for name in ("challenges", "challenges/splits", "rubrics", "reference_solutions"):
        assert (folder / name).is_dir(), name
    marker = tomllib.loads((folder / PROJECT_FILE).read_text())
    assert marker == {"schema_version": 1, "include_shipped": True}
    readme = (folder / "README.md").read_text()
    for command in ("grader new-challenge", "grader validate", "grader verify-references", "grader check",
                    "grader serve", "GRADER_PROJECT_DIR", "--project"):
        assert command in readme, command
    assert f"made {folder / PROJECT_FILE}" in capsys.readouterr().out
    # again: already a project, nothing overwritten
    (folder / "README.md").write_text("my notes\n")
    assert main(["init", str(folder)]) == 0
    assert "is already a grader project (include_shipped = true" in capsys.readouterr().out
    assert (folder / "README.md").read_text() == "my notes\n"
    # a folder with other files in it is refused, with the fix
    other = tmp_path / "photos"
    other.mkdir()
    (other / "apple.jpg").write_bytes(b"x")
    assert main(["init", str(other)]) == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a grader project" in err and f"grader init {other / 'grader-project'}" in err
    assert not (other / PROJECT_FILE).exists()
    # an empty folder is fine; --no-shipped writes include_shipped = false
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["init", str(empty), "--no-shipped"]) == 0
    assert tomllib.loads((empty / PROJECT_FILE).read_text())["include_shipped"] is False
    assert "include_shipped = false" in (empty / "README.md").read_text()


def test_help_says_how_the_project_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["init", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())
        assert "--project" in out and "GRADER_PROJECT_DIR" in out and PROJECT_FILE in out, argv


def test_the_project_is_found_by_option_environment_and_marker(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _coach_toy(make_toy(), monkeypatch, include_shipped=False)
    assert main(["challenges"]) == 0  # the marker, from challenges/ inside the project
    assert capsys.readouterr().out.split() == ["toy", "Toy", "colours"]
    monkeypatch.chdir(tmp_path)  # outside it: the shipped challenges
    assert main(["challenges"]) == 0
    assert "gear-cnn" in capsys.readouterr().out
    assert main(["--project", str(project), "challenges"]) == 0
    assert capsys.readouterr().out.split()[0] == "toy"
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(project))
    assert main(["challenges"]) == 0
    assert capsys.readouterr().out.split()[0] == "toy"
    assert main(["--project", str(tmp_path / "nope"), "challenges"]) == 2
    assert f"fix: make one with grader init {tmp_path / 'nope'}" in capsys.readouterr().err


def test_validate_one_challenge_and_the_shadowing_note(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _coach_toy(make_toy(), monkeypatch)
    assert main(["validate", "--challenge", "toy"]) == 0
    out = capsys.readouterr().out
    assert f"project {project} (found by its grader-project.toml, with the shipped challenges)" in out
    assert "ok  toy: 8 criteria, 11 points, hidden test set of 6 images; public part 3, private part 3" in out
    assert "; starter; no reference solution in" in out
    assert [ln.split(":")[0] for ln in out.splitlines() if ln.startswith("ok")] == ["ok  toy"]
    assert "validated 1 challenges in" in out
    # an unknown id: exit 2, the known ones listed (the shipped ones among them)
    assert main(["validate", "--challenge", "toy", "--challenge", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--challenge nope: no such challenge" in err and "known: cifar10-kaggle" in err and ", toy" in err
    # the coach's own gear-deep shadows the shipped one: validate says so, and uses the coach's
    own = project / "challenges" / "gear-deep"
    shutil.copytree(project / "challenges" / "toy", own)
    toml = own / "challenge.toml"
    toml.write_text(toml.read_text().replace('id = "toy"', 'id = "gear-deep"').replace(
        'rubric = "toy"', 'rubric = "gear-deep"'))
    rubric = (project / "rubrics" / "toy.toml").read_text()
    (project / "rubrics" / "gear-deep.toml").write_text(rubric.replace('challenge = "toy"', 'challenge = "gear-deep"'))
    assert main(["validate", "--challenge", "gear-deep"]) == 0
    out = capsys.readouterr().out
    assert "note: gear-deep of this project shadows the shipped challenge gear-deep" in out
    assert "ok  gear-deep: 8 criteria, 11 points, hidden test set of 6 images" in out


def test_a_class_without_its_folder_names_the_nearest_folder(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    _coach_toy(settings, monkeypatch, include_shipped=False)
    data = settings.require_data_dir() / "toy"
    (data / "red").rename(data / "reds")
    (data / "extra").mkdir()
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "challenge.toml: 1 of the 3 classes have no folder in" in err
    assert "'red' (nearest folder: 'reds'); folders not listed as classes: extra, reds" in err
    assert "fix: in [dataset] classes, write each class as its folder is named (red -> reds)" in err
    (data / "reds").rename(data / "red")
    assert main(["validate"]) == 0  # a folder that is no class is named, not an error (a subset is allowed)
    assert "; folders not listed as classes: extra" in capsys.readouterr().out


def test_a_missing_split_names_the_command_that_makes_it(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _coach_toy(make_toy(), monkeypatch, include_shipped=False)
    (project / "challenges" / "splits" / "toy-public.txt").unlink()
    assert main(["validate", "--challenge", "toy"]) == 2
    err = capsys.readouterr().err
    assert "toy: not made yet: public split splits/toy-public.txt" in err
    assert "fix: make them with grader data make-split toy" in err


def test_a_rubric_for_another_challenge_exits_2(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _coach_toy(make_toy(), monkeypatch)
    rubric = project / "rubrics" / "toy.toml"
    rubric.write_text(rubric.read_text().replace('challenge = "toy"', 'challenge = "gear-cnn"'))
    assert main(["validate", "--challenge", "toy"]) == 2
    err = capsys.readouterr().err
    assert f"{rubric}: rubric toy is for challenge 'gear-cnn', not 'toy'" in err
    assert 'fix: write challenge = "toy" in the rubric' in err


def test_a_missing_starter_fails_validate_and_verify_references(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _coach_toy(make_toy(), monkeypatch)
    starter = project / "challenges" / "toy" / "starter.ipynb"
    starter.unlink()
    assert main(["validate", "--challenge", "toy"]) == 2
    err = capsys.readouterr().err
    assert f"{starter}: toy has no starter notebook" in err and "fix: add " in err
    assert main(["verify-references", "--challenge", "toy", "--profile", "full", "--sandbox", "none",
                 "--no-archive", "--out", str(project / "out")]) == 2
    assert "toy has no starter notebook" in capsys.readouterr().err
    starter.write_text("{not json")
    assert main(["validate", "--challenge", "toy"]) == 2
    assert "not a readable notebook" in capsys.readouterr().err


def test_the_shipped_project_validates_one_challenge(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRADER_PROJECT_DIR", raising=False)
    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    monkeypatch.chdir(REPO)
    assert main(["validate", "--challenge", "gear-deep"]) == 0
    out = capsys.readouterr().out
    assert f"project {REPO} (the shipped project)" in out
    assert "ok  gear-deep: " in out and "; starter; references pytorch, tensorflow" in out
    assert "validated 1 challenges in" in out
