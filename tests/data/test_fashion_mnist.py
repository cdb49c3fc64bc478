"""The ``idx`` layout and the fashion-mnist challenge: reading the idx files, Kaggle's CSV view,
the hidden PNGs, and the error for a missing dataset."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.core.challenge import Challenge, load_challenge
from grader.core.errors import DataError
from grader.core.settings import Settings
from grader.data.hidden import ensure_hidden_test_set
from grader.data.idx import CSV_NAME, IDX_FILES, find_idx_folder, load_side, read_idx
from grader.data.neardup import load_excluded
from grader.data.splits import list_dataset
from grader.data.store import SHUFFLE_SEED
from grader.data.views import ensure_public_view
from grader.execute.prepare import probe_config
from tests.conftest import REPO

CHALLENGE = load_challenge(REPO, "fashion-mnist")
SYSTEM = Path("/usr/share/datasets/fashion-mnist")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _tiny(tmp_path: Path, *, train: int = 3, test: int = 2) -> tuple[Settings, Challenge, dict[str, np.ndarray]]:
    """A data folder with synthetic idx files of ``train`` and ``test`` images per class, and the
    challenge held to those counts (the system folder pointed away, so only this one counts)."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    arrays: dict[str, np.ndarray] = {}
    for side, per_class in (("train", train), ("test", test)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        image_file, label_file = IDX_FILES[side]  # type: ignore[index]
        _write_idx(folder / image_file, images)
        _write_idx(folder / label_file, labels)
        arrays[f"{side}_images"], arrays[f"{side}_labels"] = images, labels
    assert CHALLENGE.dataset.idx is not None
    idx = CHALLENGE.dataset.idx.model_copy(update={"train_per_class": train, "test_per_class": test,
                                                   "system_dir": str(tmp_path / "nowhere")})
    challenge = CHALLENGE.model_copy(update={"dataset": CHALLENGE.dataset.model_copy(
        update={"idx": idx, "public_split": None})})
    settings = Settings(project_dir=REPO, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                        python="python")
    return settings, challenge, arrays


@pytest.mark.skipif(not SYSTEM.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_files_hold_the_published_counts(tmp_path: Path) -> None:
    folder = find_idx_folder(tmp_path, CHALLENGE.dataset)  # tmp_path has no fashion-mnist/: falls back
    assert folder == SYSTEM
    train, test = load_side(folder, "train", CHALLENGE.dataset), load_side(folder, "test", CHALLENGE.dataset)
    assert train.images.shape == (60_000, 28, 28) and train.labels.shape == (60_000,)
    assert test.images.shape == (10_000, 28, 28) and test.labels.shape == (10_000,)
    assert np.bincount(train.labels).tolist() == [6_000] * 10
    assert np.bincount(test.labels).tolist() == [1_000] * 10
    # the first test image is an ankle boot (label 9), as in Zalando's README
    assert int(test.labels[0]) == 9
    listing = list_dataset(tmp_path, CHALLENGE)
    assert listing.hidden[0] == ("test/ankle_boot/00000.png", "ankle_boot")
    left_out = load_excluded(CHALLENGE)  # near-duplicates of training images (grader.data.neardup): 16
    assert len(left_out) == 16 and not {entry for entry, _ in listing.hidden} & left_out
    assert len(listing.public) == 60_000 and len(listing.hidden) == 10_000 - len(left_out)


def test_read_idx_rejects_malformed_files(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x0D, 1]) + np.array([2], dtype=">u4").tobytes() + b"\0" * 8)
    with pytest.raises(DataError, match="not an idx file of unsigned bytes"):
        read_idx(path)
    _write_idx(path, np.zeros((3, 2), dtype=np.uint8))
    assert read_idx(path).shape == (3, 2)
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 1]) + np.array([5], dtype=">u4").tobytes() + b"\1\2")
    with pytest.raises(DataError, match="holds 2 bytes of data, its header says 5"):
        read_idx(path)


def test_counts_other_than_the_published_ones_are_an_error(tmp_path: Path) -> None:
    settings, challenge, _ = _tiny(tmp_path)
    assert challenge.dataset.idx is not None
    wrong = challenge.dataset.model_copy(update={"idx": challenge.dataset.idx.model_copy(
        update={"train_per_class": 4})})
    with pytest.raises(DataError, match="train holds 30 images, the published count is 40"):
        load_side(settings.data_dir / "fashion-mnist", "train", wrong)  # type: ignore[operator]


