"""Datasets: the recorded hidden split, the public view a notebook sees, the hidden test set.

The trust boundary starts here. The public view is a *copy* of the source data without the
hidden files (a symlink would let a kernel follow it back to the labelled folders). The hidden
test set is re-materialised under neutral names (``0000.jpeg``) in a fixed shuffled order; the
labels stay in the grader's memory and are never written next to the images.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.challenge import Challenge, DatasetSpec, PreparedView
from grader.errors import DataError, GraderError
from grader.settings import Settings

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "HiddenTestSet",
    "added_public",
    "dataset_hashes",
    "ensure_added_test_set",
    "ensure_hidden_test_set",
    "ensure_public_view",
    "Listing",
    "list_dataset",
    "list_images",
    "load_public_split",
    "load_split",
    "public_split",
    "public_split_problems",
    "public_split_text",
    "scan_source",
    "stratified_split",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".heic", ".heif"})
_SHUFFLE_SEED = 20181212  # fixed: every run names the hidden images the same way


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name.

    An image file is one whose suffix is in :data:`IMAGE_SUFFIXES` in any case (``IMG_0001.JPG``,
    as phones name them; ``.heic`` too, decoded where ``pillow-heif`` is installed). Hidden
    files are left out: macOS writes ``._IMG_0001.JPG`` beside each photo it zips, and those
    are not images.
    """
    return sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".") and p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _class_files(root: Path, classes: list[str], what: str) -> dict[str, list[str]]:
    if not root.is_dir():
        raise DataError(f"{what} is missing: {root} does not exist", path=root,
                        fix="point GRADER_DATA_DIR at the datasets folder")
    missing = [c for c in classes if not (root / c).is_dir()]
    if missing:
        raise DataError(f"{what} is incomplete: class folders missing: {', '.join(missing)}",
                        path=root, fix="restore the full dataset folder")
    files = {c: [p.name for p in list_images(root / c)] for c in classes}
    empty = [c for c, names in files.items() if not names]
    if empty:
        raise DataError(f"class folders hold no images: {', '.join(empty)}", path=root)
    return files


def scan_source(data_dir: Path, dataset: DatasetSpec) -> dict[str, list[str]]:
    """List a ``class-folders`` dataset as ``{class: [file name, ...]}``.

    Raises:
        DataError: the source folder or a class folder is missing or holds no images; the
            message names every missing path.
    """
    return _class_files(data_dir / dataset.source, dataset.classes, f"dataset {dataset.source!r}")


@dataclass(frozen=True)
class Listing:
    """A dataset split into what the kernel may see and the hidden test set.

    Entries are paths relative to ``<data dir>/<source>`` with their class:
    ``(<class>/<file>, class)`` or ``(train/<class>/<file>, class)``.
    """

    public: tuple[tuple[str, str], ...]
    hidden: tuple[tuple[str, str], ...]


