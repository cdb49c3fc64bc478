"""The hidden test set: re-materialised under neutral names (``0000.jpeg``) in a fixed shuffled
order, the labels kept in the grader's memory and never written next to the images; the same for
the added class's held-out photos; and the perceptual hashes of a dataset's images.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from grader.core import Challenge, DataError, Settings
from grader.data.splits import Listing, added_public, list_dataset, load_public_split
from grader.data.store import SHUFFLE_SEED, HiddenTestSet, build_atomically, cache_lock, digest

__all__ = ["dataset_hashes", "ensure_added_test_set", "ensure_hidden_test_set"]


def ensure_hidden_test_set(settings: Settings, challenge: Challenge, *,
                           listing: Listing | None = None, with_public_split: bool = True) -> HiddenTestSet:
    """Materialise the hidden test set under neutral names, shuffled with a fixed seed, with
    each image's part (public or private) where the challenge records a public split.

    Args:
        settings: the grader's settings (data and cache folders).
        challenge: whose hidden test set to build.
        listing: the dataset's listing (default: :func:`list_dataset`); its ``hidden`` entries
            are the test set (for a practice check, :func:`grader.data.practice.practice_listing`).
        with_public_split: read the challenge's public split and mark each image's part; false
            for a test set that is not the hidden test set (the practice split): ``public`` is
            then None.

    Raises:
        DataError: the source data is missing or lacks files of the hidden test set; the public
            split cannot be read, lists an entry twice or names one outside the hidden test set.
    """
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    order = sorted((listing or list_dataset(data_dir, challenge)).hidden)
    recorded = load_public_split(challenge) if with_public_split else None
    public: tuple[bool, ...] | None = None
    if recorded is not None:
        stray = sorted(set(recorded) - {e for e, _ in order})
        if stray:
            raise DataError(f"the public split names {len(stray)} images outside the hidden test set, "
                            f"e.g. {', '.join(stray[:5])}",
                            path=challenge.folder.parent / str(ds.public_split),
                            fix=f"regenerate it with grader data make-split {challenge.id}")
    random.Random(SHUFFLE_SEED).shuffle(order)
    names = tuple(f"{i:05d}{Path(e).suffix.lower()}" for i, (e, _) in enumerate(order))
    labels = tuple(label for _, label in order)
    target = settings.cache_dir / "hidden" / f"{ds.source}-{digest(e for e, _ in order)}"

    def build(tmp: Path) -> None:
        if ds.layout == "idx":
            from grader.data.idx import render_idx  # here: idx imports numpy (0.1 s of start-up)

            render_idx(tmp, names, [e for e, _ in order], data_dir, ds)
            return
        for name, (entry, _) in zip(names, order, strict=True):
            shutil.copyfile(data_dir / ds.source / entry, tmp / name)

    build_atomically(target, build)
    if recorded is not None:
        chosen = set(recorded)
        public = tuple(entry in chosen for entry, _ in order)
    return HiddenTestSet(images_dir=target, files=names, labels=labels, public=public)


def ensure_added_test_set(settings: Settings, challenge: Challenge) -> HiddenTestSet | None:
    """The held-out images of the added class under neutral names, or None without one.

    Raises:
        DataError: the added class's folder or some of its files are missing.
    """
    added = challenge.dataset.added_class
    if added is None:
        return None
    data_dir = settings.require_data_dir()
    added_public(data_dir, challenge)
    order = sorted(added.hidden)
    random.Random(SHUFFLE_SEED).shuffle(order)
    names = tuple(f"{i:05d}{Path(e).suffix.lower()}" for i, e in enumerate(order))
    target = settings.cache_dir / "hidden" / f"{added.source}-{digest(order)}"

    def build(tmp: Path) -> None:
        for name, entry in zip(names, order, strict=True):
            shutil.copyfile(data_dir / added.source / entry, tmp / name)

    build_atomically(target, build)
    return HiddenTestSet(images_dir=target, files=names, labels=(added.name,) * len(names))


def dataset_hashes(settings: Settings, challenge: Challenge, *,
                   listing: Listing | None = None) -> dict[str, str]:
    """Perceptual hashes (64-bit pHash, hex) of every image of the dataset, keyed by entry.

    Method: ``imagehash.phash`` (DCT of a 32x32 greyscale thumbnail). Cached in the cache
    folder per dataset listing.
    """
    import imagehash
    from PIL import Image

    from grader.data.idx import idx_images  # here: idx imports numpy (0.1 s of start-up)

    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    listing = listing or list_dataset(data_dir, challenge)
    entries = sorted(e for e, _ in listing.public + listing.hidden)
    path = settings.cache_dir / "phash" / f"{ds.source}-{digest(entries)}.json"
    if not path.is_file():
        with cache_lock(settings.cache_dir):
            if not path.is_file():  # another thread or process may have built it meanwhile
                hashes: dict[str, str] = {}
                if ds.layout == "idx":
                    hashes = {e: str(imagehash.phash(im.convert("RGB")))
                              for e, im in idx_images(data_dir, ds, entries)}
                for entry in entries if ds.layout != "idx" else ():
                    with Image.open(data_dir / ds.source / entry) as im:
                        hashes[entry] = str(imagehash.phash(im.convert("RGB")))
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(hashes))
                os.replace(tmp, path)
                return hashes
    cached: dict[str, str] = json.loads(path.read_text())
    return cached
