"""``grader new-challenge`` and the new-images criterion: the reference gets its new images from the
data folder's ``new_images/``; with fewer than the criterion needs, the command says so (a note, and a
comment in ``challenge.toml``) instead of leaving the coach to find it in a failed verify-references."""

from __future__ import annotations

import tomllib

import pytest

from grader.author import Request, new_challenge
from grader.cli.main import main
from grader.core import Settings
from tests.author.conftest import photo, write_class_folders

THREE = {"red": 10, "green": 10, "blue": 10}


def _verify_section(settings: Settings, cid: str) -> tuple[list[str], str]:
    text = (settings.project_dir / "challenges" / cid / "challenge.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["verify"]["new_images"], text


def test_without_new_images_the_coach_is_told_what_the_reference_will_fail(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    made = new_challenge(project, Request(challenge_id="fruit", data=folder, workers=1))
    assert len(made.notes) == 1
    note = made.notes[0]
    assert str(project.data_dir / "new_images") in note and "holds 0" in note  # type: ignore[operator]
    assert "[verify] new_images" in note and "challenges/fruit/challenge.toml" in note
    names, text = _verify_section(project, "fruit")
    assert names == [] and "the reference fails it in `grader verify-references`" in text


def test_five_photos_in_the_data_folder_are_named_and_nothing_is_noted(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    mine = project.data_dir / "new_images"  # type: ignore[operator]
    mine.mkdir()
    for i in range(6):
        photo((90, 90, 90), 900 + i, size=(64, 48)).save(mine / f"mine{i}.jpg")
    made = new_challenge(project, Request(challenge_id="fruit", data=folder, workers=1))
    assert made.notes == ()
    names, text = _verify_section(project, "fruit")
    assert names == [f"mine{i}.jpg" for i in range(5)] and "fails it" not in text


def test_four_photos_are_too_few_and_a_rubric_without_new_images_needs_none(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    mine = project.data_dir / "new_images"  # type: ignore[operator]
    mine.mkdir()
    for i in range(4):
        photo((90, 90, 90), 900 + i).save(mine / f"mine{i}.png")
    made = new_challenge(project, Request(challenge_id="fruit", data=folder, workers=1))
    assert len(made.notes) == 1 and "holds 4" in made.notes[0]
    plain = new_challenge(project, Request(challenge_id="plain", data=folder, workers=1,
                                           criteria=("accuracy", "saved-model")))
    assert plain.notes == ()
    assert "fails it" not in _verify_section(project, "plain")[1]


def test_the_command_prints_the_note(project: Settings, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADER_CACHE_DIR", str(project.cache_dir))
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    base = ["--project", str(project.project_dir), "--data-dir", str(project.data_dir)]
    assert main([*base, "new-challenge", "fruit", "--data", str(folder), "--workers", "1"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "new-images" in notes[0] and "new_images" in notes[0]