def list_dataset(data_dir: Path, challenge: Challenge, *, public_only: bool = False) -> Listing:
    """Split the challenge's dataset into public and hidden entries, checking it is complete.

    Args:
        data_dir: the datasets folder.
        challenge: whose dataset to list.
        public_only: list the public entries only (``hidden`` empty) and do not require the
            hidden files: for a data folder that holds only the public data, as
            ``grader data export`` writes it (:mod:`grader.practice`). The files of the recorded
            hidden split are still left out of ``public`` where they are present.

    Raises:
        DataError: missing folders, or (unless ``public_only``) hidden files of the recorded
            split missing.
    """
    ds = challenge.dataset
    root = data_dir / ds.source
    if ds.layout == "idx":
        return _idx_listing(data_dir, ds, public_only=public_only)
    if ds.layout == "train-test-folders":
        sides = {side: _class_files(root / side, ds.classes, f"{ds.source}/{side}")
                 for side in (("train",) if public_only else ("train", "test"))}
        pairs = {side: tuple((f"{side}/{c}/{n}", c) for c, names in files.items() for n in names)
                 for side, files in sides.items()}
        return Listing(public=pairs["train"], hidden=pairs.get("test", ()))
    files = scan_source(data_dir, ds)
    split = load_split(challenge)
    if not public_only:
        _check_split_present(files, split, root)
    hidden = set(split)
    if public_only:
        return Listing(public=tuple((f"{c}/{n}", c) for c, names in files.items() for n in names
                                    if f"{c}/{n}" not in hidden), hidden=())
    public = tuple((f"{c}/{n}", c) for c, names in files.items() for n in names
                   if f"{c}/{n}" not in hidden)
    return Listing(public=public, hidden=tuple((e, e.split("/", 1)[0]) for e in split))


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
    if challenge.dataset.hidden_split is None:
        raise DataError(f"challenge {challenge.id} records no hidden split",
                        path=challenge.folder / "challenge.toml")
    path = challenge.folder.parent / challenge.dataset.hidden_split
    entries = _read_entries(path, "hidden split")
    classes = set(challenge.dataset.classes)
    bad = [e for e in entries if e.split("/", 1)[0] not in classes or "/" not in e]
    if bad:
        raise DataError(f"hidden split names unknown classes: {bad[:5]}", path=path)
    return entries


def _read_entries(path: Path, what: str) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DataError(f"cannot read the {what}: {err}", path=path) from err
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def public_split(hidden: Iterable[tuple[str, str]]) -> list[str]:
    """Choose the public half of a hidden test set, stratified by class.

    Method: within each class, the entries (the images' original identities, ``<class>/<file>``
    or ``test/<class>/<file>``) ordered by the SHA-256 of their UTF-8 bytes (ties by the entry)
    and the first half taken; of the classes with an odd number of images (in sorted order)
    the first, third, ... give their middle image to the public part and the others to the
    private part. Nothing but the identities enters: the same on every machine, Python version
    and run, whatever the input order, and the choice within one class does not depend on the
    other classes (a subset of the classes gets the same halves).

    Args:
        hidden: ``(entry, class)`` pairs of the hidden test set.

    Returns:
        The public entries, sorted. Per class, the public and private counts differ by at most
        one, and so do the parts' sizes.
    """
    by_class: dict[str, list[str]] = {}
    for entry, label in hidden:
        by_class.setdefault(label, []).append(entry)
    chosen: list[str] = []
    odd = 0
    for label in sorted(by_class):
        entries = sorted(set(by_class[label]),
                         key=lambda e: (hashlib.sha256(e.encode("utf-8")).hexdigest(), e))
        take = len(entries) // 2
        if len(entries) % 2:
            take += 1 - odd % 2
            odd += 1
        chosen.extend(entries[:take])
    return sorted(chosen)


def public_split_text(challenge: Challenge, listing: Listing) -> str:
    """The public split file of ``challenge``'s hidden test set, as :func:`public_split` makes it.

    The header names the dataset, not the challenge, so challenges on the same hidden test set
    share one file.
    """
    public = public_split(listing.hidden)
    source = challenge.dataset.source
    header = [
        f"# Public part of the hidden test set of {source!r} ({len(challenge.dataset.classes)} classes): "
        f"{len(public)} of its {len(listing.hidden)} images,",
        f"# by original identity under GRADER_DATA_DIR/{source}, one a line; the rest is the private part.",
        "# Made by `python -m grader.data --make-public-split` (grader.data.public_split: per class,",
        "# the lower half by SHA-256 of the identity); regenerating gives this same file.",
    ]
    return "\n".join(header + public) + "\n"


def load_public_split(challenge: Challenge) -> list[str] | None:
    """Read the recorded public part of ``challenge``'s hidden test set, or None without one.

    Raises:
        DataError: the file cannot be read or lists an entry twice.
    """
    if challenge.dataset.public_split is None:
        return None
    path = challenge.folder.parent / challenge.dataset.public_split
    entries = _read_entries(path, "public split")
    twice = sorted(e for e, n in Counter(entries).items() if n > 1)
    if twice:
        raise DataError(f"the public split lists {len(twice)} entries twice, e.g. {', '.join(twice[:5])}",
                        path=path, fix="regenerate it with python -m grader.data --make-public-split")
    return entries


