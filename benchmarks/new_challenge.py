"""``grader new-challenge``'s figures: how long checking every image and choosing the splits take on
CIFAR-10's 60,000 PNG files (train and test folders), and on synthetic photos of a few megapixels
(JPEG, about 3000 x 2000, smooth noise so that they compress like photos).

Each run writes the challenge into a temporary project (the data are read where they are); the
synthetic photos are generated once under ``/tmp/grader-bench-photos`` (never in the repository)
and reused. Targets on a 2-core machine: CIFAR-10 under a minute, 10,000 photos under three.

    .venv/bin/python benchmarks/new_challenge.py            # CIFAR-10 (60,000) and 10,000 photos
    .venv/bin/python benchmarks/new_challenge.py --quick    # 6,000 CIFAR-10 images and 1,000 photos

Prints one line per run: images, wall seconds (reading and hashing; near-duplicate pairs; splits;
files written), images per second, the machine's load average before and after, and the cores used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.author import Request, new_challenge  # noqa: E402
from grader.core import Settings  # noqa: E402

PHOTOS = Path("/tmp/grader-bench-photos")
CLASSES = ("alpine", "beach", "forest", "meadow")


def _photo(args: tuple[Path, int]) -> None:
    """One synthetic photo, 3000 x 2000: smooth noise (a random 30 x 20 image scaled up) with grain,
    drawn at 750 x 500 and scaled up 4x, JPEG quality 90 (about 1.1 MB, as a phone's photo of this
    size; 0.14 s to make here)."""
    import numpy as np
    from PIL import Image

    path, seed = args
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    mid = np.asarray(small.resize((750, 500), Image.Resampling.BICUBIC), dtype=np.int16)
    mid = np.clip(mid + rng.integers(-10, 11, (500, 750, 1), dtype=np.int16), 0, 255).astype(np.uint8)
    Image.fromarray(mid).resize((3000, 2000), Image.Resampling.NEAREST).save(path, quality=90)


def ensure_photos(count: int) -> Path:
    """``PHOTOS/photos<count>/<class>/<n>.jpg``, generated once on every core."""
    from concurrent.futures import ProcessPoolExecutor

    folder = PHOTOS / f"photos{count}"
    todo = []
    for n in range(count):
        path = folder / CLASSES[n % len(CLASSES)] / f"{n:05d}.jpg"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            todo.append((path, n))
    if todo:
        print(f"generating {len(todo)} photos under {folder} (once)", file=sys.stderr, flush=True)
        with ProcessPoolExecutor() as pool:
            list(pool.map(_photo, todo, chunksize=16))
    return folder


def cifar_subset(count: int) -> Path:
    """A data folder holding ``cifar10q/{train,test}/<class>/`` as links to ``count`` CIFAR-10 images
    (the first files of each class, 5/6 of them from train/)."""
    source = Path(os.environ.get("GRADER_DATA_DIR", ROOT.parent / "shared" / "datasets")) / "cifar10"
    data = PHOTOS / f"cifar{count}"
    per_class = count // 10
    for side, share in (("train", per_class * 5 // 6), ("test", per_class - per_class * 5 // 6)):
        for cls in sorted(p.name for p in (source / side).iterdir()):
            target = data / "cifar10q" / side / cls
            target.mkdir(parents=True, exist_ok=True)
            for name in sorted(p.name for p in (source / side / cls).iterdir())[:share]:
                if not (target / name).exists():
                    (target / name).symlink_to(source / side / cls / name)
    return data / "cifar10q"


def run(label: str, folder: Path) -> None:
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grader-bench-new-") as tmp:
        settings = Settings(project_dir=Path(tmp) / "project", data_dir=folder.parent, cache_dir=Path(tmp) / "cache",
                            python=sys.executable)
        (settings.project_dir / "challenges").mkdir(parents=True)
        start = time.perf_counter()
        made = new_challenge(settings, Request(challenge_id="bench", data=folder, framework="scikit-learn",
                                               command="benchmarks/new_challenge.py"))
        wall = time.perf_counter() - start
    s = made.seconds
    n = len(made.source.entries)
    cores = len(os.sched_getaffinity(0))
    print(f"new-challenge: {label:28} {n:6d} images {wall:6.1f} s  (read {s['scan']:.1f} s, pairs {s['pairs']:.1f} s, "
          f"splits {s['splits']:.1f} s, write {s['write']:.1f} s)  {n / wall:6.0f} images/s; "
          f"hidden {len(made.splits.hidden)}; load {before:.2f} -> {os.getloadavg()[0]:.2f}, {cores} cores", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6,000 CIFAR-10 images and 1,000 photos")
    parser.add_argument("--skip", default="", help="comma-separated: cifar, photos")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    if "cifar" not in skip:
        if args.quick:
            run("CIFAR-10 PNG (subset)", cifar_subset(6000))
        else:
            data = Path(os.environ.get("GRADER_DATA_DIR", ROOT.parent / "shared" / "datasets"))
            run("CIFAR-10 PNG", data / "cifar10")
    if "photos" not in skip:
        count = 1000 if args.quick else 10_000
        run("photos 3000x2000 JPEG", ensure_photos(count))


if __name__ == "__main__":
    main()
