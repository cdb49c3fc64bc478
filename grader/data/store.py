"""The cache folder's builds: each built once, atomically, under a lock between threads and
processes; and the record of a hidden test set as the grader holds it (neutral file names, the
labels in memory).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHUFFLE_SEED", "HiddenTestSet", "build_atomically", "cache_lock", "digest"]

SHUFFLE_SEED = 20181212  # fixed: every run names the hidden images the same way


def digest(items: Iterable[str]) -> str:
    """The first 16 hex digits of the SHA-256 of ``items``, each as UTF-8 and a newline: the key
    of a cached build."""
    h = hashlib.sha256()
    for item in items:
        h.update(item.encode() + b"\n")
    return h.hexdigest()[:16]


_LOCK = threading.Lock()


@contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Hold the cache for building: a lock between threads (``--jobs``) and a ``flock`` on
    ``cache_dir/.lock`` between processes (Dask workers on one machine)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(cache_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_atomically(target: Path, build: object) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target``; reuse ``target`` if present.

    One builder at a time (:func:`cache_lock` on the cache folder, ``target``'s grandparent);
    those that waited find it built."""
    if (target / ".complete").is_file():
        target.chmod(0o755)  # built by an older grader as 0700
        return target
    with cache_lock(target.parent.parent):
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