def public_split_problems(hidden: Sequence[tuple[str, str]], public: Sequence[str]) -> list[str]:
    """What is wrong with ``public`` as the public part of the hidden test set ``hidden``.

    Checks: every public entry is in the hidden test set and listed once (so the public and the
    private part, the rest, are disjoint and cover it); per class, the public and the private
    counts differ by at most one (stratified halves); the parts' sizes differ by at most one.

    Args:
        hidden: ``(entry, class)`` pairs of the hidden test set.
        public: the public entries as recorded.

    Returns:
        One message per problem; empty when the split is sound.
    """
    problems: list[str] = []
    label_of = dict(hidden)
    twice = sorted(e for e, n in Counter(public).items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} entries listed twice (in both parts), e.g. {', '.join(twice[:3])}")
    stray = sorted(set(public) - set(label_of))
    if stray:
        problems.append(f"{len(stray)} entries not in the hidden test set, e.g. {', '.join(stray[:3])}")
    chosen = set(public) & set(label_of)
    total = Counter(label_of.values())
    inside = Counter(label_of[e] for e in chosen)
    skewed = [f"{c} {inside[c]} public of {total[c]}" for c in sorted(total)
              if abs(2 * inside[c] - total[c]) > 1]
    if skewed:
        problems.append(f"not stratified (per class the parts must differ by at most 1): {'; '.join(skewed)}")
    if abs(2 * len(chosen) - len(label_of)) > 1:
        problems.append(f"{len(chosen)} public of {len(label_of)} images: not half and half")
    return problems


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


_LOCK = threading.Lock()


@contextmanager
def _cache_lock(cache_dir: Path) -> Iterator[None]:
    """Hold the cache for building: a lock between threads (``--jobs``) and a ``flock`` on
    ``cache_dir/.lock`` between processes (Dask workers on one machine)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(cache_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_atomically(target: Path, build: object) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target``; reuse ``target`` if present.

    One builder at a time (:func:`_cache_lock` on the cache folder, ``target``'s grandparent);
    those that waited find it built."""
    if (target / ".complete").is_file():
        target.chmod(0o755)  # built by an older grader as 0700
        return target
    with _cache_lock(target.parent.parent):
        if (target / ".complete").is_file():
            return target
        return _build(target, build)


def _build(target: Path, build: object) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tmp.chmod(0o755)  # readable by the sandbox's uid
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


def _kaggle_view(tmp: Path, view: PreparedView, public: tuple[tuple[str, str], ...],
                 source: Path) -> None:
    """Kaggle's CIFAR-10 layout: ``train/<id>.png`` and ``trainLabels.csv`` (``id,label``)."""
    order = list(public)
    random.Random(_SHUFFLE_SEED).shuffle(order)
    (tmp / view.name / "train").mkdir(parents=True)
    rows = ["id,label"]
    for number, (entry, label) in enumerate(order, 1):
        shutil.copyfile(source / entry, tmp / view.name / "train" / f"{number}{Path(entry).suffix}")
        rows.append(f"{number},{label}")
    (tmp / view.name / "trainLabels.csv").write_text("\n".join(rows) + "\n")


def _idx_listing(data_dir: Path, ds: DatasetSpec, *, public_only: bool) -> Listing:
    """The listing of an ``idx`` dataset (:mod:`grader.idx`): ``train/<class>/<index>.png``
    public, ``test/<class>/<index>.png`` hidden, each side read and checked against its
    published counts."""
    from grader import idx

    folder = idx.find_idx_folder(data_dir, ds)
    train = idx.idx_entries("train", idx.load_side(folder, "train", ds).labels, ds.classes)
    test = () if public_only else idx.idx_entries("test", idx.load_side(folder, "test", ds).labels, ds.classes)
    return Listing(public=train, hidden=test)


