"""Hidden split, public view and hidden test set: what the kernel may and may not see."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.core.challenge import load_challenge
from grader.core.errors import ChallengeError, ConfigError, DataError
from grader.core.settings import Settings, resolve_settings
from grader.data.hidden import ensure_hidden_test_set
from grader.data.splits import load_split, stratified_split
from grader.data.views import ensure_public_view
from tests.conftest import REPO, real_data_dir


def test_stratified_split_is_reproducible_and_per_class() -> None:
    files = {"a": [f"{i}.png" for i in range(10)], "b": [f"{i}.png" for i in range(3)]}
    first = stratified_split(files, fraction=0.2, seed=7)
    assert first == stratified_split(files, fraction=0.2, seed=7)
    assert sum(e.startswith("a/") for e in first) == 2
    assert sum(e.startswith("b/") for e in first) == 1  # at least one of each class
    assert first != stratified_split(files, fraction=0.2, seed=8)


def test_recorded_gear_split_is_stratified() -> None:
    split = load_split(load_challenge(REPO, "gear-cnn"))
    assert len(split) == 424 and len(set(split)) == 424
    per_class = {c: sum(e.startswith(c + "/") for e in split) for c in ("pulleys", "hardshell_jackets")}
    assert per_class == {"pulleys": 8, "hardshell_jackets": 92}


def test_public_view_excludes_the_hidden_files(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    challenge = load_challenge(settings.project_dir, "toy")
    view = ensure_public_view(settings, challenge)
    seen = sorted(str(p.relative_to(view / "toy")) for p in (view / "toy").rglob("*.png"))
    assert len(seen) == 12
    assert not set(seen) & set(load_split(challenge))
    assert not any(p.is_symlink() for p in view.rglob("*"))  # copies: nothing leads back


def test_hidden_test_set_has_neutral_names_and_no_labels(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    hidden = ensure_hidden_test_set(settings, load_challenge(settings.project_dir, "toy"))
    names = sorted(p.name for p in hidden.images_dir.iterdir() if not p.name.startswith("."))
    assert names == sorted(hidden.files) == [f"{i:05d}.png" for i in range(6)]
    assert sorted(hidden.labels) == ["blue", "blue", "green", "green", "red", "red"]
    for path in hidden.images_dir.iterdir():
        assert not any(c in path.read_bytes().decode("latin-1") for c in ("red", "green", "blue"))
    again = ensure_hidden_test_set(settings, load_challenge(settings.project_dir, "toy"))
    assert again == hidden  # fixed shuffle: the same names every run


def test_missing_data_names_what_is_missing(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    challenge = load_challenge(settings.project_dir, "toy")
    assert settings.data_dir is not None
    (settings.data_dir / "toy" / "green" / "green1.png").unlink()
    with pytest.raises(DataError, match="1 files of the hidden test set are missing.*green/green1.png"):
        ensure_public_view(settings, challenge)
    for p in (settings.data_dir / "toy" / "blue").iterdir():
        p.unlink()
    (settings.data_dir / "toy" / "blue").rmdir()
    with pytest.raises(ChallengeError, match=r"1 of the 3 classes have no folder in .*'blue' \(no folder is close\)") \
            as caught:
        ensure_public_view(settings, challenge)
    assert caught.value.fix is not None and "restore the full dataset" in caught.value.fix  # a partial copy


def test_unset_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    settings = resolve_settings(environ={})
    with pytest.raises(ConfigError, match="GRADER_DATA_DIR is not set"):
        settings.require_data_dir()
    missing = resolve_settings(data_dir=str(tmp_path / "nope"), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        missing.require_data_dir()


@pytest.mark.skipif(real_data_dir() is None, reason="the real datasets are not here")
def test_real_gear_hidden_set_is_complete(tmp_path: Path) -> None:
    settings = resolve_settings(data_dir=str(real_data_dir()), cache_dir=str(tmp_path), environ={})
    hidden = ensure_hidden_test_set(settings, load_challenge(REPO, "gear-cnn"))
    assert len(hidden.files) == 424 and len(set(hidden.labels)) == 12


SPLIT_CHALLENGE = """
schema_version = 1
id = "toysplit"
title = "Toy with official train and test folders"
seed = "test"
rubric = "toy"

