"""A coach's project folder: how it is found (option > environment > marker > shipped), and the one
resolver that looks challenges, rubrics and references up in it, then in the shipped project."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.core import (
    PROJECT_FILE,
    SHIPPED_PROJECT_DIR,
    ChallengeError,
    ConfigError,
    Settings,
    challenge_ids,
    find_project,
    load_challenge,
    project_file_text,
    reference_folder,
    resolve_settings,
    rubric_file,
    shadowed_challenges,
)
from grader.score import load_rubric
from tests.conftest import REPO


def _marked(folder: Path, *, include_shipped: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROJECT_FILE).write_text(project_file_text(include_shipped=include_shipped))
    return folder


def test_the_shipped_project_is_this_checkout() -> None:
    assert SHIPPED_PROJECT_DIR == REPO
    assert "gear-cnn" in challenge_ids(REPO)


def test_the_marker_is_found_in_the_current_folder_or_a_parent(tmp_path: Path) -> None:
    project = _marked(tmp_path / "coach")
    deep = project / "challenges" / "apples" / "notes"
    deep.mkdir(parents=True)
    assert find_project(deep) == project.resolve()
    assert find_project(project) == project.resolve()
    settings = resolve_settings(environ={}, cwd=deep)
    assert (settings.project_dir, settings.project_from) == (project.resolve(), "marker")
    # no marker anywhere above: the shipped project
    bare = tmp_path / "elsewhere"
    bare.mkdir()
    settings = resolve_settings(environ={}, cwd=bare)
    assert (settings.project_dir, settings.project_from) == (SHIPPED_PROJECT_DIR, "shipped")


def test_option_beats_environment_beats_marker(tmp_path: Path) -> None:
    marked, by_env, by_option = (_marked(tmp_path / n) for n in ("marked", "env", "option"))
    env = {"GRADER_PROJECT_DIR": str(by_env)}
    assert resolve_settings(environ={}, cwd=marked).project_dir == marked.resolve()
    got = resolve_settings(environ=env, cwd=marked)
    assert (got.project_dir, got.project_from) == (by_env.resolve(), "environment")
    got = resolve_settings(project_dir=str(by_option), environ=env, cwd=marked)
    assert (got.project_dir, got.project_from) == (by_option.resolve(), "option")


def test_a_project_folder_that_does_not_exist_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--project") as info:
        resolve_settings(project_dir=str(tmp_path / "nope"), environ={})
    assert f"grader init {tmp_path / 'nope'}" in str(info.value)
    with pytest.raises(ConfigError, match="GRADER_PROJECT_DIR"):
        resolve_settings(environ={"GRADER_PROJECT_DIR": str(tmp_path / "nope")})


def _shadowing(settings: Settings) -> Path:
    """The toy project made a coach's project that also holds its own ``gear-deep`` (the toy
    under a shipped id, with its own rubric)."""
    project = settings.project_dir
    own = project / "challenges" / "gear-deep"
    shutil.copytree(project / "challenges" / "toy", own)
    toml = own / "challenge.toml"
    toml.write_text(toml.read_text().replace('id = "toy"', 'id = "gear-deep"').replace(
        'rubric = "toy"', 'rubric = "gear-deep"'))
    rubric = (project / "rubrics" / "toy.toml").read_text()
    (project / "rubrics" / "gear-deep.toml").write_text(rubric.replace('challenge = "toy"', 'challenge = "gear-deep"'))
    return project


def test_a_coach_project_sees_its_own_and_the_shipped_challenges(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    project = _marked(_shadowing(settings))
    assert settings.project_dirs == (project, SHIPPED_PROJECT_DIR)
    ids = challenge_ids(project)
    assert set(challenge_ids(REPO)) | {"toy"} == set(ids) and ids == sorted(ids)
    # the coach's gear-deep shadows the shipped one: challenge, rubric and references come from the project
    assert shadowed_challenges(project) == ["gear-deep"]
    mine = load_challenge(project, "gear-deep")
    assert mine.folder == project / "challenges" / "gear-deep" and mine.dataset.source == "toy"
    assert rubric_file(project, "gear-deep") == project / "rubrics" / "gear-deep.toml"
    assert load_rubric(project, "gear-deep").challenge == "gear-deep"
    assert reference_folder(project, "gear-deep") == project / "reference_solutions" / "gear-deep"
    # a shipped challenge not shadowed: its own folder, rubric and references, in the shipped project
    shipped = load_challenge(project, "gear-cnn")
    assert shipped.folder == REPO / "challenges" / "gear-cnn"
    assert load_rubric(project, shipped.rubric).challenge == "gear-cnn"
    assert reference_folder(project, "gear-cnn") == REPO / "reference_solutions" / "gear-cnn"


def test_include_shipped_false_hides_the_shipped_challenges(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    project = _marked(settings.project_dir, include_shipped=False)
    assert settings.project_dirs == (project,)
    assert challenge_ids(project) == ["toy"]
    assert shadowed_challenges(project) == []
    with pytest.raises(ChallengeError, match="unknown challenge 'gear-cnn'; known: toy"):
        load_challenge(project, "gear-cnn")
    # a folder without the marker is a project alone, as GRADER_PROJECT_DIR always worked
    (project / PROJECT_FILE).unlink()
    assert challenge_ids(project) == ["toy"]


@pytest.mark.parametrize("text, problem", [
    ("schema_version = 2\n", "schema_version must be 1"),
    ("schema_version = 1\ninclude_shipped = 'yes'\n", "include_shipped must be true or false"),
    ("schema_version = 1\nshipped = true\n", "unknown key 'shipped'"),
    ("schema_version = \n", "cannot read the project file"),
])
def test_a_bad_project_file_is_a_config_error(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / PROJECT_FILE).write_text(text)
    with pytest.raises(ConfigError, match=problem) as info:
        challenge_ids(tmp_path)
    assert info.value.path == str(tmp_path / PROJECT_FILE) and info.value.exit_code == 2