def _idx_images(data_dir: Path, ds: DatasetSpec, entries: Iterable[str]) -> Iterator[tuple[str, Image.Image]]:
    """Each identity of ``entries`` of an ``idx`` dataset with its image, 8-bit grayscale."""
    from grader import idx

    folder = idx.find_idx_folder(data_dir, ds)
    sides = {side: idx.load_side(folder, side, ds) for side in idx.IDX_FILES}
    for entry in entries:
        side, index = idx.entry_index(entry)
        yield entry, idx.image_of(sides[side], index)


def _kaggle_csv_view(tmp: Path, view: PreparedView, public: tuple[tuple[str, str], ...], data_dir: Path,
                     ds: DatasetSpec) -> None:
    """Kaggle's Fashion-MNIST layout: ``<view>/fashion-mnist_train.csv`` of the public images, in
    file order (:func:`grader.idx.write_train_csv`)."""
    from grader import idx

    data = idx.load_side(idx.find_idx_folder(data_dir, ds), "train", ds)
    indices = sorted(idx.entry_index(e)[1] for e, _ in public)
    idx.write_train_csv(tmp / view.name / idx.CSV_NAME, data, indices)


def _render_idx(tmp: Path, names: Sequence[str], entries: Sequence[str], data_dir: Path, ds: DatasetSpec) -> None:
    """Write each idx image of ``entries`` as an 8-bit grayscale PNG named by ``names``."""
    for name, (_, image) in zip(names, _idx_images(data_dir, ds, entries), strict=True):
        image.save(tmp / name)


def ensure_public_view(settings: Settings, challenge: Challenge, *,
                       listing: Listing | None = None, public_only: bool = False) -> Path:
    """Build (once, cached) the data folder a notebook receives as ``DATA_DIR``.

    Layout: ``DATA_DIR/<source>/<entry>`` (copies of every public file: ``<class>/<file>``, or
    ``train/<class>/<file>``), each prepared view under ``DATA_DIR/<view>/``, and each ``extra``
    folder as it is. Nothing of the hidden test set is copied.

    Args:
        settings: the grader's settings (data and cache folders).
        challenge: whose view to build.
        listing: the dataset's listing (default: :func:`list_dataset`); its ``public`` entries
            are copied.
        public_only: the data folder may hold only the public data (``grader data export``):
            the hidden and reserved files of the added class need not be present.

    Raises:
        DataError: the source data is missing or incomplete.
    """
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    listing = listing or list_dataset(data_dir, challenge, public_only=public_only)
    missing = [e for e in ds.extra if not (data_dir / e).is_dir()]
    if missing:
        raise DataError(f"folders missing from the data directory: {', '.join(missing)}",
                        path=data_dir, fix="restore the full datasets folder")
    views = [f"{v.name}:{v.kind}:{v.size}:{v.background}" for v in ds.prepared_views]
    added = ds.added_class
    added_public = _added_public(data_dir, challenge, public_only=public_only)
    mnist = [f"mnist:{ds.mnist.source}:{ds.mnist.view}"] if ds.mnist is not None else []
    key = _digest([ds.source, str(ds.raw_view), *views, *ds.extra, *added_public, *(e for e, _ in listing.hidden),
                   *(e for e, _ in listing.public), *mnist])
    target = settings.cache_dir / "views" / f"{ds.source}-{key}"
    source = data_dir / ds.source

    def build(tmp: Path) -> None:
        log.info("building the public view of %s in %s", ds.source, target)
        for entry, _ in listing.public:
            if ds.raw_view:
                out = tmp / ds.source / entry
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / entry, out)
            for view in ds.prepared_views:
                if view.kind == "pad":
                    padded = tmp / view.name / entry
                    padded.parent.mkdir(parents=True, exist_ok=True)
                    _pad_to_square(source / entry, padded, view)
        for view in ds.prepared_views:
            if view.kind == "kaggle":
                _kaggle_view(tmp, view, listing.public, source)
            elif view.kind == "kaggle-csv":
                _kaggle_csv_view(tmp, view, listing.public, data_dir, ds)
        for extra in ds.extra:
            shutil.copytree(data_dir / extra, tmp / extra)
        if added is not None:
            (tmp / added.source).mkdir(parents=True)
            for name in added_public:
                shutil.copyfile(data_dir / added.source / name, tmp / added.source / name)
        if ds.mnist is not None:  # its training part only (grader.mnist)
            from grader.mnist import write_mnist_view

            write_mnist_view(tmp, data_dir, ds.mnist)

    return _build_atomically(target, build)


