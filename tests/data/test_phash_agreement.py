"""One perceptual hash for ``grader new-challenge`` and ``grader validate``: a large JPEG is hashed on
the same reduced decode by both, and a pair new-challenge grouped is a pair for validate's check,
so the splits new-challenge chose never fail validate because of the decode."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from grader.author import Request, new_challenge, scan_images
from grader.cli.main import main
from grader.core import DatasetSpec, Settings, load_challenge
from grader.data import REDUCED_MARGIN, list_dataset
from grader.data.neardup import dataset_image_hashes, within_pairs
from grader.data.splitmake import cross_split
from tests.author.conftest import write_class_folders

DISTANCE = 4  # new-challenge's default --near-duplicates


def _photo(seed: int) -> np.ndarray:
    """A 1600 x 1200 RGB "photo" (uint8, (1200, 1600, 3)): smooth colour blobs, a gradient, noise."""
    rng = np.random.default_rng(seed)
    blobs = Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)).resize(
        (1600, 1200), Image.Resampling.BICUBIC)
    gradient = np.linspace(0, 60, 1600, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 25, size=(1200, 1600, 3)).astype(np.float32)
    return np.clip(np.asarray(blobs, dtype=np.float32) * 0.7 + gradient + noise, 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, path: Path) -> None:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    path.write_bytes(out.getvalue())


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Settings, Path, list[str]]:
    """Three classes of small images, and in two of them a large photo beside a copy shifted 24 px
    (a near-duplicate a few bits away); the settings and the big entries."""
    settings = Settings(project_dir=tmp_path / "project", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                        python=sys.executable)
    (settings.project_dir / "challenges").mkdir(parents=True)
    folder = write_class_folders(tmp_path / "data" / "photos", {"red": 12, "green": 12, "blue": 12})
    big = []
    for cls, seed in (("red", 2), ("green", 3)):  # 2: a pair 6 bits apart; 3: a reduced hash 2 bits off
        pixels = _photo(seed)
        _jpeg(pixels, folder / cls / f"big{seed}.jpg")
        _jpeg(np.roll(pixels, 24, axis=1), folder / cls / f"big{seed}_shifted.jpg")
        big += [f"{cls}/big{seed}.jpg", f"{cls}/big{seed}_shifted.jpg"]
    return settings, folder, big


def test_validate_hashes_a_large_jpeg_as_new_challenge_does(photos: tuple[Settings, Path, list[str]]) -> None:
    settings, folder, big = photos
    facts = {f.entry: f for f in scan_images(folder, big)}
    ds = DatasetSpec(source="photos", classes=["blue", "green", "red"], hidden_split="splits/photos-hidden.txt")
    hashes = dataset_image_hashes(settings, ds, big)
    assert hashes.reduced == frozenset(big) and all(facts[e].reduced for e in big)
    assert {e: hashes.phash[e] for e in big} == {e: facts[e].phash for e in big}
    # ... which is not the full decode's hash (the test can fail: a full decode differs here)
    differ = 0
    for e in big:
        with Image.open(folder / e) as im:
            differ += int(str(imagehash.phash(im.convert("RGB"))), 16) != hashes.phash[e]
    assert differ


def test_a_pair_new_challenge_grouped_is_a_pair_for_validate(photos: tuple[Settings, Path, list[str]],
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings, folder, big = photos
    made = new_challenge(settings, Request(challenge_id="photos", data=folder, near_distance=DISTANCE))
    grouped = {(p.a, p.b): p.distance for p in made.findings.near}
    twins = {(a, b) for a, b in zip(big[::2], big[1::2], strict=True)}
    assert twins <= set(grouped)
    # the margin is what groups some of them: beyond the distance, within it plus REDUCED_MARGIN
    assert any(DISTANCE < grouped[t] <= DISTANCE + REDUCED_MARGIN for t in twins)
    challenge = load_challenge(settings.project_dir, "photos")
    listing = list_dataset(folder.parent, challenge)
    hashes = dataset_image_hashes(settings, challenge.dataset, [e for e, _ in listing.public + listing.hidden])
    found = {(p.a, p.b): p.distance for p in within_pairs(hashes, max_distance=DISTANCE)}
    assert found == grouped  # validate's pairs are new-challenge's, distances and all
    assert cross_split(settings, challenge, listing).pairs == ()
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    assert main(["--project", str(settings.project_dir), "--data-dir", str(folder.parent), "validate",
                 "--challenge", "photos"]) == 0
    assert "0 hidden images within pHash distance 4 of a public image" in capsys.readouterr().out
