"""The splits of a new challenge, chosen so that groups of images stay on one side: the hidden test
set (stratified, seeded, whole groups at a time: :func:`grader.data.grouped_split`), its public and
private halves (:func:`grader.data.public_split_text`, as ``grader data make-split`` writes them)
and the practice split of the public data (grouped too), each recorded as a file under
``challenges/splits/``.

A group is a set of images that must not be split: near-duplicates (the same photo, re-encoded or
resized, or exact copies) always, and, with ``--group REGEX``, the images whose paths give the same
first capture group (``(apple\\d+)_shot\\d+``: five shots of one apple). For train and test folders
the test side is the hidden test set as it is; its images that share a group with a training image
are left out of it (``hidden_exclude``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from grader.author.source import Source
from grader.core import DataError, UsageError
from grader.data import PRACTICE_FRACTION, PRACTICE_MAX_IMAGES, Pair, group_entries, grouped_split

__all__ = ["Splits", "choose_splits", "pattern_groups"]


@dataclass(frozen=True)
class Splits:
    """The chosen splits of a new challenge.

    Attributes:
        hidden: the hidden test set's entries, sorted.
        excluded: for train and test folders, the test entries left out of the hidden test set
            (they share a group with a training image), sorted.
        practice: the practice split's entries (public data, never hidden), sorted.
        groups: groups of two images or more.
        grouped: images in them.
        matched: images the ``--group`` pattern matched (0 without one).
        seed: the seed of the hidden test set's choice; the practice split's is ``seed + 1``.
        fraction: the share of each class hidden (None for train and test folders: the test side).
        practice_fraction: the share of each class's public images in the practice split.
    """

    hidden: tuple[str, ...]
    excluded: tuple[str, ...]
    practice: tuple[str, ...]
    groups: int
    grouped: int
    matched: int
    seed: int
    fraction: float | None
    practice_fraction: float


def pattern_groups(entries: Sequence[str], pattern: str) -> tuple[list[Pair], int]:
    """Tie together the entries whose paths give the same first capture group of ``pattern``
    (``re.search``; the whole match where it has no group).

    Returns:
        Pairs (distance 0) chaining each group's members, and how many entries matched.

    Raises:
        UsageError: ``pattern`` is not a regular expression, or matches no entry.
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise UsageError(f"--group {pattern!r} is not a regular expression: {err}",
                         fix=r"write a Python regular expression whose first group names the object, e.g. "
                         r"'(apple\d+)_shot\d+'") from err
    members: dict[str, list[str]] = {}
    for entry in entries:
        found = regex.search(entry)
        if found is not None:
            key = found.group(1) if regex.groups else found.group(0)
            members.setdefault(key, []).append(entry)
    matched = sum(len(m) for m in members.values())
    if not matched:
        raise UsageError(f"--group {pattern!r} matches none of the {len(entries)} image paths (e.g. "
                         f"{', '.join(list(entries)[:2])})",
                         fix="test it against the paths shown (relative to --data), e.g. with python -c "
                         "\"import re; print(re.search(PATTERN, PATH))\"")
    pairs = [Pair(0, *sorted((m[0], other))) for m in members.values() for other in m[1:]]
    return pairs, matched


def _practice(public: Sequence[tuple[str, str]], groups: Sequence[Sequence[str]], seed: int) -> tuple[list[str], float]:
    chosen = {e for e, _ in public}
    labels = dict(public)
    mine = [kept for g in groups if (kept := [e for e in g if e in chosen])]
    fraction = min(PRACTICE_FRACTION, PRACTICE_MAX_IMAGES / max(1, len(public)))
    return grouped_split(labels, mine, fraction=fraction, seed=seed), fraction


def choose_splits(source: Source, near: Sequence[Pair], *, fraction: float, seed: int,
                  pattern: str | None = None, min_train: int = 1) -> Splits:
    """Choose the hidden test set and the practice split of ``source`` (module docstring).

    Args:
        source: the coach's images and their classes.
        near: near-duplicate pairs (identical files included), :func:`grader.author.findings.near_pairs`.
        fraction: share of each class to hide (class folders, labels CSV).
        seed: the hidden test set's seed; the practice split takes ``seed + 1``.
        pattern: the ``--group`` regular expression, or None.
        min_train: images of each class that must be left to train on.

    Raises:
        UsageError: a bad ``--group`` pattern.
        DataError: groups so large that a class keeps fewer than ``min_train`` images to train on,
            or (train and test folders) a class loses its whole test side to groups shared with
            training images.
    """
    labels = dict(source.entries)
    entries = [e for e, _ in source.entries]
    tied, matched = pattern_groups(entries, pattern) if pattern else ([], 0)
    groups = group_entries(entries, [*near, *tied])
    joined = [g for g in groups if len(g) > 1]
    if source.layout == "train-test-folders":
        excluded = sorted(e for g in groups if any(x not in source.test for x in g) for e in g if e in source.test)
        hidden = sorted(source.test - set(excluded))
        lost = sorted({labels[e] for e in source.test} - {labels[e] for e in hidden})
        if lost:
            raise DataError(f"every test image of {', '.join(lost)} shares a group (near-duplicates"
                            + (" or --group" if pattern else "") + ") with a training image, so the hidden test "
                            "set would have none of it", path=source.folder,
                            fix="move those test images' twins out of train/, or give the class other test images")
        hidden_fraction: float | None = None
    else:
        excluded = []
        hidden = grouped_split(labels, groups, fraction=fraction, seed=seed)
        hidden_fraction = fraction
    taken = set(hidden) | set(excluded)
    left = Counter(c for e, c in source.entries if e not in taken)
    starved = [f"{c} ({left[c]} of {n})" for c, n in sorted(Counter(labels.values()).items())
               if left[c] < min_train + 1]
    if starved:
        big = max(joined, key=len) if joined else []
        raise DataError(f"groups of images too large to split: the classes {', '.join(starved)} keep too few images "
                        f"to train on once whole groups are hidden (the largest group holds {len(big)} images, e.g. "
                        f"{', '.join(big[:3])})", path=source.folder,
                        fix="check --group (it should name one object's shots), or add images to those classes")
    public = [(e, c) for e, c in source.entries if e not in taken]
    practice, practice_fraction = _practice(public, groups, seed + 1)
    return Splits(hidden=tuple(hidden), excluded=tuple(excluded), practice=tuple(practice), groups=len(joined),
                  grouped=sum(map(len, joined)), matched=matched, seed=seed, fraction=hidden_fraction,
                  practice_fraction=practice_fraction)
