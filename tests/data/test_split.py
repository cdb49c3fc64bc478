"""The public/private split of every hidden test set: fixed, stratified, recorded, carried in results."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.cli.main import main
from grader.core.challenge import challenge_ids, load_challenge
from grader.core.errors import ChallengeError, DataError
from grader.core.settings import Settings
from grader.data.hidden import ensure_hidden_test_set
from grader.data.splits import (
    list_dataset,
    load_public_split,
    load_split,
    public_split,
    public_split_problems,
    public_split_text,
)
from tests.conftest import REPO, real_data_dir
from tests.support.toy import write_submission

# 7 + 4 + 1 images: odd classes, a class of one
HIDDEN = tuple((f"{c}/{c}{i:03d}.png", c) for c, n in (("a", 7), ("b", 4), ("c", 1)) for i in range(n))


def give_public_split(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Name a public split in the toy challenge and write it as ``grader data make-split`` does."""
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    text = toml.read_text()
    toml.write_text(text.replace('hidden_split = "splits/toy-hidden.txt"\n',
                                 'hidden_split = "splits/toy-hidden.txt"\npublic_split = "splits/toy-public.txt"\n'))
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    challenge = load_challenge(settings.project_dir, "toy")
    path = settings.project_dir / "challenges" / "splits" / "toy-public.txt"
    listing = list_dataset(settings.require_data_dir(), challenge)
    path.write_text(public_split_text(challenge, listing), encoding="utf-8")
    return path


def test_public_split_is_stratified_halves_that_cover_the_hidden_set() -> None:
    public = public_split(HIDDEN)
    assert public == sorted(public) and len(set(public)) == len(public)
    private = [e for e, _ in HIDDEN if e not in set(public)]
    assert sorted(public + private) == sorted(e for e, _ in HIDDEN)  # disjoint, covering
    per_class = Counter(e.split("/")[0] for e in public)
    # the odd classes a (7) and c (1): the first gives its middle image to the public part, the next not
    assert per_class == {"a": 4, "b": 2}
    assert len(public) - len(private) == 0
    assert public_split_problems(HIDDEN, public) == []


def test_public_split_depends_on_the_identities_only() -> None:
    shuffled = list(HIDDEN)
    random.Random(3).shuffle(shuffled)
    assert public_split(shuffled) == public_split(HIDDEN)
    only_b = [(e, c) for e, c in HIDDEN if c == "b"]
    assert public_split(only_b) == [e for e in public_split(HIDDEN) if e.startswith("b/")]
    # the same in another process with another string-hash seed (another run, another machine)
    code = ("from grader.data.splits import public_split; from tests.data.test_split import HIDDEN; "
            "print(','.join(public_split(HIDDEN)))")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert seen == {",".join(public_split(HIDDEN))}


def test_split_problems_are_named() -> None:
    good = public_split(HIDDEN)
    assert public_split_problems(HIDDEN, [*good, good[0], "a/zzz.png"]) == [
        "1 entries listed twice (in both parts), e.g. " + good[0],
        "1 entries not in the hidden test set, e.g. a/zzz.png",
    ]
    skewed = [e for e, _ in HIDDEN if e.startswith("a/")] + [e for e in good if not e.startswith("a/")]
    assert public_split_problems(HIDDEN, skewed) == [
        "not stratified (per class the parts must differ by at most 1): a 7 public of 7",
        "9 public of 12 images: not half and half",
    ]


def test_recorded_gear_public_split_is_half_of_each_class() -> None:
    challenge = load_challenge(REPO, "gear-cnn")
    hidden = tuple((e, e.split("/", 1)[0]) for e in load_split(challenge))
    public = load_public_split(challenge)
    assert public is not None and len(public) == 212
    assert public_split_problems(hidden, public) == []
    assert public == public_split(hidden)  # regenerating gives the recorded file
    per_class = Counter(e.split("/")[0] for e in public)
    assert (per_class["pulleys"], per_class["hardshell_jackets"]) == (4, 46)
    assert {load_challenge(REPO, c).dataset.public_split for c in ("gear-cnn", "gear-deep", "gear-classical")} \
        == {"splits/gear-public.txt"}  # one hidden test set, one split


@pytest.mark.skipif(real_data_dir() is None, reason="needs the real datasets")
def test_every_hidden_test_set_has_its_recorded_split_and_regenerates_it() -> None:
    data = real_data_dir()
    assert data is not None
    sizes = {}
    for cid in challenge_ids(REPO):
        challenge = load_challenge(REPO, cid)
        assert challenge.dataset.public_split is not None, cid
        listing = list_dataset(data, challenge)
        path = REPO / "challenges" / challenge.dataset.public_split
        assert public_split_text(challenge, listing) == path.read_text(encoding="utf-8"), cid
        public = load_public_split(challenge)
        assert public is not None and public_split_problems(listing.hidden, public) == [], cid
        sizes[cid] = (len(public), len(listing.hidden))
    assert sizes["gear-cnn"] == (212, 424)
    # CIFAR-10's test images with a near-duplicate among the training images left out (test_neardup.py)
    assert sizes["cifar10-mlp"] == sizes["cifar10-kaggle"] == sizes["cifar10-tf-cnn"] == (4821, 9641)
    assert sizes["cifar10-transfer"] == (965, 1930)
    assert sizes["fashion-mnist"] == (4992, 9984)
    ten = set(load_public_split(load_challenge(REPO, "cifar10-mlp")) or [])
    two = set(load_public_split(load_challenge(REPO, "cifar10-transfer")) or [])
    assert two == {e for e in ten if e.split("/")[1] in ("automobile", "truck")}  # the same halves


