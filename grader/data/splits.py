"""Listing a dataset and its recorded splits: which entries the kernel may see and which are the
hidden test set, the recorded hidden split, the public part of the hidden test set, and the
public files of an added class.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.core import Challenge, DataError, DatasetSpec, check_split_files, missing_class_error
from grader.data.imagefiles import list_images

__all__ = [
    "Listing",
    "added_public",
    "data_missing",
    "list_dataset",
    "load_public_split",
    "load_split",
    "public_split",
    "public_split_problems",
    "public_split_text",
    "read_entries",
    "scan_source",
    "stratified_split",
]


def _class_files(root: Path, classes: list[str], what: str, *, toml: Path | None = None) -> dict[str, list[str]]:
    if not root.is_dir():
        raise DataError(f"{what} is missing: {root} does not exist", path=root,
                        fix="point GRADER_DATA_DIR at the datasets folder")
    # a class without its folder: a misspelt class (the nearest folder, the folders that are no
    # class), or a copy of the dataset missing folders; what `grader validate` says, both fixes named
    error = missing_class_error(root, classes, toml=toml, copy=True)
    if error is not None:
        raise error
    files = {c: [p.name for p in list_images(root / c)] for c in classes}
    empty = [c for c, names in files.items() if not names]
    if empty:
        raise DataError(f"class folders hold no images: {', '.join(empty)}", path=root)
    return files


def scan_source(data_dir: Path, dataset: DatasetSpec, *, toml: Path | None = None) -> dict[str, list[str]]:
    """List a ``class-folders`` dataset as ``{class: [file name, ...]}``.

    Args:
        data_dir: the datasets folder.
        dataset: the dataset spec.
        toml: the challenge's ``challenge.toml``, named as the file to fix for a class without
            its folder.

    Raises:
        DataError: the source folder is missing, or a class folder holds no images.
        ChallengeError: a class has no folder (:func:`grader.core.missing_class_error`: the
            nearest folder, the folders that are no class, and the fix for a partial copy too).
    """
    return _class_files(data_dir / dataset.source, dataset.classes, f"dataset {dataset.source!r}", toml=toml)


def data_missing(data_dir: Path | None, challenge: Challenge) -> str | None:
    """Why ``challenge``'s dataset is not in the data folder, or None where it is: no data folder
    set, its source folder absent, or (layout ``idx``) its four files neither there nor in the
    system folder. A dataset that is there but incomplete is :func:`list_dataset`'s error.

    ``grader validate`` says this and skips the checks that read the data.
    """
    if data_dir is None:
        return "no data directory is set (GRADER_DATA_DIR or --data-dir)"
    ds = challenge.dataset
    if ds.layout == "idx":
        from grader.data import idx  # here: idx imports numpy (0.1 s of start-up), for idx datasets only

        try:
            idx.find_idx_folder(data_dir, ds)
        except DataError as err:
            return err.message
        return None
    root = data_dir / ds.source
    return None if root.is_dir() else f"the data directory {data_dir} holds no {ds.source}/"


@dataclass(frozen=True)
class Listing:
    """A dataset split into what the kernel may see and the hidden test set.

    Entries are paths relative to ``<data dir>/<source>`` with their class:
    ``(<class>/<file>, class)``, ``(train/<class>/<file>, class)`` or, for ``labels-csv``,
    ``(<images>/<file>, class)``.
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
            ``grader data export`` writes it (:mod:`grader.data.practice`). The files of the recorded
            hidden split are still left out of ``public`` where they are present.

    The test images of ``dataset.hidden_exclude`` are left out of ``hidden`` (and of nothing else).

    Raises:
        DataError: missing folders, or (unless ``public_only``) hidden files of the recorded
            split missing; an unreadable list of left-out test images.
        ChallengeError: a class without its folder (or, ``labels-csv``, without a label in the
            CSV), or a split file the challenge names not made yet: the same errors as
            ``grader validate`` (:mod:`grader.core.authoring`).
    """
    ds = challenge.dataset
    root = data_dir / ds.source
    toml = challenge.folder / "challenge.toml"
    if ds.layout == "idx":
        return _without_excluded(challenge, _idx_listing(data_dir, ds, public_only=public_only))
    if ds.layout == "labels-csv":
        return _csv_listing(data_dir, challenge, public_only=public_only)
    if ds.layout == "train-test-folders":
        sides = {side: _class_files(root / side, ds.classes, f"{ds.source}/{side}", toml=toml)
                 for side in (("train",) if public_only else ("train", "test"))}
        pairs = {side: tuple((f"{side}/{c}/{n}", c) for c, names in files.items() for n in names)
                 for side, files in sides.items()}
        return _without_excluded(challenge, Listing(public=pairs["train"], hidden=pairs.get("test", ())))
    files = scan_source(data_dir, ds, toml=toml)
    split = load_split(challenge)
    if not public_only:
        _check_split_present(files, split, root, challenge.id)
    hidden = set(split)
    if public_only:
        return Listing(public=tuple((f"{c}/{n}", c) for c, names in files.items() for n in names
                                    if f"{c}/{n}" not in hidden), hidden=())
    public = tuple((f"{c}/{n}", c) for c, names in files.items() for n in names
                   if f"{c}/{n}" not in hidden)
    return Listing(public=public, hidden=tuple((e, e.split("/", 1)[0]) for e in split))


def _csv_listing(data_dir: Path, challenge: Challenge, *, public_only: bool) -> Listing:
    """The listing of a ``labels-csv`` dataset (:mod:`grader.data.labelscsv`): the CSV's rows of the
    challenge's classes, the recorded hidden split hidden."""
    from grader.data.labelscsv import csv_labels  # here: labelscsv imports this module

    labels = csv_labels(data_dir, challenge.dataset, public_only=public_only, toml=challenge.folder / "challenge.toml")
    split = load_split(challenge)
    hidden = set(split)
    public = tuple((e, c) for e, c in labels.items() if e not in hidden)
    if public_only:
        return Listing(public=public, hidden=())
    missing = [e for e in split if e not in labels]
    if missing:
        root = data_dir / challenge.dataset.source
        raise DataError(f"{len(missing)} images of the hidden test set are missing from {root} or not labelled "
                        f"with one of the challenge's classes, e.g. {', '.join(missing[:5])}", path=root,
                        fix=_restore_fix(challenge.id, "and its labels CSV"))
    return Listing(public=public, hidden=tuple((e, labels[e]) for e in split))


