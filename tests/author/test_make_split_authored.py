"""``grader data make-split`` on a challenge made by ``grader new-challenge`` chooses its splits the
one way new-challenge does: the recorded seed, ``--group`` and ``--hidden``; ``--seed`` and ``--group``
given to it replace the recorded ones (and are recorded in turn); elsewhere they are refused."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.core import Settings
from tests.author.conftest import entries_of, same_side, write_class_folders

SHOTS = {"red": 15, "green": 15, "blue": 15}
GROUP = r"(\w+?\d+)_shot\d+"


def _shots(cls: str, i: int) -> str:
    return f"{cls}{i // 5}_shot{i % 5}.png"  # five shots of each of three objects per class


def _files(splits: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(splits.iterdir())}


def _base(project: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("GRADER_CACHE_DIR", str(project.cache_dir))
    return ["--project", str(project.project_dir), "--data-dir", str(project.data_dir)]


def test_make_split_chooses_them_as_new_challenge_did(project: Settings, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    base = _base(project, monkeypatch)
    folder = write_class_folders(project.data_dir / "apples", SHOTS, names=_shots)  # type: ignore[operator]
    assert main([*base, "new-challenge", "apples", "--data", str(folder), "--group", GROUP, "--seed", "7",
                 "--hidden", "0.25"]) == 0
    splits = project.project_dir / "challenges" / "splits"
    made = _files(splits)
    capsys.readouterr()
    assert main([*base, "data", "make-split", "apples"]) == 0
    out = capsys.readouterr().out
    assert "made by grader new-challenge: its splits chosen again as `grader new-challenge apples" in out
    assert "(seed 7, 0.25 of each class hidden, --group '(\\w+?\\d+)_shot\\d+' matched 45 images" in out
    assert _files(splits) == made  # byte for byte: the same seed, group and share
    # --seed replaces the recorded seed, and is recorded in turn: make-split again keeps it
    assert main([*base, "data", "make-split", "apples", "--seed", "8"]) == 0
    eight = _files(splits)
    assert eight["apples-hidden.txt"] != made["apples-hidden.txt"]
    assert "--hidden 0.25 --seed 8`" in eight["apples-hidden.txt"] and "seed 8," in eight["apples-hidden.txt"]
    hidden = set(entries_of(splits / "apples-hidden.txt"))
    objects: dict[str, list[str]] = {}
    for cls, n in SHOTS.items():
        for i in range(n):
            objects.setdefault(f"{cls}{i // 5}", []).append(f"{cls}/{_shots(cls, i)}")
    assert all(same_side(hidden, shots) for shots in objects.values())  # the group still holds
    assert main([*base, "data", "make-split", "apples"]) == 0
    assert _files(splits) == eight
    # --group '' drops the recorded group: the per-file split cuts some object in two
    assert main([*base, "data", "make-split", "apples", "--group", ""]) == 0
    text = (splits / "apples-hidden.txt").read_text()
    assert "--group" not in text and "--seed 8" in text
    assert not all(same_side(set(entries_of(splits / "apples-hidden.txt")), s) for s in objects.values())


def test_train_and_test_folders_and_a_bad_group(project: Settings, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    base = _base(project, monkeypatch)
    root = project.data_dir / "shapes"  # type: ignore[operator]
    write_class_folders(root / "train", {"red": 10, "blue": 10})
    write_class_folders(root / "test", {"red": 4, "blue": 4}, seed=500)
    shutil.copy(root / "train" / "red" / "red03.png", root / "test" / "red" / "copy.png")
    assert main([*base, "new-challenge", "shapes", "--data", str(root), "--seed", "3"]) == 0
    splits = project.project_dir / "challenges" / "splits"
    made = _files(splits)
    assert entries_of(splits / "shapes-excluded.txt") == ["test/red/copy.png"]
    assert main([*base, "data", "make-split", "shapes"]) == 0
    assert _files(splits) == made
    capsys.readouterr()
    assert main([*base, "data", "make-split", "shapes", "--group", "(nothing)_here"]) == 2  # not ignored: refused
    assert "--group '(nothing)_here' matches none of the" in capsys.readouterr().err
    assert _files(splits) == made


def test_seed_and_group_are_refused_for_a_challenge_not_made_by_new_challenge(
        make_toy: Callable[..., Settings], capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    base = ["--project", str(settings.project_dir), "--data-dir", str(settings.data_dir)]
    for option, shown in ((["--seed", "3"], "--seed 3"), (["--group", "(a)"], "--group '(a)'")):
        assert main([*base, "data", "make-split", "toy", *option]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"{toml}: {shown}: toy was not made by grader new-challenge" in err
        assert re.search(r"fix: run grader data make-split toy without them; .* grader new-challenge ID --data DIR "
                         r"--group REGEX --seed N", err)
