"""A coach's mistakes in a challenge, found before anything runs, each an error that names the file
and the fix: class folders that do not match ``classes``, split files not made yet, a missing
starter notebook. ``grader validate`` and ``grader verify-references`` call these.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from grader.core.challenge import Challenge
from grader.core.errors import ChallengeError

__all__ = ["class_folder_roots", "check_class_folders", "check_split_files", "check_starter", "missing_class_error"]

# each split file a challenge may name, and what it holds
_SPLITS = (("hidden_split", "hidden split"), ("public_split", "public split"),
           ("practice_split", "practice split"), ("hidden_exclude", "list of left-out test images"))


def class_folder_roots(challenge: Challenge, data_dir: Path) -> list[Path]:
    """The folders that must hold one folder per class of ``challenge``: ``<source>`` for layout
    ``class-folders``, ``<source>/train`` and ``<source>/test`` for ``train-test-folders``; none
    for layouts whose classes are not folders (``idx``, a labels file)."""
    root = data_dir / challenge.dataset.source
    if challenge.dataset.layout == "class-folders":
        return [root]
    if challenge.dataset.layout == "train-test-folders":
        return [root / "train", root / "test"]
    return []


def missing_class_error(root: Path, classes: Sequence[str], *, toml: Path | None = None) -> ChallengeError | None:
    """The error for the ``classes`` that have no folder in ``root``, or None when each has one
    (or ``root`` does not exist: a missing dataset is the data folder's error, not the spec's).

    The message names, for each class without a folder, the nearest existing folder
    (:func:`difflib.get_close_matches`, cutoff 0.6), and the folders that are no class.

    Args:
        root: the folder holding one folder per class.
        classes: the class names ``challenge.toml`` lists.
        toml: the ``challenge.toml`` named as the file to fix.
    """
    if not root.is_dir():
        return None
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    missing = [c for c in classes if c not in folders]
    if not missing:
        return None
    spare = [f for f in folders if f not in classes]
    named = []
    renames = []
    for cls in missing:
        near = difflib.get_close_matches(cls, spare or folders, n=1)
        named.append(f"{cls!r} (nearest folder: {near[0]!r})" if near else f"{cls!r} (no folder is close)")
        if near:
            renames.append(f"{cls} -> {near[0]}")
    message = (f"{len(missing)} of the {len(classes)} classes have no folder in {root}: {', '.join(named)}; "
               + (f"folders not listed as classes: {', '.join(spare)}" if spare else "every folder there is a class"))
    fix = (f"in [dataset] classes, write each class as its folder is named ({'; '.join(renames)})" if renames
           else "add the missing class folders to the dataset, or remove those classes from [dataset] classes")
    return ChallengeError(message, path=toml, fix=fix)


def check_class_folders(challenge: Challenge, data_dir: Path) -> list[str]:
    """Check that every class of ``challenge`` has its folder in the data (:func:`class_folder_roots`).

    Returns:
        The folders beside the classes' that are no class (a challenge may take a subset of a
        dataset's classes), sorted, once each.

    Raises:
        ChallengeError: a class without its folder (:func:`missing_class_error`).
    """
    spare: set[str] = set()
    classes = challenge.dataset.classes
    for root in class_folder_roots(challenge, data_dir):
        error = missing_class_error(root, classes, toml=challenge.folder / "challenge.toml")
        if error is not None:
            raise error
        if root.is_dir():
            spare.update(p.name for p in root.iterdir()
                         if p.is_dir() and not p.name.startswith(".") and p.name not in classes)
    return sorted(spare)


def check_split_files(challenge: Challenge) -> None:
    """Check that every split file ``challenge.toml`` names exists.

    Raises:
        ChallengeError: a named split file is missing: the message names each, the fix the
            command that writes them (``grader data make-split ID``).
    """
    base = challenge.folder.parent
    missing = [f"{what} {value}" for key, what in _SPLITS
               if (value := getattr(challenge.dataset, key)) is not None and not (base / value).is_file()]
    if missing:
        raise ChallengeError(f"{challenge.id}: not made yet: {', '.join(missing)} (under {base})",
                             path=challenge.folder / "challenge.toml",
                             fix=f"make them with grader data make-split {challenge.id}")


def check_starter(challenge: Challenge) -> Path:
    """The starter notebook of ``challenge``, ``challenges/<id>/starter.ipynb``.

    Raises:
        ChallengeError: it does not exist.
    """
    path = challenge.folder / "starter.ipynb"
    if not path.is_file():
        raise ChallengeError(f"{challenge.id} has no starter notebook", path=path,
                             fix=f"add {path}: the notebook teams start from (the parameters cell, the contract's "
                             "names, the data loading, `# YOUR CODE HERE` where their model goes); "
                             "`grader verify-references` then checks that it fails the rubric")
    return path
