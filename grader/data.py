"""Datasets: the recorded hidden split, the public view a notebook sees, the hidden test set.

The trust boundary starts here. The public view is a *copy* of the source data without the
hidden files (a symlink would let a kernel follow it back to the labelled folders). The hidden
test set is re-materialised under neutral names (``0000.jpeg``) in a fixed shuffled order; the
labels stay in the grader's memory and are never written next to the images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.challenge import Challenge, DatasetSpec, PreparedView
from grader.errors import DataError
from grader.settings import Settings

__all__ = [
    "IMAGE_SUFFIXES",
    "HiddenTestSet",
    "dataset_hashes",
    "ensure_hidden_test_set",
    "ensure_public_view",
    "list_images",
    "load_split",
    "scan_source",
    "stratified_split",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
_SHUFFLE_SEED = 20181212  # fixed: every run names the hidden images the same way


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix, case-insensitive), sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def scan_source(data_dir: Path, dataset: DatasetSpec) -> dict[str, list[str]]:
    """List the source dataset as ``{class: [file name, ...]}``.

    Raises:
        DataError: the source folder or a class folder is missing or holds no images; the
            message names every missing path.
    """
    root = data_dir / dataset.source
    if not root.is_dir():
        raise DataError(
            f"dataset {dataset.source!r} is missing: {root} does not exist",
            path=root,
            fix=f"point GRADER_DATA_DIR at the folder that holds {dataset.source}/",
        )
    missing = [c for c in dataset.classes if not (root / c).is_dir()]
    if missing:
        raise DataError(
            f"dataset {dataset.source!r} is incomplete: class folders missing: {', '.join(missing)}",
            path=root,
            fix="restore the full dataset folder",
        )
    files = {c: [p.name for p in list_images(root / c)] for c in dataset.classes}
    empty = [c for c, names in files.items() if not names]
    if empty:
        raise DataError(f"class folders hold no images: {', '.join(empty)}", path=root)
    return files


def stratified_split(
    files_by_class: Mapping[str, Iterable[str]], *, fraction: float, seed: int
) -> list[str]:
    """Choose ``fraction`` of each class (at least one file), reproducibly.

    Returns:
        ``<class>/<file>`` paths, sorted. The same input, fraction and seed always give the same
        list (Python's ``random.Random`` is stable across versions for ``sample``).
    """
    rng = random.Random(seed)
    chosen: list[str] = []
    for cls in sorted(files_by_class):
        names = sorted(files_by_class[cls])
        k = max(1, round(len(names) * fraction))
        chosen.extend(f"{cls}/{name}" for name in rng.sample(names, k))
    return sorted(chosen)


def load_split(challenge: Challenge) -> list[str]:
    """Read the recorded hidden split of ``challenge`` (``<class>/<file>`` a line; ``#`` comments).

    Raises:
        DataError: the split file is missing or names a class the challenge does not have.
    """
    path = challenge.folder.parent / challenge.dataset.hidden_split
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DataError(f"cannot read the hidden split: {err}", path=path) from err
    entries = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    classes = set(challenge.dataset.classes)
    bad = [e for e in entries if e.split("/", 1)[0] not in classes or "/" not in e]
    if bad:
        raise DataError(f"hidden split names unknown classes: {bad[:5]}", path=path)
    return entries


def _digest(items: Iterable[str]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(item.encode() + b"\n")
    return h.hexdigest()[:16]


def _check_split_present(files: dict[str, list[str]], split: list[str], root: Path) -> None:
    present = {f"{c}/{n}" for c, names in files.items() for n in names}
    missing = [e for e in split if e not in present]
    if missing:
        raise DataError(
            f"{len(missing)} files of the hidden test set are missing from {root}, e.g. "
            f"{', '.join(missing[:5])}",
            path=root,
            fix="restore the full dataset; the hidden split is recorded in the project",
        )


def _build_atomically(target: Path, build: object) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target``; reuse ``target`` if present."""
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        build(tmp)  # type: ignore[operator]
        (tmp / ".complete").write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _pad_to_square(src: Path, dst: Path, view: PreparedView) -> None:
    from PIL import Image

    with Image.open(src) as opened:
        if opened.mode in ("RGBA", "LA") or (opened.mode == "P" and "transparency" in opened.info):
            rgba = opened.convert("RGBA")
            im = Image.new("RGB", rgba.size, view.background)
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = opened.convert("RGB")
        im.thumbnail((view.size, view.size), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (view.size, view.size), view.background)
        canvas.paste(im, ((view.size - im.width) // 2, (view.size - im.height) // 2))
        canvas.save(dst.with_suffix(".png"))


def ensure_public_view(settings: Settings, challenge: Challenge) -> Path:
    """Build (once, cached) the data folder a notebook receives as ``DATA_DIR``.

    Layout: ``DATA_DIR/<source>/<class>/<file>`` (copies of every non-hidden file), for each
    prepared view ``DATA_DIR/<view>/<class>/<stem>.png``, and each ``extra`` folder as it is.

    Raises:
        DataError: the source data is missing or incomplete.
    """
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    files = scan_source(data_dir, ds)
    split = load_split(challenge)
    _check_split_present(files, split, data_dir / ds.source)
    hidden = set(split)
    views = ",".join(f"{v.name}:{v.size}:{v.background}" for v in ds.prepared_views)
    missing = [e for e in ds.extra if not (data_dir / e).is_dir()]
    if missing:
        raise DataError(f"folders missing from the data directory: {', '.join(missing)}",
                        path=data_dir, fix="restore the full datasets folder")
    key = _digest([ds.source, views, *ds.extra, *sorted(hidden)])
    target = settings.cache_dir / "views" / f"{ds.source}-{key}"

    def build(tmp: Path) -> None:
        log.info("building the public view of %s in %s", ds.source, target)
        for cls, names in files.items():
            out = tmp / ds.source / cls
            out.mkdir(parents=True)
            prepared = [tmp / v.name / cls for v in ds.prepared_views]
            for p in prepared:
                p.mkdir(parents=True)
            for name in names:
                if f"{cls}/{name}" in hidden:
                    continue
                src = data_dir / ds.source / cls / name
                shutil.copyfile(src, out / name)
                for view, folder in zip(ds.prepared_views, prepared, strict=True):
                    _pad_to_square(src, folder / name, view)
        for extra in ds.extra:
            shutil.copytree(data_dir / extra, tmp / extra)

    return _build_atomically(target, build)


@dataclass(frozen=True)
class HiddenTestSet:
    """The hidden test set as the grader holds it.

    Attributes:
        images_dir: folder of renamed images (``0000.jpeg`` ...), safe to show a kernel.
        files: image file names in probe order, length N.
        labels: true class name of each file, length N; never leaves the grader.
    """

    images_dir: Path
    files: tuple[str, ...]
    labels: tuple[str, ...]


def ensure_hidden_test_set(settings: Settings, challenge: Challenge) -> HiddenTestSet:
    """Materialise the hidden test set under neutral names, shuffled with a fixed seed.

    Raises:
        DataError: the source data is missing or lacks files of the recorded split.
    """
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    split = load_split(challenge)
    order = list(split)
    random.Random(_SHUFFLE_SEED).shuffle(order)
    names = tuple(f"{i:05d}{Path(e).suffix.lower()}" for i, e in enumerate(order))
    labels = tuple(e.split("/", 1)[0] for e in order)
    target = settings.cache_dir / "hidden" / f"{ds.source}-{_digest(order)}"

    def build(tmp: Path) -> None:
        files = scan_source(data_dir, ds)
        _check_split_present(files, split, data_dir / ds.source)
        for name, entry in zip(names, order, strict=True):
            shutil.copyfile(data_dir / ds.source / entry, tmp / name)

    _build_atomically(target, build)
    return HiddenTestSet(images_dir=target, files=names, labels=labels)


def dataset_hashes(settings: Settings, challenge: Challenge) -> dict[str, str]:
    """Perceptual hashes (64-bit pHash, hex) of every source image, keyed ``<class>/<file>``.

    Method: ``imagehash.phash`` (DCT of a 32x32 greyscale thumbnail). Cached in the cache
    folder per dataset listing.
    """
    import imagehash
    from PIL import Image

    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    files = scan_source(data_dir, ds)
    entries = sorted(f"{c}/{n}" for c, names in files.items() for n in names)
    path = settings.cache_dir / "phash" / f"{ds.source}-{_digest(entries)}.json"
    if path.is_file():
        cached: dict[str, str] = json.loads(path.read_text())
        return cached
    hashes: dict[str, str] = {}
    for entry in entries:
        with Image.open(data_dir / ds.source / entry) as im:
            hashes[entry] = str(imagehash.phash(im.convert("RGB")))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(hashes))
    os.replace(tmp, path)
    return hashes
