"""``grader new-challenge``: a coach's photos, in class folders, train and test folders or with a labels
CSV, made into a challenge that loads, lists and validates as the grader reads it."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from grader.author import Request, new_challenge
from grader.cli.main import main
from grader.core import ConfigError, DataError, Settings, UsageError, load_challenge
from grader.data import ensure_public_view, list_dataset, practice_split_problems, public_split_problems
from grader.data.export import export_public_data
from grader.score import load_rubric
from tests.author.conftest import entries_of, photo, write_class_folders

THREE = {"red": 12, "green": 12, "blue": 12}


def test_class_folders_make_a_challenge_the_grader_loads(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    made = new_challenge(project, Request(challenge_id="fruit", data=folder, threshold=0.75,
                                          criteria=("accuracy", "per-class", "saved-model")))
    challenge = load_challenge(project.project_dir, "fruit")
    assert (challenge.dataset.source, challenge.dataset.layout) == ("fruit", "class-folders")
    assert challenge.dataset.classes == ["blue", "green", "red"]
    rubric = load_rubric(project.project_dir, "fruit")
    assert [c.id for c in rubric.criteria] == ["runs", "accuracy", "per-class", "saved-model"]
    assert rubric.criteria[1].params["threshold"] == 0.75
    listing = list_dataset(project.data_dir, challenge)  # type: ignore[arg-type]
    assert sorted(listing.public + listing.hidden) == sorted(made.source.entries)
    assert {c for _, c in listing.hidden} == {"red", "green", "blue"}
    assert len(listing.hidden) == 6  # round(12 * 0.2) of each class
    public = entries_of(project.project_dir / "challenges" / "splits" / "fruit-public.txt")
    assert public_split_problems(listing.hidden, public) == []
    practice = entries_of(project.project_dir / "challenges" / "splits" / "fruit-practice.txt")
    assert practice_split_problems(challenge, practice, listing.public) == []
    brief = (challenge.folder / "README.md").read_text(encoding="utf-8")
    assert "| red | 10 | 2 |" in brief and "48 x 40" in brief and "JPEG" in brief
    k, n, low, high = made.interval
    assert (k, n) == (4, 6) and (round(low, 2), round(high, 2)) == (0.30, 0.90)  # 4 of 6, Wilson's 95%


def test_the_command_writes_it_and_validate_passes_it(project: Settings, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADER_CACHE_DIR", str(project.cache_dir))
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    base = ["--project", str(project.project_dir), "--data-dir", str(project.data_dir)]
    assert main([*base, "new-challenge", "fruit", "--data", str(folder), "--framework", "scikit-learn"]) == 0
    out = capsys.readouterr().out
    assert ("hidden test set: 6 images; an accuracy of 0.83 (5 of 6) measured on it has a 95% interval of 0.44 to "
            "0.97") in out
    assert main([*base, "validate", "--challenge", "fruit"]) == 0
    assert main([*base, "new-challenge", "fruit", "--data", str(folder)]) == 2  # exists: --force needed
    assert "--force" in capsys.readouterr().err


def test_train_and_test_folders_leave_out_test_twins_of_training_images(project: Settings) -> None:
    root = project.data_dir / "shapes"  # type: ignore[operator]
    write_class_folders(root / "train", {"red": 10, "blue": 10})
    write_class_folders(root / "test", {"red": 4, "blue": 4}, seed=500)
    shutil.copy(root / "train" / "red" / "red03.png", root / "test" / "red" / "copy.png")
    made = new_challenge(project, Request(challenge_id="shapes", data=root))
    challenge = load_challenge(project.project_dir, "shapes")
    assert challenge.dataset.layout == "train-test-folders"
    assert made.splits.excluded == ("test/red/copy.png",)
    listing = list_dataset(project.data_dir, challenge)  # type: ignore[arg-type]
    assert sorted(e for e, _ in listing.hidden) == sorted(made.splits.hidden)
    assert "test/red/copy.png" not in {e for e, _ in listing.hidden} and len(listing.hidden) == 8
    assert all(e.startswith("train/") for e in made.splits.practice)


def _kaggle(root: Path, *, with_extension: bool) -> None:
    """``root/train/<n>.png`` and ``root/trainLabels.csv``; an unlabelled ``test/`` beside them."""
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rows = [["id", "label"]]
    for n in range(36):
        label = ["red", "green", "blue"][n % 3]
        photo((200, 40, 40) if label == "red" else (40, 180, 60) if label == "green" else (40, 60, 200), n).save(
            root / "train" / f"{n}.png")
        rows.append([f"{n}.png" if with_extension or n % 2 else str(n), label])
    photo((0, 0, 0), 99).save(root / "test" / "0.png")
    with open(root / "trainLabels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.mark.parametrize("with_extension", [True, False])
def test_a_labels_csv_is_read_as_it_is(project: Settings, with_extension: bool) -> None:
    root = project.data_dir / "leaves"  # type: ignore[operator]
    _kaggle(root, with_extension=with_extension)
    made = new_challenge(project, Request(challenge_id="leaves", data=root))
    challenge = load_challenge(project.project_dir, "leaves")
    ds = challenge.dataset
    assert (ds.layout, ds.labels, ds.images) == ("labels-csv", "trainLabels.csv", "train")
    listing = list_dataset(project.data_dir, challenge)  # type: ignore[arg-type]
    assert sorted(listing.public + listing.hidden) == sorted(made.source.entries)
    assert all(label == ["red", "green", "blue"][int(e[6:-4]) % 3] for e, label in listing.public + listing.hidden)
    assert {e for e, _ in listing.hidden} == set(made.splits.hidden) and len(listing.hidden) == 6
    view = ensure_public_view(project, challenge)
    rows = list(csv.DictReader(io.StringIO((view / "leaves" / "trainLabels.csv").read_text())))
    served = {f"train/{r['id'] if r['id'].endswith('.png') else r['id'] + '.png'}" for r in rows}
    assert served == {e for e, _ in listing.public}  # the public rows, the hidden ones left out
    assert sorted(p.name for p in (view / "leaves" / "train").iterdir()) == sorted(
        e.split("/")[1] for e, _ in listing.public)
    export = export_public_data(project, "leaves", project.data_dir.parent / "export")  # type: ignore[union-attr]
    assert (export.target / "leaves" / "trainLabels.csv").read_text() == (
        view / "leaves" / "trainLabels.csv").read_text()


def test_unreadable_and_too_small_images_are_named_and_nothing_is_written(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    (folder / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("RGB", (12, 9), "red").save(folder / "green" / "tiny.png")
    with pytest.raises(DataError) as caught:
        new_challenge(project, Request(challenge_id="fruit", data=folder))
    text = str(caught.value)
    assert "red/broken.jpg" in text and "1 images do not decode" in text
    assert "green/tiny.png (12x9)" in text and "smaller than 32 px" in text
    assert not list((project.project_dir / "challenges").iterdir())


def test_a_class_too_small_for_the_split_is_refused_with_the_count_needed(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", {"red": 12, "green": 12, "blue": 6})  # type: ignore[operator]
    with pytest.raises(DataError, match="blue has 6 images, needs 8"):
        new_challenge(project, Request(challenge_id="fruit", data=folder))
    made = new_challenge(project, Request(challenge_id="fruit", data=folder, hidden=0.4))  # 0.4: 6 are enough
    assert len([e for e in made.splits.hidden if e.startswith("blue/")]) == 2


def test_an_identical_image_in_two_classes_is_reported_and_kept_on_one_side(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", THREE)  # type: ignore[operator]
    shutil.copy(folder / "red" / "red04.jpg", folder / "blue" / "mislabelled.jpg")
    made = new_challenge(project, Request(challenge_id="fruit", data=folder))
    assert made.findings.exact_across == [("blue/mislabelled.jpg", "red/red04.jpg")]
    hidden = set(made.splits.hidden)
    assert ("blue/mislabelled.jpg" in hidden) == ("red/red04.jpg" in hidden)


@pytest.mark.parametrize("where", ["elsewhere", "nested"])
def test_a_folder_not_directly_in_the_data_folder_is_refused_with_the_fix(project: Settings, tmp_path: Path,
                                                                         where: str) -> None:
    folder = tmp_path / "photos" / "fruit" if where == "elsewhere" else project.data_dir / "coach" / "fruit"  # type: ignore[operator]
    write_class_folders(folder, THREE)
    with pytest.raises(UsageError) as caught:
        new_challenge(project, Request(challenge_id="fruit", data=folder))
    assert caught.value.exit_code == 2
    assert f"move the folder to {project.data_dir / 'fruit'}" in str(caught.value)  # type: ignore[operator]
    assert f"GRADER_DATA_DIR={folder.parent}" in str(caught.value)
    unset = Settings(project_dir=project.project_dir, data_dir=None, cache_dir=project.cache_dir, python=project.python)
    with pytest.raises(ConfigError, match="GRADER_DATA_DIR="):
        new_challenge(unset, Request(challenge_id="fruit", data=folder))
