"""Hidden test sets free of near-duplicates of the public data (``grader data make-split``), and
the check that they stay so (``grader validate``).

A recorded hidden split (layout ``class-folders``, gear) is chosen over groups of near-duplicates
(:func:`grader.data.neardup.group_entries`), so that a group is wholly hidden or wholly public. A given
test side (``train-test-folders``, ``idx``: CIFAR-10, Fashion-MNIST) leaves out the test images
with a near-duplicate among the training images, recorded as data in ``dataset.hidden_exclude``.
Either way the public half of the hidden test set and the practice split are written again to
match.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.core import (
    Challenge,
    ChallengeError,
    DataError,
    DatasetSpec,
    Settings,
    challenge_ids,
    load_challenge,
    write_atomic,
)
from grader.data import idx
from grader.data.labelscsv import csv_labels
from grader.data.neardup import (
    ImageHashes,
    Pair,
    cross_pairs,
    dataset_image_hashes,
    group_entries,
    load_excluded,
    pixel_differences,
)
from grader.data.practice import write_practice_splits
from grader.data.splits import Listing, added_public, list_dataset, public_split_text, scan_source

__all__ = [
    "HIDDEN_FRACTION",
    "HIDDEN_SEED",
    "CrossSplit",
    "cross_split",
    "distance_of",
    "grouped_split",
    "make_split",
]

HIDDEN_FRACTION = 0.2  # of each class, as the first recorded gear split
HIDDEN_SEED = 2018  # fixed: regenerating gives the same file


def distance_of(challenge: Challenge) -> int | None:
    """The perceptual-hash distance of ``challenge``'s dataset, or None for identical images only
    (``near_duplicate_distance`` ``"identical"`` or unset)."""
    value = challenge.dataset.near_duplicate_distance
    return value if isinstance(value, int) else None


def _describe(challenge: Challenge) -> str:
    d, pixels = distance_of(challenge), challenge.dataset.near_duplicate_pixels
    if d is None:
        return "with identical pixels"
    return f"within pHash distance {d}" + (f" and mean pixel difference {pixels:g}" if pixels is not None else "")


def _pairs(settings: Settings, challenge: Challenge, queries: ImageHashes, pool: ImageHashes) -> list[Pair]:
    """The near-duplicate pairs of ``queries`` and ``pool`` as ``challenge``'s dataset defines
    them: identical pixels, or pHash within the distance (and, where set, greyscale pixels within
    ``near_duplicate_pixels`` on average)."""
    found = cross_pairs(queries, pool, max_distance=distance_of(challenge))
    limit = challenge.dataset.near_duplicate_pixels
    if limit is None or not found:
        return found
    diffs = pixel_differences(settings, challenge.dataset, found)
    return [p for p, d in zip(found, diffs, strict=True)
            if d <= limit or queries.content[p.a] == pool.content[p.b]]


def _subset(hashes: ImageHashes, keep: set[str]) -> ImageHashes:
    return ImageHashes(phash={e: h for e, h in hashes.phash.items() if e in keep},
                       content={e: h for e, h in hashes.content.items() if e in keep},
                       reduced=hashes.reduced & keep)


@dataclass(frozen=True)
class CrossSplit:
    """The near-duplicates of one challenge's hidden test set in its public data.

    Attributes:
        pairs: each hidden image (``a``) with a public near-duplicate (``b``).
        hidden: images in the hidden test set.
        public: images in the public data.
        seconds: wall time of the check, hashes from the cache where unchanged.
    """

    pairs: tuple[Pair, ...]
    hidden: int
    public: int
    seconds: float

    @property
    def images(self) -> list[str]:
        """The hidden images with a public near-duplicate, sorted."""
        return sorted({p.a for p in self.pairs})


def cross_split(settings: Settings, challenge: Challenge, listing: Listing) -> CrossSplit:
    """Find every hidden image of ``listing`` within ``challenge``'s near-duplicate distance of a
    public image (or with identical pixels).

    Raises:
        DataError: the data folder is not set, or an image is missing or does not decode.
    """
    start = time.perf_counter()
    hidden = {e for e, _ in listing.hidden}
    hashes = dataset_image_hashes(settings, challenge.dataset, [e for e, _ in listing.public + listing.hidden])
    public = set(hashes.phash) - hidden
    ds = challenge.dataset
    # the answer depends only on the images' hashes (pixels included, reduced or not), the sides and
    # the test: cached
    key = _digest([repr((ds.near_duplicate_distance, ds.near_duplicate_pixels)),
                   *(f"{e} {hashes.phash[e]:016x} {hashes.content[e]} {e in hidden}"
                     + (" reduced" if e in hashes.reduced else "") for e in sorted(hashes.phash))])
    path = settings.cache_dir / "neardup" / f"cross-{ds.source}-{key[:24]}.json"
    try:
        pairs = [Pair(int(d), str(a), str(b)) for d, a, b in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        pairs = _pairs(settings, challenge, _subset(hashes, hidden), _subset(hashes, public))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([[p.distance, p.a, p.b] for p in pairs]), encoding="utf-8")
        os.replace(tmp, path)
    return CrossSplit(pairs=tuple(pairs), hidden=len(hidden), public=len(public),
                      seconds=time.perf_counter() - start)


def grouped_split(labels: Mapping[str, str], groups: Sequence[Sequence[str]], *, fraction: float,
                  seed: int) -> list[str]:
    """Choose about ``fraction`` of each class as the hidden test set, whole groups at a time.

    Method: each group belongs to the class most of its images have (ties: the first such class
    in sorted order). Per class, in sorted order, its groups (each sorted, in sorted order) are
    shuffled by one ``random.Random(seed)`` and each is taken if it fits: if, for every class it
    holds, the images already taken plus its own stay within that class's target,
    ``max(1, round(n * fraction))`` of the class's ``n`` images. A class none of whose groups fit
    gets its smallest group. So a group is wholly hidden or wholly public, and a class's hidden
    count is at most its target, short of it where its groups' sizes do not add up.

    Args:
        labels: the class of every entry.
        groups: a partition of the entries (:func:`grader.data.neardup.group_entries`).
        fraction: share of each class to hide, 0 to 1.
        seed: the shuffle's seed.

    Returns:
        The hidden entries, sorted.
    """
    rng = random.Random(seed)
    owned: dict[str, list[list[str]]] = {}
    for group in sorted(sorted(g) for g in groups):
        counts = Counter(labels[e] for e in group)
        top = max(counts.values())
        owned.setdefault(min(c for c, n in counts.items() if n == top), []).append(group)
    target = {c: max(1, round(n * fraction)) for c, n in Counter(labels.values()).items()}
    taken: Counter[str] = Counter()
    chosen: list[str] = []
    for cls in sorted(owned):
        mine = owned[cls]
        rng.shuffle(mine)
        for group in mine:
            counts = Counter(labels[e] for e in group)
            if all(taken[c] + n <= target[c] for c, n in counts.items()):
                chosen.extend(group)
                taken.update(counts)
        if not taken[cls]:
            smallest = min(mine, key=lambda g: (len(g), g))
            chosen.extend(smallest)
            taken.update(labels[e] for e in smallest)
    return sorted(chosen)


def _sharing(settings: Settings, challenge: Challenge) -> list[Challenge]:
    """The challenges on the same hidden test set as ``challenge`` (same source, layout and
    split file), ``challenge`` among them."""
    ds = challenge.dataset
    every = [load_challenge(settings.project_dir, cid) for cid in challenge_ids(settings.project_dir)]
    same = [c for c in every if (c.dataset.source, c.dataset.layout) == (ds.source, ds.layout)
            and (c.dataset.hidden_split, c.dataset.hidden_exclude) == (ds.hidden_split, ds.hidden_exclude)]
    distances = {(c.dataset.near_duplicate_distance, c.dataset.near_duplicate_pixels) for c in same}
    if len(distances) > 1:
        raise ChallengeError("challenges on one hidden test set differ in near_duplicate_distance: "
                             + ", ".join(f"{c.id} {c.dataset.near_duplicate_distance}" for c in same),
                             fix="give them the one calibrated distance")
    return same


def _union(sharing: Sequence[Challenge]) -> Challenge:
    """The first challenge with every class of ``sharing`` (in the first one's order, the others'
    after it: an idx dataset names its labels by position) and nothing left out."""
    base = sharing[0]
    classes = list(dict.fromkeys(cls for c in sharing for cls in c.dataset.classes))
    ds = base.dataset.model_copy(update={"classes": classes, "hidden_exclude": None})
    return base.model_copy(update={"dataset": ds})


def _labels(data_dir: Path, ds: DatasetSpec) -> dict[str, str]:
    """The class of every entry of a ``class-folders`` or ``labels-csv`` dataset."""
    if ds.layout == "labels-csv":
        return csv_labels(data_dir, ds)
    return {f"{c}/{n}": c for c, names in scan_source(data_dir, ds).items() for n in names}


def _entry_form(ds: DatasetSpec) -> str:
    return f"{ds.images}/<file> (labels in {ds.labels})" if ds.layout == "labels-csv" else "<class>/<file>"


def _header(lines: Sequence[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def make_split(settings: Settings, challenge_id: str) -> list[str]:
    """Write the near-duplicate-free hidden test set of ``challenge_id`` and of every challenge
    sharing it, then their public splits and practice splits.

    ``class-folders``: the ``hidden_split`` file, :func:`grouped_split` (:data:`HIDDEN_FRACTION`,
    :data:`HIDDEN_SEED`) over the groups of near-duplicates of the whole dataset. Else: the
    ``hidden_exclude`` file, the test images with a near-duplicate among the training images.

    Returns:
        A line per file written, saying what it holds.

    Raises:
        ChallengeError: the challenges sharing the test set disagree on the distance, or a
            ``train-test-folders``/``idx`` challenge names no ``hidden_exclude`` file.
        DataError: the data folder is not set or incomplete.
    """
    challenge = load_challenge(settings.project_dir, challenge_id)
    sharing = _sharing(settings, challenge)
    union = _union(sharing)
    ds = union.dataset
    data_dir = settings.require_data_dir()
    said: list[str] = []
    if ds.layout in ("class-folders", "labels-csv"):
        labels = _labels(data_dir, ds)
        hashes = dataset_image_hashes(settings, ds, labels)
        groups = group_entries(labels, _pairs(settings, union, hashes, hashes))
        hidden = grouped_split(labels, groups, fraction=HIDDEN_FRACTION, seed=HIDDEN_SEED)
        joined = [g for g in groups if len(g) > 1]
        path = challenge.folder.parent / str(ds.hidden_split)
        write_atomic(path, _header([
            f"Hidden test set of the {ds.source} dataset: {_entry_form(ds)} under GRADER_DATA_DIR/{ds.source}, "
            "one a line.",
            f"Made by `grader data make-split ID` (ID: {' or '.join(c.id for c in sharing)}; "
            f"grader.data.splitmake.grouped_split: {HIDDEN_FRACTION:g} of each class, seed {HIDDEN_SEED},",
            f"over groups of near-duplicates {_describe(challenge)}: {len(joined)} groups of 2 or more hold "
            f"{sum(map(len, joined))} images,",
            "each wholly hidden or wholly public). Regenerating on the same data gives this same file.",
        ]) + "\n".join(hidden) + "\n")
        said.append(f"{path}: {len(hidden)} of {len(labels)} images hidden; {len(joined)} groups of near-duplicates "
                    f"({sum(map(len, joined))} images) kept on one side")
    else:
        if challenge.dataset.hidden_exclude is None:
            raise ChallengeError(f"{challenge_id} names no file for the test images it leaves out",
                                 path=challenge.folder / "challenge.toml",
                                 fix=f'add hidden_exclude = "splits/{ds.source}-excluded.txt" under [dataset]')
        listing = list_dataset(data_dir, union)
        found = cross_split(settings, union, listing)
        left = found.images
        path = challenge.folder.parent / challenge.dataset.hidden_exclude
        write_atomic(path, _header([
            f"Test images of the {ds.source} dataset left out of the hidden test set: each has a near-duplicate "
            f"among the training images",
            f"({_describe(challenge)}; benchmarks/RESULTS.md says how it was chosen). {len(left)} of the "
            f"{found.hidden} test images.",
            f"Made by `grader data make-split ID` (ID: {' or '.join(c.id for c in sharing)}; "
            "grader.data.splitmake.make_split); regenerating on the same data gives this same file.",
        ]) + "".join(f"{e}\n" for e in left))
        said.append(f"{path}: {len(left)} of {found.hidden} test images left out")
    said += _write_public_splits(settings, sharing)
    said += [f"{p}: the practice split of {', '.join(ids)}" for p, ids in
             write_practice_splits(settings, [c.id for c in sharing if c.dataset.practice_split])]
    return said


def _write_public_splits(settings: Settings, sharing: Sequence[Challenge]) -> list[str]:
    data_dir = settings.require_data_dir()
    said: list[str] = []
    done: set[str] = set()
    for cid in [c.id for c in sharing if c.dataset.public_split]:
        fresh = load_challenge(settings.project_dir, cid)  # the split just written
        path = fresh.folder.parent / str(fresh.dataset.public_split)
        listing = list_dataset(data_dir, fresh)
        write_atomic(path, public_split_text(fresh, listing))
        if str(path) not in done:
            said.append(f"{path}: the public half of the {len(listing.hidden)} hidden images of {cid}")
        done.add(str(path))
    return said


def cross_split_problem(challenge: Challenge, found: CrossSplit) -> DataError | None:
    """The error ``grader validate`` raises for near-duplicates across ``challenge``'s split, or
    None when there are none. The message names the hidden files (the first ten) and their
    public twins, and the command that fixes it."""
    if not found.pairs:
        return None
    shown = "; ".join(f"{p.a} ~ {p.b} (distance {p.distance})" for p in found.pairs[:10])
    return DataError(f"{challenge.id}: {len(found.images)} hidden images {_describe(challenge)} of a public image: "
                     f"{shown}", path=challenge.folder / "challenge.toml",
                     fix=f"grader data make-split {challenge.id} (then re-verify the references)")


def cross_split_line(challenge: Challenge, found: CrossSplit) -> str:
    """What ``grader validate`` says of a clean split: ``0 hidden images within pHash distance 4 of
    a public image (2.1 s)``."""
    note = "" if challenge.dataset.near_duplicate_distance is not None else ", near_duplicate_distance not set"
    return f"{len(found.images)} hidden images {_describe(challenge)} of a public image ({found.seconds:.1f} s{note})"



def excluded_problems(settings: Settings, challenge: Challenge) -> list[str]:
    """What is wrong with ``challenge``'s list of left-out test images against the data folder:
    entries of its classes that are not test images of the dataset. Entries of classes it does
    not have are ignored (a shared list).

    Raises:
        DataError: the list cannot be read or is malformed (:func:`grader.data.neardup.load_excluded`).
    """
    ds = challenge.dataset
    mine = sorted(e for e in load_excluded(challenge) if e.split("/")[1] in set(ds.classes))
    data_dir = settings.require_data_dir()
    if ds.layout == "idx":
        labels = idx.load_side(idx.find_idx_folder(data_dir, ds), "test", ds).labels
        known = {e for e, _ in idx.idx_entries("test", labels, ds.classes)}
        stray = [e for e in mine if e not in known]
    else:
        stray = [e for e in mine if not (data_dir / ds.source / e).is_file()]
    return [f"{len(stray)} left-out entries are not test images of {ds.source}, e.g. {', '.join(stray[:3])}"] \
        if stray else []


def validate_split(settings: Settings, challenge: Challenge, listing: Listing,
                   memo: dict[tuple[object, ...], CrossSplit]) -> str:
    """``grader validate``'s near-duplicate check of one challenge: its list of left-out test
    images sound, and no hidden image a near-duplicate of a public one. Challenges on the same
    listing and distance share one check through ``memo``.

    Returns:
        The figure validate prints (:func:`cross_split_line`).

    Raises:
        DataError: a problem with the left-out list, or near-duplicates across the split
            (:func:`cross_split_problem`, naming the files and the command that fixes it).
    """
    problems = excluded_problems(settings, challenge) if challenge.dataset.hidden_exclude else []
    if problems:
        raise DataError(f"{challenge.id}: " + "; ".join(problems),
                        path=challenge.folder.parent / str(challenge.dataset.hidden_exclude),
                        fix=f"regenerate it with grader data make-split {challenge.id}")
    ds = challenge.dataset
    key = (ds.source, ds.layout, ds.near_duplicate_distance, ds.near_duplicate_pixels,
           _digest(e for e, _ in listing.hidden), _digest(e for e, _ in listing.public))
    shared = key in memo
    if not shared:
        memo[key] = cross_split(settings, challenge, listing)
    found = memo[key]
    error = cross_split_problem(challenge, found)
    if error is not None:
        raise error
    line = cross_split_line(challenge, found)
    line = line.replace(f"({found.seconds:.1f} s", "(the same data as above") if shared else line
    added = challenge.dataset.added_class
    if added is None:
        return line
    twins = _added_pairs(settings, challenge)
    if twins:
        raise DataError(f"{challenge.id}: {len({p.a for p in twins})} hidden photos of the added class "
                        f"{_describe(challenge)} of its public ones: "
                        + "; ".join(f"{p.a} ~ {p.b} (distance {p.distance})" for p in twins[:10]),
                        path=challenge.folder / "challenge.toml",
                        fix="move those photos to dataset.added_class.hidden or .reserved together with their twins")
    return f"{line}; 0 of the added class's {len(added.hidden)} hidden photos likewise"


def _added_pairs(settings: Settings, challenge: Challenge) -> list[Pair]:
    """The added class's hidden photos with a near-duplicate among its public photos."""
    added = challenge.dataset.added_class
    assert added is not None
    public = added_public(settings.require_data_dir(), challenge)
    flat = challenge.dataset.model_copy(update={"source": added.source, "layout": "class-folders"})
    hashes = dataset_image_hashes(settings, flat, [*public, *added.hidden])
    folder = challenge.model_copy(update={"dataset": flat})
    return _pairs(settings, folder, _subset(hashes, set(added.hidden)), _subset(hashes, set(public)))


def _digest(items: Iterable[str]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(item.encode() + b"\n")
    return h.hexdigest()
