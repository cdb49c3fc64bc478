"""Splits free of near-duplicates: no hidden image has its twin in the public data (issue 25)."""

from __future__ import annotations

import dataclasses
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.cli.main import main
from grader.core.challenge import challenge_ids, load_challenge
from grader.core.errors import ChallengeError, DataError
from grader.core.settings import Settings, resolve_settings
from grader.data.neardup import (
    ImageHashes,
    Pair,
    cross_pairs,
    dataset_image_hashes,
    group_entries,
    hash_image,
    load_excluded,
    pixel_differences,
    within_pairs,
)
from grader.data.splitmake import cross_split, grouped_split, make_split
from grader.data.splits import list_dataset, load_split
from tests.conftest import REPO, real_data_dir
from tests.data.test_split import give_public_split


def _photo(seed: int) -> Image.Image:
    """A 64 x 64 RGB "photo": smooth random blobs, so that its pHash is stable under small edits."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small, mode="RGB").resize((64, 64), Image.Resampling.BICUBIC)


def _hashes(images: dict[str, Image.Image]) -> ImageHashes:
    pairs = {e: hash_image(im) for e, im in images.items()}
    return ImageHashes(phash={e: int(p, 16) for e, (p, _) in pairs.items()},
                       content={e: c for e, (_, c) in pairs.items()})


def _part(hashes: ImageHashes, keep: set[str]) -> ImageHashes:
    return ImageHashes({e: h for e, h in hashes.phash.items() if e in keep},
                       {e: h for e, h in hashes.content.items() if e in keep})


def test_grouping_keeps_near_duplicates_on_one_side() -> None:
    # 40 photos in 2 classes; 6 of them have twins: an exact copy, a brighter copy, a re-scaled copy
    images: dict[str, Image.Image] = {}
    labels: dict[str, str] = {}
    for i in range(40):
        cls = "ab"[i % 2]
        images[f"{cls}/{i:02d}.png"] = _photo(i)
        labels[f"{cls}/{i:02d}.png"] = cls
    twins = {}
    for i in range(6):
        cls, base = "ab"[i % 2], _photo(i)
        edit = [base.copy(), base.point(lambda v: min(255, v + 12)), base.resize((48, 48)).resize((64, 64))][i % 3]
        name = f"{cls}/{i:02d}-twin.png"
        images[name], labels[name], twins[name] = edit, cls, f"{cls}/{i:02d}.png"
    hashes = _hashes(images)
    pairs = within_pairs(hashes, max_distance=4)
    assert {(p.a, p.b) for p in pairs} >= {tuple(sorted((t, o))) for t, o in twins.items()}
    groups = group_entries(labels, pairs)
    assert sorted(e for g in groups for e in g) == sorted(labels)  # a partition
    for twin, original in twins.items():
        assert any(twin in g and original in g for g in groups)
    for seed in range(5):
        hidden = set(grouped_split(labels, groups, fraction=0.25, seed=seed))
        for group in groups:
            assert len({e in hidden for e in group}) == 1, group  # wholly hidden or wholly public
        counts = {c: sum(1 for e in hidden if labels[e] == c) for c in "ab"}
        assert all(1 <= n <= 6 for n in counts.values()), counts  # at most round(23 * 0.25) = 6 per class
        # nothing hidden has a near-duplicate left in public
        public = set(labels) - hidden
        assert cross_pairs(_part(hashes, hidden), _part(hashes, public), max_distance=4) == []
    assert grouped_split(labels, groups, fraction=0.25, seed=1) == grouped_split(labels, groups, fraction=0.25, seed=1)


def test_cross_pairs_counts_bits_as_imagehash_does() -> None:
    import imagehash

    rng = random.Random(7)
    query = {f"q{i}": rng.getrandbits(64) for i in range(50)}
    pool = {f"p{i}": rng.getrandbits(64) for i in range(300)}
    pool["p-near"] = query["q3"] ^ 0b1011  # three bits apart
    content = {e: e for e in [*query, *pool]}
    found = cross_pairs(ImageHashes(query, content), ImageHashes(pool, content), max_distance=12)
    assert Pair(3, "q3", "p-near") in found
    for pair in found:  # the same distance as ImageHash's own subtraction of its hex strings
        a, b = (imagehash.hex_to_hash(f"{h:016x}") for h in (query[pair.a], pool[pair.b]))
        assert a - b == pair.distance <= 12
    brute = sorted(Pair(bin(q ^ p).count("1"), qe, pe) for qe, q in query.items() for pe, p in pool.items()
                   if bin(q ^ p).count("1") <= 12)
    assert found == brute
    # identical content is a pair at distance 0 whatever the threshold, even with none
    same = dict(content, p7="twin", q1="twin")
    assert cross_pairs(ImageHashes(query, same), ImageHashes(pool, same), max_distance=None) == [Pair(0, "q1", "p7")]


def test_validate_flags_a_planted_cross_split_duplicate(make_toy: Callable[..., Settings],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    give_public_split(settings, monkeypatch)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "0 hidden images with identical pixels of a public image" in out
    assert "near_duplicate_distance not set" in out and "validated 1 challenges in" in out
    assert settings.data_dir is not None
    hidden = load_split(load_challenge(settings.project_dir, "toy"))[0]  # red/red0.png
    shutil.copyfile(settings.data_dir / "toy" / hidden, settings.data_dir / "toy" / "red" / "red-copy.png")
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert f"toy: 1 hidden images with identical pixels of a public image: {hidden} ~ red/red-copy.png " \
           "(distance 0)" in err
    assert "grader data make-split toy" in err
    # the contact sheet a person calibrates with shows the pair
    assert main(["data", "pairs", "toy", str(settings.project_dir / "sheets"), "--max-distance", "0"]) == 0
    assert "distance 0: " in capsys.readouterr().out
    assert f": red/red-copy.png  {hidden}\n" in (settings.project_dir / "sheets" / "pairs.txt").read_text()
    with Image.open(settings.project_dir / "sheets" / "d00.png") as sheet:
        assert sheet.width >= 2 * 128
    # the command it names fixes it: the copy and its original end on one side
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    assert main(["data", "make-split", "toy"]) == 0
    assert "toy-hidden.txt: 3 of 19 images hidden; 1 groups of near-duplicates (2 images)" in capsys.readouterr().out
    assert main(["validate"]) == 0
    listing = list_dataset(settings.data_dir, load_challenge(settings.project_dir, "toy"))
    hidden_now = {e for e, _ in listing.hidden}
    assert (hidden in hidden_now) == ("red/red-copy.png" in hidden_now)


def test_hash_cache_follows_the_files(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    challenge = load_challenge(settings.project_dir, "toy")
    assert settings.data_dir is not None
    entries = ["red/red0.png", "blue/blue3.png"]
    first = dataset_image_hashes(settings, challenge.dataset, entries)
    assert list((settings.cache_dir / "neardup").glob("toy-*.json"))
    path = settings.data_dir / "toy" / "red" / "red0.png"
    shutil.copyfile(settings.data_dir / "toy" / "blue" / "blue3.png", path)  # another image under the same name
    again = dataset_image_hashes(settings, challenge.dataset, entries)
    assert again.content["red/red0.png"] == again.content["blue/blue3.png"] != first.content["red/red0.png"]


def test_left_out_list_is_validated(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    text = toml.read_text()
    toml.write_text(text.replace('hidden_split = "splits/toy-hidden.txt"\n',
                                 'hidden_split = "splits/toy-hidden.txt"\nhidden_exclude = "splits/x.txt"\n'))
    with pytest.raises(ChallengeError, match="hidden_exclude is for layouts train-test-folders and idx"):
        load_challenge(settings.project_dir, "toy")
    cifar = load_challenge(REPO, "cifar10-mlp")
    copy = cifar.model_copy(update={"folder": tmp_path / "cifar10-mlp"})
    (tmp_path / "splits").mkdir()
    listed = tmp_path / "splits" / "cifar10-excluded.txt"
    listed.write_text("# header\ntest/cat/a.png\ntest/cat/a.png\ntrain/cat/b.png\n")
    with pytest.raises(DataError, match=r"names 1 entries twice and 1 outside test/<class>/, e\.g\. test/cat/a\.png, "
                       r"train/cat/b\.png"):
        load_excluded(copy)
    listed.write_text("test/cat/a.png\n")
    assert load_excluded(copy) == {"test/cat/a.png"}


def test_pixel_test_narrows_the_phash_pairs(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    assert settings.data_dir is not None
    root = settings.data_dir / "toy"
    Image.open(root / "red" / "red0.png").point(lambda v: min(255, v + 3)).save(root / "red" / "near.png")
    challenge = load_challenge(settings.project_dir, "toy")
    pairs = [Pair(0, "red/red0.png", "red/near.png"), Pair(0, "red/red0.png", "red/red1.png")]
    near, other = pixel_differences(settings, challenge.dataset, pairs)
    assert 0 < near <= 3 < other  # greyscale mean absolute difference, 0-255
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace('hidden_split = "splits/toy-hidden.txt"\n',
                                             'hidden_split = "splits/toy-hidden.txt"\nnear_duplicate_pixels = 4\n'))
    with pytest.raises(ChallengeError, match="near_duplicate_pixels tests the pairs within near_duplicate_distance"):
        load_challenge(settings.project_dir, "toy")


def _real() -> Path:
    data = real_data_dir()
    assert data is not None
    return data


@pytest.mark.skipif(real_data_dir() is None, reason="needs the real datasets")
def test_committed_splits_hold_no_cross_split_near_duplicates() -> None:
    """Every challenge's hidden test set, at its calibrated distance (hashes cached in
    GRADER_CACHE_DIR: seconds once warm, about a minute cold for CIFAR-10 and Fashion-MNIST)."""
    settings = resolve_settings(data_dir=str(_real()))
    distances = {}
    for cid in challenge_ids(REPO):
        challenge = load_challenge(REPO, cid)
        found = cross_split(settings, challenge, list_dataset(_real(), challenge))
        assert found.pairs == (), (cid, found.pairs[:5])
        distances[challenge.dataset.source] = challenge.dataset.near_duplicate_distance
        assert found.hidden == {"gear": 424, "cifar10": 9641 if len(challenge.dataset.classes) == 10 else 1930,
                                "fashion-mnist": 9984}[challenge.dataset.source], cid
    assert distances == {"gear": 4, "cifar10": 8, "fashion-mnist": 8}
    # the left-out lists are exactly the test images with a near-duplicate among the training images
    for cid in ("cifar10-mlp", "fashion-mnist"):
        challenge = load_challenge(REPO, cid)
        whole = challenge.model_copy(update={"dataset": challenge.dataset.model_copy(update={"hidden_exclude": None})})
        found = cross_split(settings, whole, list_dataset(_real(), whole))
        assert set(found.images) == load_excluded(challenge), cid
        assert len(found.images) == {"cifar10-mlp": 359, "fashion-mnist": 16}[cid]


@pytest.mark.skipif(real_data_dir() is None, reason="needs the real datasets")
def test_make_split_regenerates_the_committed_files(tmp_path: Path) -> None:
    shutil.copytree(REPO / "challenges", tmp_path / "challenges")
    shutil.copytree(REPO / "rubrics", tmp_path / "rubrics")
    settings = resolve_settings(data_dir=str(_real()))
    settings = dataclasses.replace(settings, project_dir=tmp_path)
    for cid in ("gear-cnn", "fashion-mnist"):  # CIFAR-10's list: the test above
        make_split(settings, cid)
    for path in sorted((REPO / "challenges" / "splits").glob("[gf]*")):
        assert (tmp_path / "challenges" / "splits" / path.name).read_text() == path.read_text(), path.name
