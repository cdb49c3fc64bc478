"""The ``labels-csv`` dataset layout (Kaggle's: an image folder and an ``id,label`` CSV), as
``challenge.toml`` declares it and the data layer reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from grader.author import Request, new_challenge
from grader.core import DataError, DatasetSpec, Settings, load_challenge
from grader.data import csv_labels, list_dataset, make_split, match_rows, read_labels_csv
from tests.author.conftest import entries_of, photo


def test_the_spec_takes_labels_and_images_with_layout_labels_csv_only() -> None:
    ds = DatasetSpec(source="k", layout="labels-csv", classes=["a", "b"], labels="trainLabels.csv", images="train",
                     hidden_split="splits/k-hidden.txt")
    assert (ds.labels, ds.images) == ("trainLabels.csv", "train")
    with pytest.raises(ValidationError, match="labels-csv takes labels"):
        DatasetSpec(source="k", layout="labels-csv", classes=["a", "b"], hidden_split="splits/k.txt")
    with pytest.raises(ValidationError, match="labels-csv takes labels"):
        DatasetSpec(source="k", classes=["a", "b"], labels="l.csv", images="i", hidden_split="splits/k.txt")
    with pytest.raises(ValidationError, match="needs hidden_split"):
        DatasetSpec(source="k", layout="labels-csv", classes=["a", "b"], labels="l.csv", images=".")
    with pytest.raises(ValidationError):
        DatasetSpec(source="k", layout="labels-csv", classes=["a", "b"], labels="../l.csv", images=".",
                    hidden_split="splits/k.txt")


@pytest.mark.parametrize("text, message", [
    ("file,class\n1,a\n", "needs the columns id and label"),
    ("id,label\n1,a\n1,b\n", "id '1' again"),
    ("id,label\n1,\n", "an empty id or label"),
    ("id,label\nsub/1.png,a\n", "an id with a /"),
])
def test_a_malformed_csv_names_its_lines(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        read_labels_csv(tmp_path / "l.csv")


def test_ids_match_files_with_or_without_their_extension(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("\ufeffID, Label ,note\n1,a,x\n2.png,b,y\n3,a,z\n4,b,w\n")
    header, rows = read_labels_csv(tmp_path / "l.csv")
    assert header == ["ID", " Label ", "note"] and [(r.id, r.label) for r in rows][:2] == [("1", "a"), ("2.png", "b")]
    matched, missing, ambiguous = match_rows(rows, ["1.png", "2.png", "3.png", "3.jpg"])
    assert matched == {"1": "1.png", "2.png": "2.png"} and missing == ["4"] and ambiguous == ["3"]


def _flat(settings: Settings) -> Path:
    root = settings.data_dir / "kaggle"  # type: ignore[operator]
    root.mkdir()
    rows = ["id,label"]
    for n in range(30):
        photo((200, 40, 40) if n % 2 else (40, 60, 200), 300 + n).save(root / f"{n}.png")
        rows.append(f"{n},{'red' if n % 2 else 'blue'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_images_beside_the_csv_and_make_split_on_them(project: Settings) -> None:
    root = _flat(project)
    made = new_challenge(project, Request(challenge_id="kaggle", data=root))
    challenge = load_challenge(project.project_dir, "kaggle")
    assert (challenge.dataset.images, challenge.dataset.labels) == (".", "labels.csv")
    labels = csv_labels(project.data_dir, challenge.dataset)  # type: ignore[arg-type]
    assert labels["7.png"] == "red" and len(labels) == 30
    assert sorted(list_dataset(project.data_dir, challenge).hidden) == sorted(  # type: ignore[arg-type]
        (e, labels[e]) for e in made.splits.hidden)
    said = make_split(project, "kaggle")  # the project's own command reads the layout too
    hidden = entries_of(project.project_dir / "challenges" / "splits" / "kaggle-hidden.txt")
    assert len(hidden) == 6 and all(labels[e] in ("red", "blue") for e in hidden) and said
    (root / "3.png").unlink()
    with pytest.raises(DataError, match="1 ids with no image file"):
        csv_labels(project.data_dir, challenge.dataset)  # type: ignore[arg-type]
    assert "3.png" not in csv_labels(project.data_dir, challenge.dataset, public_only=True)  # type: ignore[arg-type]
