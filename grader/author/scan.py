"""Every image of a coach's folder read once: its size, format, the SHA-256 of its bytes (exact
duplicates) and its perceptual hash (near-duplicates), across a pool of processes.

The perceptual hash is the project's, computed by the one function ``grader validate`` and
``grader data make-split`` use too (:mod:`grader.data.phash`: ImageHash's 64-bit ``phash`` of the
image converted to RGB, a large JPEG decoded at a reduced size), for a batch at once
(:func:`grader.data.phashes`): a pair of images grouped here is a pair there, so the splits chosen
here pass ``grader validate``. Grouping allows :data:`grader.data.REDUCED_MARGIN` more bits for a
reduced hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.data import decode_for_hash, phashes, thumbnail

__all__ = ["ImageFacts", "scan_images"]

_CHUNK = 200  # images per task of the pool: progress every few tenths of a second
_SERIAL_BELOW = 400  # fewer images than this are read in this process (a pool costs about a second)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImageFacts:
    """What one image file holds.

    Attributes:
        entry: its path relative to the scanned folder.
        size_bytes: the file's size in bytes.
        sha256: SHA-256 of the file's bytes (hex).
        width: width in pixels (the full image's, read from its header); 0 if unreadable.
        height: height in pixels; 0 if unreadable.
        format: Pillow's name for the format (``JPEG``, ``PNG``, ``TIFF``); empty if unreadable.
        phash: the 64-bit perceptual hash, or None if unreadable.
        reduced: the hash was computed on a reduced decode (:data:`grader.data.DRAFT_SIDE`).
        error: why the file does not decode, or None.
    """

    entry: str
    size_bytes: int
    sha256: str
    width: int = 0
    height: int = 0
    format: str = ""
    phash: int | None = None
    reduced: bool = False
    error: str | None = None


def _grey(root: str, entry: str) -> tuple[ImageFacts, Any]:
    """The file's facts, and its 32 x 32 greyscale thumbnail as phash makes it (uint8), or None."""
    from PIL import Image

    try:
        data = Path(root, entry).read_bytes()
    except OSError as err:
        return ImageFacts(entry=entry, size_bytes=0, sha256="", error=f"cannot read: {err.strerror or err}"), None
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            fmt = im.format or ""
            rgb, reduced = decode_for_hash(im)  # the project's one way (grader.data.phash)
            grey = thumbnail(rgb)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:  # UnidentifiedImageError too
        return ImageFacts(entry=entry, size_bytes=len(data), sha256=digest,
                          error=f"{type(err).__name__}: {err}".replace(f" {root}/", " ")), None
    facts = ImageFacts(entry=entry, size_bytes=len(data), sha256=digest, width=width, height=height, format=fmt,
                       reduced=reduced)
    return facts, grey


def _read_chunk(root: str, entries: Sequence[str]) -> list[ImageFacts]:
    """Read ``entries`` under ``root`` (a pool task; module-level so that it pickles)."""
    import numpy as np

    from grader.data import register_heif

    register_heif()
    read = [_grey(root, e) for e in entries]
    good = [i for i, (_, grey) in enumerate(read) if grey is not None]
    hashes = phashes(np.stack([np.asarray(read[i][1], dtype=np.uint8) for i in good])) if good else []
    out = [facts for facts, _ in read]
    for i, value in zip(good, hashes, strict=True):
        out[i] = dataclasses.replace(out[i], phash=value)
    return out


def _workers(requested: int | None) -> int:
    if requested is not None:
        return max(1, requested)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def scan_images(root: Path, entries: Sequence[str], *, workers: int | None = None,
                on_progress: Progress | None = None) -> list[ImageFacts]:
    """Read every image of ``entries`` under ``root`` (see the module docstring).

    Args:
        root: the folder the entries are relative to.
        entries: image paths relative to ``root``.
        workers: processes to read with (default: the cores this process may use); fewer than
            400 images are read in this process.
        on_progress: called with ``(images read, images in all)`` after each batch (at most 200).

    Returns:
        One :class:`ImageFacts` per entry, in the order of ``entries``. A file that cannot be
        read or decoded is a result with its ``error``, never an exception.
    """
    total = len(entries)
    count = _workers(workers)
    size = max(1, min(_CHUNK, -(-total // (8 * count))))  # eight tasks a worker at least: the last ones even out
    chunks = [list(entries[i:i + size]) for i in range(0, total, size)]
    done = 0
    found: dict[int, list[ImageFacts]] = {}
    if count == 1 or total < _SERIAL_BELOW:
        for i, chunk in enumerate(chunks):
            found[i] = _read_chunk(str(root), chunk)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
    else:
        # forkserver: workers start from a clean process, not a copy of this one and its threads
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            futures = {pool.submit(_read_chunk, str(root), chunk): i for i, chunk in enumerate(chunks)}
            for future in as_completed(futures):
                found[futures[future]] = future.result()
                done += len(found[futures[future]])
                if on_progress is not None:
                    on_progress(done, total)
    if on_progress is not None and not total:
        on_progress(0, 0)
    return [facts for i in range(len(chunks)) for facts in found[i]]
