"""Small synthetic photo sets for ``grader new-challenge``: a few dozen tiny images per set, each class
its own colour with a smooth random texture per image (so that no two images are near-duplicates
unless a test makes them so), written with Pillow under ``tmp_path``."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from PIL import Image

from grader.core import Settings

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def photo(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A ``size`` (width, height) image of ``colour`` with a smooth texture chosen by ``seed``."""
    rng = random.Random(seed)
    small = Image.new("RGB", (4, 4))
    small.putdata([tuple(max(0, min(255, c + rng.randint(-90, 90))) for c in colour) for _ in range(16)])
    return small.resize(size, Image.Resampling.BICUBIC)


def write_class_folders(root: Path, counts: dict[str, int], *, names: Callable[[str, int], str] | None = None,
                        seed: int = 0) -> Path:
    """``root/<class>/<name>`` for ``counts[class]`` images each, PNG and JPEG alternating."""
    for c, (cls, n) in enumerate(counts.items()):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            name = names(cls, i) if names else f"{cls}{i:02d}.{'png' if i % 2 else 'jpg'}"
            photo(COLOURS.get(cls, (120, 120, 120)), seed + 1000 * c + i).save(root / cls / name)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """A coach's empty project (``challenges/``) and a data folder, both under ``tmp_path``."""
    (tmp_path / "project" / "challenges").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    return Settings(project_dir=tmp_path / "project", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                    python=sys.executable)


def entries_of(path: Path) -> list[str]:
    """The entries of a split file (``#`` comments left out)."""
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]


def same_side(hidden: set[str], group: Sequence[str]) -> bool:
    """Whether every entry of ``group`` is hidden, or none is."""
    return len({e in hidden for e in group}) == 1
