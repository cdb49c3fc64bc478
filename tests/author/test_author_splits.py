"""The splits ``grader new-challenge`` records: groups (``--group``, near-duplicates) kept on one side,
the same files for the same seed, the perceptual hash the project's."""

from __future__ import annotations

import io
import re
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from grader.author import Request, new_challenge, scan_images
from grader.author.splits import pattern_groups
from grader.core import Settings, UsageError
from tests.author.conftest import entries_of, photo, same_side, write_class_folders

SHOTS = {"red": 15, "green": 15, "blue": 15}


def _shots(cls: str, i: int) -> str:
    return f"{cls}{i // 5}_shot{i % 5}.png"  # five shots of each of three objects per class


def _objects(entries: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for e in entries:
        found.setdefault(re.sub(r"_shot\d+\.png$", "", e), []).append(e)
    return found


def test_group_keeps_every_object_s_shots_on_one_side(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "apples", SHOTS, names=_shots)  # type: ignore[operator]
    made = new_challenge(project, Request(challenge_id="apples", data=folder, group=r"(\w+?\d+)_shot\d+"))
    assert made.splits.matched == 45 and made.splits.groups == 9
    hidden = set(made.splits.hidden)
    objects = _objects([e for e, _ in made.source.entries])
    assert all(same_side(hidden, shots) for shots in objects.values())
    assert {e.split("/")[0] for e in hidden} == {"red", "green", "blue"}  # one object of each class hidden
    practice = set(made.splits.practice)
    assert all(len({e in practice for e in shots}) == 1 for shots in objects.values())
    recorded = entries_of(project.project_dir / "challenges" / "splits" / "apples-hidden.txt")
    assert set(recorded) == hidden
    # without --group the per-file split cuts some objects in two: the test above can fail
    alone = new_challenge(project, Request(challenge_id="apples", data=folder, force=True))
    assert not all(same_side(set(alone.splits.hidden), shots) for shots in objects.values())


def test_near_duplicates_are_kept_together_without_a_group(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", SHOTS)  # type: ignore[operator]
    twins = []
    for i in range(15):  # every red photo has a re-encoded, slightly smaller twin: a near-duplicate
        with Image.open(folder / "red" / f"red{i:02d}.{'png' if i % 2 else 'jpg'}") as im:
            im.convert("RGB").resize((46, 38), Image.Resampling.BICUBIC).save(folder / "red" / f"twin{i:02d}.jpg",
                                                                             quality=85)
        twins.append((f"red/red{i:02d}.{'png' if i % 2 else 'jpg'}", f"red/twin{i:02d}.jpg"))
    made = new_challenge(project, Request(challenge_id="fruit", data=folder))
    near = {(p.a, p.b) for p in made.findings.near}
    assert sum(tuple(sorted(t)) in near for t in twins) >= 12  # pHash finds (nearly) every twin
    hidden = set(made.splits.hidden)
    assert all(same_side(hidden, pair) for pair in near)
    assert any(a in hidden for a, _ in twins)


def test_the_splits_are_recorded_and_the_seed_reproduces_them(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", {"red": 20, "green": 20, "blue": 20})  # type: ignore[operator]
    splits = project.project_dir / "challenges" / "splits"

    def files() -> dict[str, str]:
        return {p.name: p.read_text() for p in sorted(splits.iterdir())}

    new_challenge(project, Request(challenge_id="fruit", data=folder, seed=7))
    first = files()
    assert sorted(first) == ["fruit-hidden.txt", "fruit-practice.txt", "fruit-public.txt"]
    new_challenge(project, Request(challenge_id="fruit", data=folder, seed=7, splits_only=True))
    assert files() == first
    new_challenge(project, Request(challenge_id="fruit", data=folder, seed=8, splits_only=True))
    assert files()["fruit-hidden.txt"] != first["fruit-hidden.txt"]


def test_a_group_pattern_that_matches_nothing_is_refused() -> None:
    with pytest.raises(UsageError, match="matches none"):
        pattern_groups(["red/a.png", "red/b.png"], r"(apple\d+)_shot")
    with pytest.raises(UsageError, match="not a regular expression"):
        pattern_groups(["red/a.png"], "(unclosed")


def test_the_hash_is_the_project_s_phash(tmp_path: Path) -> None:
    names = []
    for i, mode in enumerate(["RGB", "RGBA", "L", "P"]):
        photo((30 * i, 200, 90), i, size=(50 + i, 40)).convert(mode).save(tmp_path / f"{i}.png")
        names.append(f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    facts = scan_images(tmp_path, [*names, "bad.png"])
    for name, f in zip(names, facts, strict=False):
        with Image.open(tmp_path / name) as im:
            assert f.phash == int(str(imagehash.phash(im.convert("RGB"))), 16), name
        assert (f.width, f.height, f.format, f.reduced) == (im.width, im.height, "PNG", False)
    assert facts[-1].phash is None and facts[-1].error and facts[-1].sha256


def test_a_large_jpeg_is_hashed_at_a_reduced_size(tmp_path: Path) -> None:
    out = io.BytesIO()
    photo((90, 140, 60), 3, size=(2048, 1536)).save(out, format="JPEG", quality=90)
    (tmp_path / "big.jpg").write_bytes(out.getvalue())
    (facts,) = scan_images(tmp_path, ["big.jpg"])
    assert facts.reduced and (facts.width, facts.height) == (2048, 1536)
    with Image.open(tmp_path / "big.jpg") as im:
        full = int(str(imagehash.phash(im.convert("RGB"))), 16)
    assert facts.phash is not None and bin(full ^ facts.phash).count("1") <= 4  # REDUCED_MARGIN