def test_hidden_test_set_carries_each_images_part(make_toy: Callable[..., Settings],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_toy()
    assert ensure_hidden_test_set(settings, load_challenge(settings.project_dir, "toy")).public is None
    path = give_public_split(settings, monkeypatch)
    challenge = load_challenge(settings.project_dir, "toy")
    hidden = ensure_hidden_test_set(settings, challenge)
    assert hidden.public is not None and len(hidden.public) == len(hidden.files) == 6
    recorded = set(load_public_split(challenge) or [])
    assert len(recorded) == 3
    # aligned with the probe order: the label of each public image is the class of its entry
    assert sorted(label for label, p in zip(hidden.labels, hidden.public, strict=True) if p) == \
        sorted(e.split("/")[0] for e in recorded)
    path.write_text(path.read_text() + "red/red3.png\n")  # a public (not hidden) image
    with pytest.raises(DataError, match=r"names 1 images outside the hidden test set, e\.g\. red/red3\.png"):
        ensure_hidden_test_set(settings, load_challenge(settings.project_dir, "toy"))
    path.write_text("red/red0.png\nred/red0.png\n")
    with pytest.raises(DataError, match="lists 1 entries twice, e.g. red/red0.png"):
        load_public_split(challenge)


def test_public_split_key_is_a_file_under_challenges(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace('hidden_split = "splits/toy-hidden.txt"\n',
                                             'hidden_split = "splits/toy-hidden.txt"\n'
                                             'public_split = "../../secret.txt"\n'))
    with pytest.raises(ChallengeError, match="public_split"):
        load_challenge(settings.project_dir, "toy")


def test_validate_checks_the_public_split(make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    assert main(["validate"]) == 2
    assert "toy records no public split of its hidden test set" in capsys.readouterr().err
    path = give_public_split(settings, monkeypatch)
    capsys.readouterr()
    assert main(["validate"]) == 0
    assert "ok  toy: 8 criteria, 11 points, hidden test set of 6 images; public part 3, private part 3" \
        in capsys.readouterr().out
    path.write_text("red/red0.png\nred/red1.png\nblue/blue0.png\n")
    assert main(["validate"]) == 2
    assert ("public split of toy: not stratified (per class the parts must differ by at most 1): "
            "green 0 public of 2; red 2 public of 2") in capsys.readouterr().err


def test_cache_key_covers_the_public_split(make_toy: Callable[..., Settings],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.pipeline.cache import project_digest

    settings = make_toy()
    path = give_public_split(settings, monkeypatch)
    before = project_digest.__wrapped__(settings.project_dir)
    path.write_text(path.read_text() + "# edited\n")
    assert project_digest.__wrapped__(settings.project_dir) != before


def _left_edge(path: Path) -> int:
    """Column of the leftmost white pixel of a toy image (where its white rectangle starts)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    return int(np.where((pixels.min(axis=2) > 240).any(axis=0))[0].min())


@pytest.mark.kernel
def test_result_json_carries_both_parts(make_toy: Callable[..., Settings], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_toy()
    give_public_split(settings, monkeypatch)
    assert settings.data_dir is not None
    public = load_public_split(load_challenge(settings.project_dir, "toy")) or []
    edges = sorted(_left_edge(settings.data_dir / "toy" / e) for e in public)
    hidden_edges = {_left_edge(settings.data_dir / "toy" / e) for e in load_split(
        load_challenge(settings.project_dir, "toy"))}
    assert len(hidden_edges) == 6  # the rectangle tells every hidden image apart
    # right on the public images (told by their content), wrong on the private ones
    cells = [
        "import os\nimport numpy as np\nCLASS_NAMES = ['red', 'green', 'blue']",
        f"PUBLIC_EDGES = {edges!r}\n"
        "def predict(images):\n"
        "    out = []\n"
        "    for im in images:\n"
        "        a = np.asarray(im.convert('RGB')).astype(int)\n"
        "        colour = int(np.argmax(a.reshape(-1, 3).mean(0)))\n"
        "        edge = int(np.where((a.min(axis=2) > 240).any(axis=0))[0].min())\n"
        "        out.append(CLASS_NAMES[colour if edge in PUBLIC_EDGES else (colour + 1) % 3])\n"
        "    return out",
    ]
    folder = write_submission(tmp_path, "half", cells)
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    import grader.report

    asked: list[Any] = []
    write_cohort = grader.report.write_cohort

    def spy(*args: Any, leaderboard: Any = "all", **kwargs: Any) -> list[Path]:
        asked.append(leaderboard)
        return write_cohort(*args, leaderboard=leaderboard, **kwargs)

    monkeypatch.setattr(grader.report, "write_cohort", spy)  # grader check takes it from the face
    out = tmp_path / "out"
    assert main(["check", str(folder), "--out", str(out), "--leaderboard", "public"]) == 1
    assert asked == ["public"]
    result = json.loads((out / "half" / "result.json").read_text())
    model = result["notebooks"][0]["models"][0]
    parts = {p["part"]: (p["accuracy"]["k"], p["accuracy"]["n"], p["accuracy"]["value"]) for p in model["parts"]}
    assert parts == {"public": (3, 3, 1.0), "private": (0, 3, 0.0)}
    assert model["accuracy"] == 0.5
    accuracy = next(c for c in result["notebooks"][0]["criteria"] if c["id"] == "accuracy")
    assert accuracy["status"] == "fail"  # the verdict is on the whole hidden test set


def test_leaderboard_option_takes_a_part(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["check", str(tmp_path), "--out", str(tmp_path / "out"), "--leaderboard", "best"])
    assert stop.value.code == 2
    assert "argument --leaderboard: invalid choice: 'best' (choose from 'public', 'private', 'all')" \
        in capsys.readouterr().err