[dataset]
source = "toysplit"
layout = "train-test-folders"
classes = ["red", "blue"]
prepared_views = [{ name = "toysplit_kaggle", kind = "kaggle" }]
"""


def test_train_test_layout_hides_all_of_test(make_toy: Callable[..., Settings]) -> None:
    from PIL import Image

    settings = make_toy()
    assert settings.data_dir is not None
    for side, count in (("train", 3), ("test", 2)):
        for cls, colour in (("red", (200, 0, 0)), ("blue", (0, 0, 200)), ("green", (0, 200, 0))):
            folder = settings.data_dir / "toysplit" / side / cls
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (8, 8), colour).save(folder / f"{cls}_{side}{i}.png")
    folder = settings.project_dir / "challenges" / "toysplit"
    folder.mkdir()
    (folder / "challenge.toml").write_text(SPLIT_CHALLENGE)
    challenge = load_challenge(settings.project_dir, "toysplit")

    view = ensure_public_view(settings, challenge)
    public = sorted(str(p.relative_to(view / "toysplit")) for p in (view / "toysplit").rglob("*.png"))
    assert public == sorted(f"train/{c}/{c}_train{i}.png" for c in ("red", "blue") for i in range(3))
    labels = (view / "toysplit_kaggle" / "trainLabels.csv").read_text().splitlines()
    assert labels[0] == "id,label" and len(labels) == 7
    assert sorted(p.name for p in (view / "toysplit_kaggle" / "train").iterdir()) == [
        f"{i}.png" for i in range(1, 7)]
    assert sorted(ln.split(",")[1] for ln in labels[1:]) == ["blue"] * 3 + ["red"] * 3
    assert not list(view.rglob("*test*"))

    hidden = ensure_hidden_test_set(settings, challenge)
    assert sorted(hidden.labels) == ["blue", "blue", "red", "red"]  # green is not a class here
    assert [p.name for p in sorted(hidden.images_dir.glob("*.png"))] == [f"{i:05d}.png" for i in range(4)]


def test_layouts_and_splits_must_agree(tmp_path: Path) -> None:
    folder = tmp_path / "challenges" / "toysplit"
    folder.mkdir(parents=True)
    (folder / "challenge.toml").write_text(SPLIT_CHALLENGE.replace(
        'layout = "train-test-folders"', 'layout = "class-folders"'))
    with pytest.raises(ChallengeError, match="needs hidden_split"):
        load_challenge(tmp_path, "toysplit")


def test_added_class_split(make_toy: Callable[..., Settings]) -> None:
    from PIL import Image

    from grader.data.hidden import ensure_added_test_set

    settings = make_toy()
    assert settings.data_dir is not None
    (settings.data_dir / "fruit").mkdir()
    for i in range(5):
        Image.new("RGB", (20, 20), (200, 20 * i, 0)).save(settings.data_dir / "fruit" / f"f{i}.jpg")
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace(
        "[execution]", '[dataset.added_class]\nname = "fruit"\nsource = "fruit"\n'
        'hidden = ["f3.jpg", "f4.jpg"]\nreserved = ["f0.jpg"]\n\n[execution]'))
    challenge = load_challenge(settings.project_dir, "toy")
    view = ensure_public_view(settings, challenge)
    assert sorted(p.name for p in (view / "fruit").iterdir()) == ["f1.jpg", "f2.jpg"]
    added = ensure_added_test_set(settings, challenge)
    assert added is not None and added.labels == ("fruit", "fruit")
    assert sorted(p.name for p in added.images_dir.glob("*.jpg")) == ["00000.jpg", "00001.jpg"]
    toml.write_text(toml.read_text().replace('"f4.jpg"', '"f9.jpg"'))
    with pytest.raises(DataError, match="files of the added class are missing: f9.jpg"):
        ensure_added_test_set(settings, load_challenge(settings.project_dir, "toy"))
