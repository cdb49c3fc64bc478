"""What ``grader new-challenge`` finds in a coach's images before it writes anything: unreadable and
too-small images, exact duplicates (the same bytes) and near-duplicates (perceptual hashes within
the dataset's distance) across classes, classes too small for the split, and the dataset's facts
for the brief (counts per class, image sizes, file types).

Unreadable and too-small images and too-small classes stop the command (the challenge reads the
folder as it is, so they would reach the hidden test set); duplicates are listed, and kept on one
side of every split (:mod:`grader.author.splits`).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grader.author.scan import ImageFacts
from grader.data import Pair, pair_limit

__all__ = ["MIN_HIDDEN", "MIN_TRAIN", "Findings", "examine", "near_pairs", "needed_per_class"]

MIN_HIDDEN = 2  # images of each class in the hidden test set: one for each of its public and private parts
MIN_TRAIN = 3  # images of each class left to train on, after the hidden test set and the practice split
_ROWS = 128  # hashes compared at once against the rest: a (128, N) block, 60 MB for N = 60,000


def needed_per_class(fraction: float) -> int:
    """The fewest images a class needs for a hidden test set of ``fraction`` of it (at least
    :data:`MIN_HIDDEN`, as :func:`grader.data.splitmake.grouped_split` rounds it) with one practice
    image and :data:`MIN_TRAIN` to train on left: 8 at 0.2.

    Raises:
        ValueError: ``fraction`` not strictly between 0 and 1.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the hidden fraction must be between 0 and 1, not {fraction}")
    n = MIN_HIDDEN
    while max(1, round(n * fraction)) < MIN_HIDDEN or n - max(1, round(n * fraction)) - 1 < MIN_TRAIN:
        n += 1
    return n


def near_pairs(facts: Sequence[ImageFacts], *, max_distance: int) -> list[Pair]:
    """Every pair of images whose perceptual hashes are within ``max_distance`` bits, or within
    ``max_distance`` plus :data:`grader.data.REDUCED_MARGIN` where either was hashed on a reduced
    decode (:func:`grader.data.pair_limit`, as ``grader validate`` counts them).

    Method: each hash against the hashes after it (XOR, NumPy's ``bitwise_count``), 128 rows at a
    time into preallocated buffers: 1.8e9 comparisons for 60,000 images, about 7 s on one core.

    Returns:
        ``Pair(distance, a, b)`` with ``a < b``, sorted.
    """
    known = [f for f in facts if f.phash is not None]
    n = len(known)
    if n < 2:
        return []
    hashes = np.fromiter((f.phash for f in known), dtype=np.uint64, count=n)
    reduced = np.fromiter((f.reduced for f in known), dtype=bool, count=n)
    limit = pair_limit(max_distance, reduced=bool(reduced.any()))
    rows = min(_ROWS, n)
    xor = np.empty((rows, n), dtype=np.uint64)
    bits = np.empty((rows, n), dtype=np.uint8)
    close = np.empty((rows, n), dtype=bool)
    found: list[Pair] = []
    for start in range(0, n, rows):
        q = hashes[start:start + rows]
        m, width = len(q), n - start
        np.bitwise_xor(q[:, None], hashes[None, start:], out=xor[:m, :width])
        np.bitwise_count(xor[:m, :width], out=bits[:m, :width])
        np.less_equal(bits[:m, :width], limit, out=close[:m, :width])
        if not close[:m, :width].any():
            continue
        i, j = np.nonzero(close[:m, :width])
        keep = j > i  # the block's own diagonal and below: each pair once
        i, j = i[keep] + start, j[keep] + start
        d = bits[i - start, j - start]
        ok = (d <= max_distance) | reduced[i] | reduced[j]
        for ii, jj, dd in zip(i[ok].tolist(), j[ok].tolist(), d[ok].tolist(), strict=True):
            a, b = sorted((known[ii].entry, known[jj].entry))
            found.append(Pair(int(dd), a, b))
    return sorted(found)


