"""The practice split: a fixed, recorded part of a challenge's *public* data that
``grader check --practice`` scores on instead of the hidden test set.

A team working offline with only the public data (``grader data export``) sees the same scorecard
before it spends a submission. The practice split is chosen from the public entries, so it is
never part of the hidden test set; during a practice check it is left out of the notebook's
public view, so the notebook never trains on what it is scored on.

The split is stratified (:func:`grader.data.splits.stratified_split`): per class
``max(1, round(n * fraction))`` of the class's ``n`` public images, where ``fraction`` is
:data:`PRACTICE_FRACTION` (10%) or less, so that the split holds at most about
:data:`PRACTICE_MAX_IMAGES` images (CIFAR-10's 50,000 training images: 2%, 100 per class).
Challenges on the same source share one file made over the union of their classes; a challenge
on a subset of the classes (``cifar10-transfer``) uses the entries of its classes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from grader.core import Challenge, ChallengeError, DataError, Settings, challenge_ids, load_challenge, write_atomic
from grader.data.hidden import ensure_hidden_test_set
from grader.data.splits import Listing, list_dataset, load_split, read_entries, stratified_split
from grader.data.store import HiddenTestSet
from grader.data.views import ensure_public_view

__all__ = [
    "PRACTICE_FRACTION",
    "PRACTICE_MAX_IMAGES",
    "PRACTICE_SEED",
    "entry_class",
    "load_practice_split",
    "practice_hidden_test_set",
    "practice_listing",
    "practice_public_view",
    "practice_split",
    "practice_split_problems",
    "practice_split_text",
]

PRACTICE_FRACTION = 0.10
PRACTICE_MAX_IMAGES = 1000
PRACTICE_SEED = 2026  # fixed: the recorded files are regenerated identically

_FIX = "regenerate it with grader data make-split "  # and the challenge's id


def entry_class(entry: str) -> str:
    """The class of a dataset entry: its folder (``axes/1.jpeg`` and ``train/axes/1.jpeg``: ``axes``)."""
    return entry.rsplit("/", 2)[-2] if "/" in entry else ""


def practice_split(public: Sequence[tuple[str, str]]) -> list[str]:
    """Choose the practice split of a challenge's public entries.

    Method: :func:`grader.data.splits.stratified_split` with seed :data:`PRACTICE_SEED` over the
    entries by class, ``fraction = min(PRACTICE_FRACTION, PRACTICE_MAX_IMAGES / len(public))``.
    The same entries always give the same split.

    Args:
        public: ``(entry, class)`` pairs of the public data (:attr:`grader.data.splits.Listing.public`).

    Returns:
        The practice entries (identities as in ``public``), sorted; empty when ``public`` is.
    """
    if not public:
        return []
    by_class: dict[str, list[str]] = {}
    for entry, label in public:
        by_class.setdefault(label, []).append(entry)
    fraction = min(PRACTICE_FRACTION, PRACTICE_MAX_IMAGES / len(public))
    chosen = stratified_split(by_class, fraction=fraction, seed=PRACTICE_SEED)
    return sorted(c.split("/", 1)[1] for c in chosen)  # "<class>/<entry>" back to the entry


def practice_split_text(source: str, public: Sequence[tuple[str, str]]) -> str:
    """The practice split file of ``source`` from its public entries (every class of the
    challenges sharing the file), with a header saying how it was made."""
    chosen = practice_split(public)
    classes = sorted({label for _, label in public})
    fraction = min(PRACTICE_FRACTION, PRACTICE_MAX_IMAGES / len(public)) if public else 0.0
    header = [
        f"# Practice split of the public data of {source!r} ({len(classes)} classes): {len(chosen)} of its "
        f"{len(public)} public images,",
        f"# by original identity under GRADER_DATA_DIR/{source}, one a line; never part of the hidden test set.",
        "# `grader check --practice` scores on these and leaves them out of the notebook's DATA_DIR.",
        "# Made by `grader data make-split ID` (grader.data.practice.practice_split:",
        f"# stratified_split, fraction {fraction:.4g}, seed {PRACTICE_SEED}); regenerating gives this same file.",
    ]
    return "\n".join(header + chosen) + "\n"


def load_practice_split(challenge: Challenge) -> list[str] | None:
    """The recorded practice entries of ``challenge``'s classes (a shared file's entries of other
    classes left out), or None where the challenge records no practice split.

    Raises:
        ChallengeError: the file is not made yet (:func:`grader.core.check_split_files`: the
            command that makes it).
        DataError: the file cannot be read or lists an entry twice.
    """
    if challenge.dataset.practice_split is None:
        return None
    path = challenge.folder.parent / challenge.dataset.practice_split
    entries = read_entries(challenge, path, "practice split")
    twice = sorted(e for e, n in Counter(entries).items() if n > 1)
    if twice:
        raise DataError(f"the practice split lists {len(twice)} entries twice, e.g. {', '.join(twice[:5])}",
                        path=path, fix=_FIX + challenge.id)
    if challenge.dataset.layout == "labels-csv":  # the class is in the CSV: list_dataset leaves out the others
        return entries
    classes = set(challenge.dataset.classes)
    return [e for e in entries if entry_class(e) in classes]


def practice_split_problems(challenge: Challenge, practice: Sequence[str],
                            public: Sequence[tuple[str, str]] | None) -> list[str]:
    """What is wrong with ``practice`` as ``challenge``'s practice split.

    Checks: no entry is in the hidden test set (the recorded ``hidden_split``, or ``test/`` for
    the ``train-test-folders`` and ``idx`` layouts); every class of the challenge has at least one entry
    (for ``labels-csv``, whose classes are in the CSV, only where ``public`` is given); and,
    where ``public`` (the public entries of the data folder) is given, every entry is one of them.

    Returns:
        One message per problem; empty when the split is sound.
    """
    problems: list[str] = []
    csv = challenge.dataset.layout == "labels-csv"  # an entry's class is in the CSV, known from ``public``
    if challenge.dataset.layout not in ("class-folders", "labels-csv"):  # train-test-folders, idx: test/
        hidden = sorted(e for e in practice if not e.startswith("train/"))
        if hidden:
            problems.append(f"{len(hidden)} entries outside train/ (the hidden test set is test/), "
                            f"e.g. {', '.join(hidden[:3])}")
    else:
        hidden = sorted(set(practice) & set(load_split(challenge)))
        if hidden:
            problems.append(f"{len(hidden)} entries in the hidden test set, e.g. {', '.join(hidden[:3])}")
    label_of = dict(public) if public is not None else {}
    counts = Counter(label_of.get(e, "") if csv else entry_class(e) for e in practice)
    absent = [c for c in challenge.dataset.classes if not counts[c]] if public is not None or not csv else []
    if absent:
        problems.append(f"classes without a practice image: {', '.join(absent)}")
    if public is not None:
        stray = sorted(set(practice) - {e for e, _ in public})
        if stray:
            problems.append(f"{len(stray)} entries not in the public data, e.g. {', '.join(stray[:3])}")
    return problems


def practice_listing(data_dir: Path, challenge: Challenge) -> Listing:
    """The dataset of ``challenge`` as a practice check sees it: ``public`` is the public data
    without the practice split, ``hidden`` is the practice split (``(entry, class)`` pairs,
    sorted).

    Works on the full datasets folder and on one that holds only the public data, as
    ``grader data export`` writes it (:func:`grader.data.splits.list_dataset` with ``public_only``).

    Raises:
        ChallengeError: the challenge records no practice split.
        DataError: the data is missing or incomplete, or the practice split is unreadable, names
            hidden entries or entries missing from the data folder.
    """
    practice = load_practice_split(challenge)
    if practice is None:
        raise ChallengeError(f"{challenge.id} records no practice split, so it has no practice check",
                             path=challenge.folder / "challenge.toml",
                             fix="add practice_split = \"splits/<source>-practice.txt\" under [dataset] and run "
                             "grader data make-split " + challenge.id)
    full = list_dataset(data_dir, challenge, public_only=True)
    problems = practice_split_problems(challenge, practice, full.public)
    if problems:
        raise DataError(f"practice split of {challenge.id}: " + "; ".join(problems),
                        path=challenge.folder.parent / str(challenge.dataset.practice_split),
                        fix="point GRADER_DATA_DIR at the datasets folder or a `grader data export` of it; "
                        "else " + _FIX + challenge.id)
    chosen = set(practice)
    label_of = dict(full.public) if challenge.dataset.layout == "labels-csv" else {}
    return Listing(public=tuple(p for p in full.public if p[0] not in chosen),
                   hidden=tuple(sorted((e, label_of.get(e) or entry_class(e)) for e in practice)))


def practice_public_view(settings: Settings, challenge: Challenge, *,
                         listing: Listing | None = None) -> Path:
    """The ``DATA_DIR`` of a practice check: :func:`grader.data.views.ensure_public_view` of the
    practice listing (the practice split left out), on a data folder that may hold only the
    public data.

    Raises:
        ChallengeError: no practice split. DataError: as :func:`practice_listing`.
    """
    listing = listing or practice_listing(settings.require_data_dir(), challenge)
    return ensure_public_view(settings, challenge, listing=listing, public_only=True)


def practice_hidden_test_set(settings: Settings, challenge: Challenge, *,
                             listing: Listing | None = None) -> HiddenTestSet:
    """The practice split under neutral names, as :func:`grader.data.hidden.ensure_hidden_test_set`
    builds the hidden test set (no public/private parts: ``public`` is None).

    Raises:
        ChallengeError: no practice split. DataError: as :func:`practice_listing`.
    """
    listing = listing or practice_listing(settings.require_data_dir(), challenge)
    return ensure_hidden_test_set(settings, challenge, listing=listing, with_public_split=False)


def write_practice_splits(settings: Settings, ids: Sequence[str]) -> list[tuple[Path, list[str]]]:
    """Write the practice split file of every challenge in ``ids`` that names one, from the data
    under ``settings.data_dir``: one file per path, over the union of the classes of every
    challenge (of all, not only ``ids``) naming it.

    Returns:
        ``(file, challenge ids)`` per file written.

    Raises:
        ConfigError: challenges sharing a file differ in source or layout; the data is missing.
    """
    data_dir = settings.require_data_dir()
    every = [load_challenge(settings.project_dir, cid) for cid in challenge_ids(settings.project_dir)]
    wanted = {c.dataset.practice_split for c in every if c.id in ids and c.dataset.practice_split}
    written: list[tuple[Path, list[str]]] = []
    for name in sorted(wanted):
        sharing = [c for c in every if c.dataset.practice_split == name]
        if len({(c.dataset.source, c.dataset.layout, c.dataset.hidden_split) for c in sharing}) > 1:
            raise ChallengeError(f"challenges sharing {name} differ in source, layout or hidden split: "
                                 f"{', '.join(c.id for c in sharing)}", fix="give each its own practice_split")
        base = sharing[0]
        # the union in the first challenge's order, the others' extra classes after it: an idx
        # dataset names its integer labels by position (label 0 is classes[0])
        classes = list(dict.fromkeys(cls for c in sharing for cls in c.dataset.classes))
        union = base.model_copy(update={"dataset": base.dataset.model_copy(update={"classes": classes})})
        public = list_dataset(data_dir, union).public
        path = base.folder.parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, practice_split_text(base.dataset.source, public))
        written.append((path, [c.id for c in sharing]))
    return written