@dataclass(frozen=True)
class HiddenTestSet:
    """The hidden test set as the grader holds it.

    Attributes:
        images_dir: folder of renamed images (``0000.jpeg`` ...), safe to show a kernel.
        files: image file names in probe order, length N.
        labels: true class name of each file, length N; never leaves the grader.
        public: per file, whether it is in the public part of the hidden test set (the
            challenge's ``public_split``), length N; None where the challenge records no split.
    """

    images_dir: Path
    files: tuple[str, ...]
    labels: tuple[str, ...]
    public: tuple[bool, ...] | None = None


def ensure_hidden_test_set(settings: Settings, challenge: Challenge, *,
                           listing: Listing | None = None, with_public_split: bool = True) -> HiddenTestSet:
    """Materialise the hidden test set under neutral names, shuffled with a fixed seed, with
    each image's part (public or private) where the challenge records a public split.

    Args:
        settings: the grader's settings (data and cache folders).
        challenge: whose hidden test set to build.
        listing: the dataset's listing (default: :func:`list_dataset`); its ``hidden`` entries
            are the test set (for a practice check, :func:`grader.practice.practice_listing`).
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
                            fix="regenerate it with python -m grader.data --make-public-split")
    random.Random(_SHUFFLE_SEED).shuffle(order)
    names = tuple(f"{i:05d}{Path(e).suffix.lower()}" for i, (e, _) in enumerate(order))
    labels = tuple(label for _, label in order)
    target = settings.cache_dir / "hidden" / f"{ds.source}-{_digest(e for e, _ in order)}"

    def build(tmp: Path) -> None:
        if ds.layout == "idx":
            _render_idx(tmp, names, [e for e, _ in order], data_dir, ds)
            return
        for name, (entry, _) in zip(names, order, strict=True):
            shutil.copyfile(data_dir / ds.source / entry, tmp / name)

    _build_atomically(target, build)
    if recorded is not None:
        chosen = set(recorded)
        public = tuple(entry in chosen for entry, _ in order)
    return HiddenTestSet(images_dir=target, files=names, labels=labels, public=public)


def _added_public(data_dir: Path, challenge: Challenge, *, public_only: bool = False) -> list[str]:
    """Files of the added class the kernel may learn from (neither hidden nor reserved); with
    ``public_only``, the hidden and reserved files need not be present."""
    added = challenge.dataset.added_class
    if added is None:
        return []
    folder = data_dir / added.source
    if not folder.is_dir():
        raise DataError(f"the folder of the added class {added.name!r} is missing", path=folder,
                        fix="point GRADER_DATA_DIR at the full datasets folder")
    names = {p.name for p in list_images(folder)}
    missing = [] if public_only else [n for n in added.hidden + added.reserved if n not in names]
    if missing:
        raise DataError(f"files of the added class are missing: {', '.join(missing)}", path=folder)
    return sorted(names - set(added.hidden) - set(added.reserved))


def added_public(data_dir: Path, challenge: Challenge, *, public_only: bool = False) -> list[str]:
    """The file names of the added class's public images (neither hidden nor reserved), sorted;
    empty without an added class.

    Raises:
        DataError: the added class's folder is missing, or (unless ``public_only``) some of its
            hidden or reserved files are.
    """
    return _added_public(data_dir, challenge, public_only=public_only)


def ensure_added_test_set(settings: Settings, challenge: Challenge) -> HiddenTestSet | None:
    """The held-out images of the added class under neutral names, or None without one.

    Raises:
        DataError: the added class's folder or some of its files are missing.
    """
    added = challenge.dataset.added_class
    if added is None:
        return None
    data_dir = settings.require_data_dir()
    _added_public(data_dir, challenge)
    order = sorted(added.hidden)
    random.Random(_SHUFFLE_SEED).shuffle(order)
    names = tuple(f"{i:05d}{Path(e).suffix.lower()}" for i, e in enumerate(order))
    target = settings.cache_dir / "hidden" / f"{added.source}-{_digest(order)}"

    def build(tmp: Path) -> None:
        for name, entry in zip(names, order, strict=True):
            shutil.copyfile(data_dir / added.source / entry, tmp / name)

    _build_atomically(target, build)
    return HiddenTestSet(images_dir=target, files=names, labels=(added.name,) * len(names))


def dataset_hashes(settings: Settings, challenge: Challenge, *,
                   listing: Listing | None = None) -> dict[str, str]:
    """Perceptual hashes (64-bit pHash, hex) of every image of the dataset, keyed by entry.

    Method: ``imagehash.phash`` (DCT of a 32x32 greyscale thumbnail). Cached in the cache
    folder per dataset listing.
    """
    import imagehash
    from PIL import Image

    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    listing = listing or list_dataset(data_dir, challenge)
    entries = sorted(e for e, _ in listing.public + listing.hidden)
    path = settings.cache_dir / "phash" / f"{ds.source}-{_digest(entries)}.json"
    if not path.is_file():
        with _cache_lock(settings.cache_dir):
            if not path.is_file():  # another thread or process may have built it meanwhile
                hashes: dict[str, str] = {}
                if ds.layout == "idx":
                    hashes = {e: str(imagehash.phash(im.convert("RGB")))
                              for e, im in _idx_images(data_dir, ds, entries)}
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


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m grader.data --make-public-split [ID ...]``: write the public split file of
    each challenge (all by default) that names one, from the data under ``GRADER_DATA_DIR``;
    ``--make-practice-split [ID ...]`` the same for practice split files
    (:func:`grader.practice.write_practice_splits`)."""
    import argparse
    import sys

    from grader.challenge import challenge_ids, load_challenge
    from grader.settings import resolve_settings

    parser = argparse.ArgumentParser(prog="python -m grader.data")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--make-public-split", nargs="*", metavar="ID",
                       help="challenges whose public split file to write (default: every one)")
    which.add_argument("--make-practice-split", nargs="*", metavar="ID",
                       help="challenges whose practice split file to write (default: every one)")
    parser.add_argument("--data-dir", help="dataset folder (default: $GRADER_DATA_DIR)")
    args = parser.parse_args(argv)
    settings = resolve_settings(data_dir=args.data_dir)
    try:
        data_dir = settings.require_data_dir()
        if args.make_practice_split is not None:
            from grader.practice import write_practice_splits

            ids = args.make_practice_split or challenge_ids(settings.project_dir)
            for path, sharing in write_practice_splits(settings, ids):
                print(f"{', '.join(sharing)}: wrote {path}")  # noqa: T201 - an entry point
            return 0
        for cid in args.make_public_split or challenge_ids(settings.project_dir):
            challenge = load_challenge(settings.project_dir, cid)
            if challenge.dataset.public_split is None:
                print(f"{cid}: records no public_split, skipped")  # noqa: T201 - an entry point
                continue
            path = challenge.folder.parent / challenge.dataset.public_split
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(public_split_text(challenge, list_dataset(data_dir, challenge)), encoding="utf-8")
            print(f"{cid}: wrote {path}")  # noqa: T201 - an entry point
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 - an entry point
        return err.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