@dataclass(frozen=True)
class Findings:
    """The outcome of checking every image of a coach's folder.

    Attributes:
        counts: images per class (readable or not).
        unreadable: images that do not decode.
        too_small: images whose shorter side is below ``min_side`` pixels.
        exact: groups of two or more files with the same bytes (entries, sorted).
        near: near-duplicate pairs (distance within the dataset's), identical files included.
        labels: the class of every entry.
        short: ``(class, images, needed)`` for each class too small for the split.
        min_side: the smallest side allowed, in pixels.
        sizes: ``(width, height)`` of every readable image, in pixels.
        formats: images per file format.
    """

    counts: Mapping[str, int]
    unreadable: tuple[ImageFacts, ...]
    too_small: tuple[ImageFacts, ...]
    exact: tuple[tuple[str, ...], ...]
    near: tuple[Pair, ...]
    labels: Mapping[str, str]
    short: tuple[tuple[str, int, int], ...]
    min_side: int
    sizes: tuple[tuple[int, int], ...]
    formats: Mapping[str, int]

    @property
    def exact_across(self) -> list[tuple[str, ...]]:
        """The groups of identical files labelled with two classes or more."""
        return [g for g in self.exact if len({self.labels[e] for e in g}) > 1]

    @property
    def near_across(self) -> list[Pair]:
        """The near-duplicate pairs of two classes whose files are not identical."""
        same = {e: i for i, g in enumerate(self.exact) for e in g}
        return [p for p in self.near if self.labels[p.a] != self.labels[p.b]
                and (p.a not in same or same.get(p.b) != same[p.a])]

    def refusals(self) -> list[str]:
        """Why the command stops, one line each (every path named, up to 20 per kind); empty when
        the images can make a challenge."""
        said: list[str] = []
        if self.unreadable:
            said.append(f"{len(self.unreadable)} images do not decode: " + "; ".join(
                f"{f.entry} ({f.error})" for f in self.unreadable[:20]))
        if self.too_small:
            said.append(f"{len(self.too_small)} images are smaller than {self.min_side} px on a side: " + "; ".join(
                f"{f.entry} ({f.width}x{f.height})" for f in self.too_small[:20]))
        if self.short:
            said.append("classes too small for the split: " + "; ".join(
                f"{c} has {n} images, needs {k}" for c, n, k in self.short))
        return said

    def size_range(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
        """The smallest, median and largest ``(width, height)``, each taken by area, or None."""
        if not self.sizes:
            return None
        ordered = sorted(self.sizes, key=lambda s: (s[0] * s[1], s))
        return ordered[0], ordered[(len(ordered) - 1) // 2], ordered[-1]

    def median_side(self) -> float:
        """The median of the images' shorter sides, in pixels (0 without readable images)."""
        return float(statistics.median(min(s) for s in self.sizes)) if self.sizes else 0.0


def examine(facts: Sequence[ImageFacts], labels: Mapping[str, str], *, min_side: int, max_distance: int,
            needed: Mapping[str, int]) -> Findings:
    """Check the scanned images of a folder.

    Args:
        facts: every image, as :func:`grader.author.scan.scan_images` read it.
        labels: the class of every entry.
        min_side: the smallest width or height allowed, in pixels.
        max_distance: the near-duplicate distance (bits of the 64-bit perceptual hash).
        needed: the images each class needs (:func:`needed_per_class`; per class, a train/test
            folder's test side counted apart by the caller).

    Returns:
        The findings; :meth:`Findings.refusals` says whether to stop.
    """
    counts = Counter(labels[f.entry] for f in facts)
    readable = [f for f in facts if f.error is None]
    by_bytes: dict[str, list[str]] = {}
    for f in facts:
        if f.sha256:
            by_bytes.setdefault(f.sha256, []).append(f.entry)
    exact = tuple(sorted(tuple(sorted(g)) for g in by_bytes.values() if len(g) > 1))
    short = tuple((c, counts[c], needed[c]) for c in sorted(counts) if counts[c] < needed[c])
    return Findings(
        counts=dict(sorted(counts.items())),
        unreadable=tuple(f for f in facts if f.error is not None),
        too_small=tuple(f for f in readable if min(f.width, f.height) < min_side),
        exact=exact,
        near=tuple(near_pairs(readable, max_distance=max_distance)),
        labels=labels,
        short=short,
        min_side=min_side,
        sizes=tuple((f.width, f.height) for f in readable),
        formats=dict(Counter(f.format for f in readable).most_common()),
    )
