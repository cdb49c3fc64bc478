"""A coach's mistakes in a challenge, found before anything runs, each an error that names the file
and the fix: class folders that do not match ``classes``, split files not made yet, a missing
starter notebook. ``grader validate`` and ``grader verify-references`` call these, and the data
stage raises the same errors where ``grader check`` meets these mistakes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from grader.core.challenge import Challenge
from grader.core.errors import ChallengeError

__all__ = ["class_folder_roots", "check_class_folders", "check_split_files", "check_starter", "missing_class_error",
           "missing_label_error", "recorded_command"]

# each split file a challenge may name, and what it holds
_SPLITS = (("hidden_split", "hidden split"), ("public_split", "public split"),
           ("practice_split", "practice split"), ("hidden_exclude", "list of left-out test images"))
# what grader new-challenge writes at the top of the files it makes: the command line that made them
_MADE_BY_SPLIT = re.compile(r"^# Made by `(grader new-challenge [^`]+)`")
_MADE_BY_TOML = re.compile(r"^# Made by: (grader new-challenge .+)$")
_COPY_FIX = "or, where the data folder holds a copy of the dataset, restore the full dataset"


def recorded_command(challenge: Challenge) -> str | None:
    """The ``grader new-challenge`` command line that chose ``challenge``'s splits, as recorded at
    the top of its hidden split (or of its list of left-out test images), else at the top of its
    ``challenge.toml``; None for a challenge not made by ``grader new-challenge``.

    The split file's is preferred: ``--splits-only`` rewrites the split files, not the spec. Only
    the files' first ten lines are read.
    """
    base = challenge.folder.parent
    ds = challenge.dataset
    candidates = [(base / name, _MADE_BY_SPLIT) for name in (ds.hidden_split, ds.hidden_exclude) if name]
    for path, pattern in [*candidates, (challenge.folder / "challenge.toml", _MADE_BY_TOML)]:
        try:
            with path.open(encoding="utf-8") as fh:
                head = [fh.readline().rstrip("\n") for _ in range(10)]
        except (OSError, UnicodeDecodeError):
            continue
        for line in head:
            found = pattern.match(line)
            if found:
                return found.group(1).strip()
    return None


def _split_fix(challenge: Challenge) -> str:
    """The command that (re)makes ``challenge``'s split files, as a fix."""
    command = recorded_command(challenge)
    fix = f"make them with grader data make-split {challenge.id}"
    if command is not None:
        fix += (f"; for this challenge, made by grader new-challenge, it chooses them as the recorded "
                f"`{command} --splits-only` does (the same seed, --group and share hidden)")
    return fix


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


def _mismatch(missing: Sequence[str], classes: Sequence[str], names: Sequence[str], *, where: str, what: str,
              toml: Path | None, copy: bool) -> ChallengeError:
    """The error for the ``classes`` among ``missing`` that are none of ``names`` (folders, labels)."""
    spare = [f for f in names if f not in classes]
    named = []
    renames = []
    for cls in missing:
        near = difflib.get_close_matches(cls, spare or names, n=1)
        named.append(f"{cls!r} (nearest {what}: {near[0]!r})" if near else f"{cls!r} (no {what} is close)")
        if near:
            renames.append(f"{cls} -> {near[0]}")
    message = (f"{len(missing)} of the {len(classes)} classes have no {what} in {where}: {', '.join(named)}; "
               + (f"{what}s not listed as classes: {', '.join(spare)}" if spare else f"every {what} there is a class"))
    fix = (f"in [dataset] classes, write each class as its {what} is named ({'; '.join(renames)})" if renames
           else f"add the missing class {what}s to the dataset, or remove those classes from [dataset] classes")
    return ChallengeError(message, path=toml, fix=f"{fix}; {_COPY_FIX}" if copy else fix)


def missing_class_error(root: Path, classes: Sequence[str], *, toml: Path | None = None,
                        copy: bool = False) -> ChallengeError | None:
    """The error for the ``classes`` that have no folder in ``root``, or None when each has one
    (or ``root`` does not exist: a missing dataset is the data folder's error, not the spec's).

    The message names, for each class without a folder, the nearest existing folder
    (:func:`difflib.get_close_matches`, cutoff 0.6), and the folders that are no class.

    Args:
        root: the folder holding one folder per class.
        classes: the class names ``challenge.toml`` lists.
        toml: the ``challenge.toml`` named as the file to fix.
        copy: the fix also names the other cause, a copy of the dataset missing folders (where
            ``grader check`` meets it: a team's copy of the public data).
    """
    if not root.is_dir():
        return None
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    missing = [c for c in classes if c not in folders]
    if not missing:
        return None
    return _mismatch(missing, classes, folders, where=str(root), what="folder", toml=toml, copy=copy)


def missing_label_error(csv: Path, classes: Sequence[str], labels: Sequence[str], *,
                        toml: Path | None = None) -> ChallengeError | None:
    """For a ``labels-csv`` dataset: the error for the ``classes`` no image of the labels CSV
    ``csv`` has, or None when each has one. As :func:`missing_class_error`, with the CSV's
    ``labels`` (those of its rows that name an image file) for the folders.
    """
    names = sorted(set(labels))
    missing = [c for c in classes if c not in names]
    if not missing:
        return None
    return _mismatch(missing, classes, names, where=f"the labels CSV {csv}", what="label", toml=toml, copy=True)


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
            command that writes them (``grader data make-split ID``; for a challenge made by
            ``grader new-challenge``, also the recorded command with ``--splits-only``,
            :func:`recorded_command`).
    """
    base = challenge.folder.parent
    missing = [f"{what} {value}" for key, what in _SPLITS
               if (value := getattr(challenge.dataset, key)) is not None and not (base / value).is_file()]
    if missing:
        raise ChallengeError(f"{challenge.id}: not made yet: {', '.join(missing)} (under {base})",
                             path=challenge.folder / "challenge.toml",
                             fix=_split_fix(challenge))


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