def _without_excluded(challenge: Challenge, listing: Listing) -> Listing:
    """``listing`` without the test images ``dataset.hidden_exclude`` leaves out (near-duplicates
    of public images, :func:`grader.data.neardup.load_excluded`)."""
    from grader.data.neardup import load_excluded  # here: neardup imports numpy (0.1 s of start-up)

    excluded = load_excluded(challenge)
    if not excluded:
        return listing
    return Listing(public=listing.public, hidden=tuple(p for p in listing.hidden if p[0] not in excluded))


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
    """Read the recorded hidden split of ``challenge`` (``<class>/<file>`` a line, ``<images>/<file>`` for
    ``labels-csv``; ``#`` comments).

    Raises:
        ChallengeError: the split file is not made yet (:func:`grader.core.check_split_files`: the
            command that makes it).
        DataError: the split file cannot be read or names a class the challenge does not have (its
            entries' classes are checked against the CSV by :func:`list_dataset` for ``labels-csv``).
    """
    if challenge.dataset.hidden_split is None:
        raise DataError(f"challenge {challenge.id} records no hidden split",
                        path=challenge.folder / "challenge.toml")
    path = challenge.folder.parent / challenge.dataset.hidden_split
    entries = read_entries(challenge, path, "hidden split")
    if challenge.dataset.layout == "labels-csv":  # entries are <images>/<file>: the CSV holds the class
        return entries
    classes = set(challenge.dataset.classes)
    bad = [e for e in entries if e.split("/", 1)[0] not in classes or "/" not in e]
    if bad:
        raise DataError(f"hidden split names unknown classes: {bad[:5]}", path=path)
    return entries


def read_entries(challenge: Challenge, path: Path, what: str) -> list[str]:
    """The entries of ``challenge``'s split file ``path`` (one a line; blank lines and ``#``
    comments left out).

    Raises:
        ChallengeError: the file does not exist: :func:`grader.core.check_split_files`'s error,
            naming every split file not made yet and the command that makes them.
        DataError: the file cannot be read.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        if not path.exists():
            check_split_files(challenge)  # raises, naming the command that makes it
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
        "# Made by `grader data make-split ID` (grader.data.splits.public_split: per class,",
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
    entries = read_entries(challenge, path, "public split")
    twice = sorted(e for e, n in Counter(entries).items() if n > 1)
    if twice:
        raise DataError(f"the public split lists {len(twice)} entries twice, e.g. {', '.join(twice[:5])}",
                        path=path, fix=f"regenerate it with grader data make-split {challenge.id}")
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


def _restore_fix(cid: str, also: str = "") -> str:
    return (f"restore the full dataset{' ' + also if also else ''} (the hidden split recorded in the project names "
            f"these files); if the dataset changed on purpose, choose the splits again: grader data make-split {cid}")


def _check_split_present(files: dict[str, list[str]], split: list[str], root: Path, cid: str) -> None:
    present = {f"{c}/{n}" for c, names in files.items() for n in names}
    missing = [e for e in split if e not in present]
    if missing:
        raise DataError(
            f"{len(missing)} files of the hidden test set are missing from {root}, e.g. "
            f"{', '.join(missing[:5])}",
            path=root,
            fix=_restore_fix(cid),
        )


def _idx_listing(data_dir: Path, ds: DatasetSpec, *, public_only: bool) -> Listing:
    """The listing of an ``idx`` dataset (:mod:`grader.data.idx`): ``train/<class>/<index>.png``
    public, ``test/<class>/<index>.png`` hidden, each side read and checked against its
    published counts."""
    from grader.data import idx  # here: idx imports numpy (0.1 s of start-up), for idx datasets only

    folder = idx.find_idx_folder(data_dir, ds)
    train = idx.idx_entries("train", idx.load_side(folder, "train", ds).labels, ds.classes)
    test = () if public_only else idx.idx_entries("test", idx.load_side(folder, "test", ds).labels, ds.classes)
    return Listing(public=train, hidden=test)


def added_public(data_dir: Path, challenge: Challenge, *, public_only: bool = False) -> list[str]:
    """The file names of the added class's public images (neither hidden nor reserved), sorted;
    empty without an added class.

    Raises:
        DataError: the added class's folder is missing, or (unless ``public_only``) some of its
            hidden or reserved files are.
    """
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
