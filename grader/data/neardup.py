"""Near-duplicates across a split: hidden images whose twin (the same photo, perhaps re-encoded,
resized or recoloured a little) is in the public data, so that its label is public too.

Two images are near-duplicates when their perceptual hashes are within a dataset's calibrated
Hamming distance (``dataset.near_duplicate_distance``, chosen by looking at pairs, see
benchmarks/RESULTS.md; :data:`grader.data.phash.REDUCED_MARGIN` more where a hash was computed on a
reduced decode) or when their pixels are identical (a content hash). The perceptual hash is the
project's (:mod:`grader.data.phash`, the one ``grader new-challenge`` computes too): ImageHash's
``phash`` (64 bits: the signs of the 8 x 8 lowest frequencies of the DCT of a 32 x 32 greyscale
thumbnail against their median; Zauner 2010, "Implementation and Benchmarking of Perceptual Image
Hash Functions") of the image converted to RGB, a JPEG of 1024 px or more on its shorter side
decoded at a reduced size. The content hash is the SHA-256 of the RGB pixels as decoded (so, for
such a JPEG, of its reduced decode) and their size.

Hashes are cached per dataset folder in ``GRADER_CACHE_DIR/neardup/``, each entry with the size
and modification time of the file its pixels come from (an idx file for layout ``idx``): an
unchanged dataset is read from the cache, a changed file is hashed again. An entry cached before
the reduced decode (four fields, no flag) is hashed again where its file is named as a JPEG.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grader.core import Challenge, DataError, DatasetSpec, Settings, check_split_files
from grader.data import idx
from grader.data.phash import decode_for_hash, pair_limit, phashes, thumbnail
from grader.data.store import cache_lock

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "HASH_BITS",
    "ImageHashes",
    "Pair",
    "cross_pairs",
    "dataset_image_hashes",
    "decoded",
    "group_entries",
    "hash_image",
    "load_excluded",
    "pixel_differences",
    "within_pairs",
]

log = logging.getLogger(__name__)

HASH_BITS = 64  # imagehash.phash with hash_size 8
_CACHE_VERSION = 1
_CHUNK = 64  # query hashes compared at once: a (64, N) uint64 array, 25 MB for N = 50,000
_BATCH = 512  # images hashed at once (phash's DCT over a stack of thumbnails)
_JPEG_NAMES = (".jpg", ".jpeg", ".jpe", ".jfif")


@dataclass(frozen=True)
class ImageHashes:
    """The hashes of some images of a dataset, by entry (``<class>/<file>``, ``train/...``).

    Attributes:
        phash: 64-bit perceptual hash of each entry, as an int (ImageHash's hex read base 16).
        content: SHA-256 (hex) of each entry's RGB pixels and size.
        reduced: the entries whose hashes were computed on a reduced decode (a large JPEG,
            :func:`grader.data.phash.decode_for_hash`).
    """

    phash: Mapping[str, int]
    content: Mapping[str, str]
    reduced: frozenset[str] = frozenset()


@dataclass(frozen=True, order=True)
class Pair:
    """Two near-duplicate images: ``a`` (a hidden image, in a cross-split pair), ``b`` (a public
    one) and the Hamming distance of their perceptual hashes (0 to 64; 0 also for identical
    pixels)."""

    distance: int
    a: str
    b: str


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _content(rgb: Image.Image) -> str:
    return hashlib.sha256(f"{rgb.width}x{rgb.height}\n".encode() + rgb.tobytes()).hexdigest()


def hash_image(image: Image.Image) -> tuple[str, str]:
    """The perceptual hash (the project's 64-bit phash, :mod:`grader.data.phash`: ``imagehash.phash``'s
    numbers, hex) and the content hash (SHA-256, hex, of the size and the RGB pixels) of ``image``
    converted to RGB, as decoded (a file is decoded by :func:`grader.data.phash.decode_for_hash`)."""
    rgb = image.convert("RGB")
    (value,) = phashes(np.asarray(thumbnail(rgb), dtype=np.uint8)[None])
    return f"{value:016x}", _content(rgb)


def _hashed(data_dir: Path, ds: DatasetSpec, entries: Sequence[str]) -> Iterator[tuple[str, str, str, bool]]:
    """``(entry, phash hex, content hash, reduced)`` of each of ``entries``, decoded as the hash
    reads it (:func:`grader.data.phash.decode_for_hash`), hashed :data:`_BATCH` at a time.

    Raises:
        OSError, ValueError, SyntaxError: a file is missing or does not decode.
        DataError: for ``idx``, as :func:`grader.data.idx.idx_images`.
    """
    def images() -> Iterator[tuple[str, Image.Image, bool]]:
        if ds.layout == "idx":
            for entry, im in idx.idx_images(data_dir, ds, entries):
                yield entry, im.convert("RGB"), False
            return
        from PIL import Image

        from grader.data.images import register_heif  # here, as PIL: not needed for idx datasets

        register_heif()  # a coach's HEIC photos decode here as in grader new-challenge
        for entry in entries:
            with Image.open(data_dir / ds.source / entry) as im:
                rgb, reduced = decode_for_hash(im)
            yield entry, rgb, reduced

    batch: list[tuple[str, np.ndarray, str, bool]] = []
    for entry, rgb, reduced in images():
        batch.append((entry, np.asarray(thumbnail(rgb), dtype=np.uint8), _content(rgb), reduced))
        if len(batch) == _BATCH:
            yield from _flush(batch)
            batch = []
    yield from _flush(batch)


def _flush(batch: Sequence[tuple[str, np.ndarray, str, bool]]) -> list[tuple[str, str, str, bool]]:
    values = phashes(np.stack([grey for _, grey, _, _ in batch])) if batch else []
    return [(entry, f"{value:016x}", content, reduced)
            for (entry, _, content, reduced), value in zip(batch, values, strict=True)]


def _sources(data_dir: Path, ds: DatasetSpec, entries: Sequence[str]) -> dict[str, str]:
    """The file each entry's pixels come from: the image file, or the idx images file of its side
    (strings: 60,000 ``pathlib`` joins took 2.5 s)."""
    if ds.layout != "idx":
        root = str(data_dir / ds.source)
        return {e: f"{root}/{e}" for e in entries}
    folder = idx.find_idx_folder(data_dir, ds)
    files = {side: str(folder / names[0]) for side, names in idx.IDX_FILES.items()}
    return {e: files[idx.entry_index(e)[0]] for e in entries}


def decoded(data_dir: Path, ds: DatasetSpec, entries: Sequence[str]) -> Iterator[tuple[str, Image.Image]]:
    """Each of ``entries`` of dataset ``ds`` with its decoded image (loaded; for ``idx``, 8-bit
    grayscale from the idx file), in the order given.

    Raises:
        OSError: a file is missing or does not decode (PIL's ``UnidentifiedImageError``).
        DataError: for ``idx``, as :func:`grader.data.idx.idx_images`.
    """
    if ds.layout == "idx":
        yield from idx.idx_images(data_dir, ds, entries)
        return
    from PIL import Image

    from grader.data.images import register_heif  # here, as PIL: not needed for idx datasets

    register_heif()  # a coach's HEIC photos decode here as in grader new-challenge
    for entry in entries:
        with Image.open(data_dir / ds.source / entry) as im:
            im.load()
            yield entry, im


def dataset_image_hashes(settings: Settings, ds: DatasetSpec, entries: Iterable[str]) -> ImageHashes:
    """The perceptual and content hashes of ``entries`` of dataset ``ds`` under the data folder,
    read from the cache where the entry's file is unchanged, else computed and cached.

    Args:
        settings: the data folder and the cache folder.
        ds: the dataset (its source folder, layout and, for ``idx``, where its files are).
        entries: identities as :func:`grader.data.splits.list_dataset` lists them.

    Raises:
        DataError: the data folder is not set, or a file is missing or does not decode.
    """
    data_dir = settings.require_data_dir()
    wanted = sorted(set(entries))
    sources = _sources(data_dir, ds, wanted)
    stamps: dict[str, list[int]] = {}
    try:
        for source in sources.values():
            if source not in stamps:
                stamps[source] = _stamp(source)
    except OSError as err:
        raise DataError(f"cannot read a file of dataset {ds.source!r}: {err}", path=data_dir / ds.source,
                        fix="restore the full dataset") from err
    key = hashlib.sha256(str((data_dir / ds.source).resolve()).encode()).hexdigest()[:12]
    path = settings.cache_dir / "neardup" / f"{ds.source}-{key}.json"
    cached = _read_cache(path)
    # a four-field entry predates the reduced decode: stale where the file may be a large JPEG
    missing = [e for e in wanted if (c := cached.get(e)) is None or c[:2] != stamps[sources[e]]
               or (len(c) < 5 and ds.layout != "idx" and e.lower().endswith(_JPEG_NAMES))]
    if missing:
        log.info("hashing %d images of %s", len(missing), ds.source)
        try:
            for entry, phash, content, reduced in _hashed(data_dir, ds, missing):
                cached[entry] = [*stamps[sources[entry]], phash, content, int(reduced)]
        except (OSError, ValueError, SyntaxError) as err:  # PIL's UnidentifiedImageError is an OSError
            raise DataError(f"an image of dataset {ds.source!r} does not decode: {err}",
                            path=data_dir / ds.source, fix="restore the dataset's files") from err
        _write_cache(settings, path, cached)
    return ImageHashes(phash={e: int(str(cached[e][2]), 16) for e in wanted},
                       content={e: str(cached[e][3]) for e in wanted},
                       reduced=frozenset(e for e in wanted if len(cached[e]) > 4 and cached[e][4]))


def _read_cache(path: Path) -> dict[str, list[int | str]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or raw.get("version") != _CACHE_VERSION or not isinstance(raw.get("entries"), dict):
        return {}
    return raw["entries"]  # type: ignore[no-any-return]


def _write_cache(settings: Settings, path: Path, entries: Mapping[str, list[int | str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(settings.cache_dir):
        merged = {**_read_cache(path), **entries}  # another process may have added others meanwhile
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": _CACHE_VERSION, "method": "grader.data.phash (imagehash.phash of RGB, "
                                   "a JPEG of 1024 px or more decoded reduced); sha256 of RGB pixels as decoded; "
                                   "reduced 0/1", "entries": merged}, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)


def _array(hashes: Mapping[str, int], keys: Sequence[str]) -> np.ndarray:
    return np.fromiter((hashes[k] for k in keys), dtype=np.uint64, count=len(keys))


def cross_pairs(queries: ImageHashes, pool: ImageHashes, *, max_distance: int | None) -> list[Pair]:
    """Every pair of a query image and a pool image that are near-duplicates: perceptual hashes
    within ``max_distance`` bits (:data:`grader.data.phash.REDUCED_MARGIN` more where either hash
    was computed on a reduced decode, :func:`grader.data.phash.pair_limit`: as ``grader
    new-challenge`` groups them), or identical content hashes (distance 0 then).

    Method: every query against every pool hash (XOR, then NumPy's ``bitwise_count``), in
    chunks of 64 queries: about 5e8 comparisons for CIFAR-10's 10,000 x 50,000, seconds.

    Args:
        queries: the hidden images' hashes (``Pair.a``).
        pool: the public images' hashes (``Pair.b``).
        max_distance: the largest Hamming distance that counts, 0 to 64; None: identical
            content only.

    Returns:
        The pairs, sorted by distance, then query, then pool entry; an entry in both sets is
        paired with itself at distance 0.
    """
    qkeys, pkeys = sorted(queries.phash), sorted(pool.phash)
    hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if qkeys and pkeys and max_distance is not None:
        parr = _array(pool.phash, pkeys)
        qarr = _array(queries.phash, qkeys)
        qred = np.fromiter((k in queries.reduced for k in qkeys), dtype=bool, count=len(qkeys))
        pred = np.fromiter((k in pool.reduced for k in pkeys), dtype=bool, count=len(pkeys))
        limit = pair_limit(max_distance, reduced=bool(qred.any() or pred.any()))
        for start in range(0, len(qkeys), _CHUNK):
            dist = np.bitwise_count(qarr[start:start + _CHUNK, None] ^ parr[None, :])
            close = dist <= limit
            if not close.any():  # the common case: a cheap test before nonzero's two passes
                continue
            i, j = np.nonzero(close)
            d = dist[i, j]
            keep = (d <= max_distance) | qred[i + start] | pred[j]  # the margin for reduced hashes only
            hits.append((d[keep], i[keep] + start, j[keep]))
    found: list[Pair] = []
    if hits:
        d, i, j = (np.concatenate(parts) for parts in zip(*hits, strict=True))
        order = np.lexsort((j, i, d))  # by distance, then query, then pool entry (the keys are sorted)
        found = [Pair(int(dd), qkeys[ii], pkeys[jj]) for dd, ii, jj in
                 zip(d[order].tolist(), i[order].tolist(), j[order].tolist(), strict=True)]
    if max_distance is None:  # identical pixels have identical pHashes: found above otherwise
        by_content: dict[str, list[str]] = {}
        for entry in pkeys:
            by_content.setdefault(pool.content[entry], []).append(entry)
        found = sorted(Pair(0, entry, twin) for entry in qkeys for twin in by_content.get(queries.content[entry], ()))
    return found


def within_pairs(hashes: ImageHashes, *, max_distance: int | None) -> list[Pair]:
    """The near-duplicate pairs within one set of images, each once (``a < b``), as
    :func:`cross_pairs` finds them."""
    return [p for p in cross_pairs(hashes, hashes, max_distance=max_distance) if p.a < p.b]


def group_entries(entries: Iterable[str], pairs: Iterable[Pair]) -> list[list[str]]:
    """Group ``entries`` so that the two images of every pair are in one group (the connected
    components of the near-duplicate graph; union-find with path halving, Tarjan 1975).

    Returns:
        The groups, each sorted, ordered by their first entry; an entry without a pair is a group
        of one. Pairs naming entries outside ``entries`` are ignored.
    """
    parent = {e: e for e in entries}

    def root(e: str) -> str:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for pair in pairs:
        if pair.a in parent and pair.b in parent:
            ra, rb = root(pair.a), root(pair.b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for e in sorted(parent):
        groups.setdefault(root(e), []).append(e)
    return sorted(groups.values())


def load_excluded(challenge: Challenge) -> frozenset[str]:
    """The test images left out of ``challenge``'s hidden test set (``dataset.hidden_exclude``:
    near-duplicates of public images), empty where it names no file.

    Raises:
        ChallengeError: the file is not made yet (:func:`grader.core.check_split_files`).
        DataError: the file cannot be read, lists an entry twice or one outside ``test/``.
    """
    name = challenge.dataset.hidden_exclude
    if name is None:
        return frozenset()
    path = challenge.folder.parent / name
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        if not path.exists():
            check_split_files(challenge)  # raises: not made yet, and the command that makes it
        raise DataError(f"cannot read the list of test images left out of the hidden test set: {err}", path=path,
                        fix=f"regenerate it with grader data make-split {challenge.id}") from err
    entries = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    twice = sorted(e for e, n in Counter(entries).items() if n > 1)
    stray = sorted(e for e in entries if not e.startswith("test/") or e.count("/") != 2)
    if twice or stray:
        raise DataError(f"the list of left-out test images names {len(twice)} entries twice and {len(stray)} "
                        f"outside test/<class>/, e.g. {', '.join((twice + stray)[:5])}", path=path,
                        fix=f"regenerate it with grader data make-split {challenge.id}")
    return frozenset(entries)


def pixel_differences(settings: Settings, ds: DatasetSpec, pairs: Sequence[Pair]) -> list[float]:
    """The mean absolute difference of each pair's 8-bit greyscale pixels (0 to 255), inf where
    the two images differ in size.

    Raises:
        DataError: the data folder is not set, or an image is missing or does not decode.
    """
    data_dir = settings.require_data_dir()
    if ds.layout == "idx":
        folder = idx.find_idx_folder(data_dir, ds)
        train, test = (idx.load_side(folder, side, ds).images for side in ("train", "test"))
        every = np.concatenate([train, test])  # test image i at len(train) + i

        rows: dict[str, int] = {}
        for entry in {e for p in pairs for e in (p.a, p.b)}:
            side, i = idx.entry_index(entry)
            rows[entry] = i if side == "train" else len(train) + i
        rows_a = np.fromiter((rows[p.a] for p in pairs), dtype=np.int64, count=len(pairs))
        rows_b = np.fromiter((rows[p.b] for p in pairs), dtype=np.int64, count=len(pairs))
        out: list[float] = []
        for start in range(0, len(pairs), 8192):
            a = every[rows_a[start:start + 8192]].astype(np.int16)
            b = every[rows_b[start:start + 8192]].astype(np.int16)
            out.extend(np.abs(a - b).mean(axis=(1, 2)).tolist())
        return out
    entries = sorted({e for p in pairs for e in (p.a, p.b)})
    try:
        grey = {e: np.asarray(im.convert("L"), dtype=np.int16) for e, im in decoded(data_dir, ds, entries)}
    except OSError as err:
        raise DataError(f"an image of dataset {ds.source!r} does not decode: {err}", path=data_dir / ds.source,
                        fix="restore the dataset's files") from err
    return [float(np.abs(grey[p.a] - grey[p.b]).mean()) if grey[p.a].shape == grey[p.b].shape else float("inf")
            for p in pairs]