def test_missing_dataset_names_the_package_and_the_folder(tmp_path: Path) -> None:
    settings, challenge, _ = _tiny(tmp_path)
    (settings.data_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()  # type: ignore[operator]
    with pytest.raises(DataError) as caught:
        list_dataset(settings.require_data_dir(), challenge)
    text = f"{caught.value} {caught.value.fix}"
    assert "dataset-fashion-mnist" in text and "GRADER_DATA_DIR/fashion-mnist/" in text
    assert str(tmp_path / "nowhere") in text


def test_csv_view_is_kaggles_layout_with_the_idx_bytes(tmp_path: Path) -> None:
    settings, challenge, arrays = _tiny(tmp_path)
    view = ensure_public_view(settings, challenge)
    files = sorted(str(p.relative_to(view)) for p in view.rglob("*") if p.is_file())
    assert files == [".complete", f"fashionmnist/{CSV_NAME}"]  # no test images, no test labels
    lines = (view / "fashionmnist" / CSV_NAME).read_text().splitlines()
    assert lines[0] == "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    assert len(lines) == 1 + 30
    for row in (0, 17):
        values = [int(v) for v in lines[1 + row].split(",")]
        assert values[0] == int(arrays["train_labels"][row])
        assert values[1:] == arrays["train_images"][row].reshape(-1).tolist()
    test_rows = {tuple(im.reshape(-1).tolist()) for im in arrays["test_images"]}
    assert not test_rows & {tuple(int(v) for v in ln.split(",")[1:]) for ln in lines[1:]}


def test_hidden_pngs_are_the_test_images_in_the_shuffled_order(tmp_path: Path) -> None:
    settings, challenge, arrays = _tiny(tmp_path)
    hidden = ensure_hidden_test_set(settings, challenge)
    order = sorted(f"test/{challenge.dataset.classes[v]}/{i:05d}.png" for i, v in enumerate(arrays["test_labels"]))
    random.Random(SHUFFLE_SEED).shuffle(order)
    assert hidden.files == tuple(f"{i:05d}.png" for i in range(20))
    assert hidden.labels == tuple(entry.split("/")[1] for entry in order)
    for name, entry in zip(hidden.files, order, strict=True):
        with Image.open(hidden.images_dir / name) as im:
            assert im.mode == "L" and im.size == (28, 28)
            assert np.array_equal(np.asarray(im), arrays["test_images"][int(entry[-9:-4])])
    assert sorted(p.name for p in hidden.images_dir.iterdir() if not p.name.startswith(".")) == list(hidden.files)


def test_contract_hands_over_grayscale_and_asks_for_the_mlp(tmp_path: Path) -> None:
    settings, challenge, _ = _tiny(tmp_path)
    config = probe_config(challenge, ensure_hidden_test_set(settings, challenge), None, tmp_path, [])
    assert config["image_mode"] == "L"
    assert config["models"] == {"predict": "predict", "mlp": "predict_mlp"}
    gear = probe_config(load_challenge(REPO, "gear-cnn"), ensure_hidden_test_set(settings, challenge), None,
                        tmp_path, [])
    assert gear["image_mode"] == "RGB"


def test_layout_idx_needs_its_table() -> None:
    raw = CHALLENGE.model_dump(exclude={"folder"})
    raw["dataset"]["idx"] = None
    with pytest.raises(ValueError, match=r"layout idx needs a \[dataset.idx\] table"):
        Challenge.model_validate(raw)
    raw = load_challenge(REPO, "cifar10-kaggle").model_dump(exclude={"folder"})
    raw["dataset"]["prepared_views"] = [{"name": "x", "kind": "kaggle-csv"}]
    with pytest.raises(ValueError, match="kaggle-csv views and"):
        Challenge.model_validate(raw)


@pytest.mark.parametrize(("mode", "seen"), [("L", {"L"}), ("RGB", {"RGB"})])
def test_probe_hands_over_the_contracts_image_mode(tmp_path: Path, mode: str, seen: set[str]) -> None:
    import json
    import types

    Image.new("RGB", (28, 28), (200, 10, 10)).save(tmp_path / "00000.png")
    Image.new("L", (28, 28), 90).save(tmp_path / "00001.png")
    modes: list[str] = []

    def predict(images: list[Image.Image]) -> list[str]:
        modes.extend(im.mode for im in images)
        return ["bag"] * len(images)

    user_ns = {"CLASS_NAMES": list(CHALLENGE.dataset.classes), "predict": predict}
    namespace: dict[str, object] = {"get_ipython": lambda: types.SimpleNamespace(user_ns=user_ns)}
    exec(compile((REPO / "grader" / "student" / "kernel" / "probe.py").read_text(), "probe.py", "exec"), namespace)
    config = {"class_names": "CLASS_NAMES", "models": {"predict": "predict"}, "hidden_dir": str(tmp_path),
              "hidden_files": ["00000.png", "00001.png"], "new_images_dir": "", "new_images": [],
              "batch_size": 10, "image_mode": mode, "max_label_chars": 200, "max_classes": 1000,
              "out": str(tmp_path / "out.json"), "hidden_out": str(tmp_path / "hidden.json")}
    namespace["_grader_probe_hidden"](config)  # type: ignore[operator]  # the hidden step: grader.sandbox.gate
    assert set(modes) == seen and len(modes) == 2
    assert json.loads((tmp_path / "hidden.json").read_text())["models"]["predict"]["predictions"] == ["bag", "bag"]
