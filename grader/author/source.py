"""A coach's folder of photos, read as ``grader new-challenge`` finds it: class folders
(``<class>/<file>``), train and test folders (``train/<class>/<file>``, ``test/<class>/<file>``) or
an image folder with a labels CSV (Kaggle's layout, ``id,label``), each image with its class.

The folder must sit directly in the data folder (``GRADER_DATA_DIR``): the sandbox mounts only
that, and the challenge names its dataset by the folder's name. Nothing is converted: the
challenge reads the folder as it is, so what this module lists is what
:func:`grader.data.list_dataset` will list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.core import DATA_DIR_ENV, ConfigError, DataError, UsageError
from grader.data import LabelRow, list_images, match_rows, read_labels_csv

__all__ = ["Layout", "Source", "locate", "read_source"]

Layout = Literal["class-folders", "train-test-folders", "labels-csv"]


@dataclass(frozen=True)
class Source:
    """The images of a coach's folder, each with its class.

    Attributes:
        folder: the folder (absolute).
        name: its name in the data folder: the challenge's ``dataset.source``.
        layout: how the classes are given.
        entries: ``(entry, class)`` of every image, sorted by entry; an entry is the image's path
            relative to ``folder`` (``cat/1.jpg``, ``train/cat/1.jpg``, ``images/1.jpg``).
        test: for ``train-test-folders``, the entries under ``test/`` (the hidden test set's side).
        labels: for ``labels-csv``, the CSV's path relative to ``folder``.
        images: for ``labels-csv``, the images' folder relative to ``folder`` (``.``: ``folder``).
        ignored: what was left out and why, one line each (files that are not images, folders
            without images, CSV rows without a file, images without a row).
    """

    folder: Path
    name: str
    layout: Layout
    entries: tuple[tuple[str, str], ...]
    test: frozenset[str] = frozenset()
    labels: str | None = None
    images: str | None = None
    ignored: tuple[str, ...] = ()

    @property
    def classes(self) -> list[str]:
        """The class names, sorted."""
        return sorted({c for _, c in self.entries})

    def counts(self) -> Counter[str]:
        """Images per class."""
        return Counter(c for _, c in self.entries)


def locate(data_dir: Path | None, folder: Path) -> str:
    """The name of ``folder`` in the data folder, which must hold it directly.

    Raises:
        UsageError: ``folder`` is not a folder, or not directly in the data folder; the fix says
            to move it there or to set ``GRADER_DATA_DIR`` to its parent.
    """
    here = folder.expanduser().resolve()
    if not here.is_dir():
        raise UsageError(f"--data {folder}: no such folder", fix="pass the folder that holds the photos")
    parent_fix = f"export {DATA_DIR_ENV}={here.parent} (or pass --data-dir {here.parent})"
    if data_dir is None:
        raise ConfigError(f"no data folder is set, and the grader reads datasets only from it (the sandbox mounts "
                          f"only that folder); {folder} must be in it", fix=parent_fix)
    root = data_dir.resolve()
    if here.parent != root:
        where = "inside it, but not directly" if here.is_relative_to(root) else "not in it"
        raise UsageError(f"--data {folder}: the data folder is {root} and this folder is {where}; the grader "
                         "reads datasets only from the data folder's own folders (the sandbox mounts only it)",
                         path=here, fix=f"move the folder to {root / here.name}, or {parent_fix}")
    return here.name


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _stray_files(folder: Path, images: Sequence[Path]) -> list[str]:
    kept = {p.name for p in images}
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name not in kept)


def _class_folders(root: Path, prefix: str, ignored: list[str]) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for sub in _visible_dirs(root):
        files = list_images(sub)
        if not files:
            ignored.append(f"{prefix}{sub.name}/: no images, not a class")
            continue
        entries += [(f"{prefix}{sub.name}/{p.name}", sub.name) for p in files]
        other = _stray_files(sub, files)
        if other:
            ignored.append(f"{prefix}{sub.name}/: {len(other)} files that are not images, e.g. {', '.join(other[:3])}")
        nested = _visible_dirs(sub)
        if nested:
            ignored.append(f"{prefix}{sub.name}/: {len(nested)} folders inside a class folder, e.g. {nested[0].name}/")
    loose = [p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    if loose:
        ignored.append(f"{prefix or './'}: {len(loose)} files outside the class folders, e.g. "
                       f"{', '.join(sorted(loose)[:3])}")
    return entries


def _images_folder(folder: Path, images: str | None, rows: Sequence[LabelRow]) -> str:
    """The images' folder: ``images`` if given, else of ``folder`` and its folders the one whose
    files match the most rows of the CSV."""
    if images is not None:
        if not (folder / images).is_dir():
            raise UsageError(f"--images {images}: no such folder in {folder}",
                             fix="name the folder of the images, relative to --data")
        return images
    candidates = [folder, *_visible_dirs(folder)]
    matches = {p: len(match_rows(rows, [f.name for f in list_images(p)])[0]) for p in candidates}
    best = max(candidates, key=lambda p: matches[p])
    if not matches[best]:
        raise DataError(f"no image in {folder} or its folders is named by an id of the labels CSV", path=folder,
                        fix="name each image by its id (with or without the extension), or pass --images FOLDER")
    return "." if best == folder else best.name


def _csv_source(folder: Path, name: str, labels: Path, images: str | None) -> Source:
    csv_path = labels if labels.is_absolute() else (Path.cwd() / labels)
    csv_path = csv_path.resolve()
    if not csv_path.is_file() and (folder / labels).is_file():
        csv_path = (folder / labels).resolve()
    if not csv_path.is_file():
        raise UsageError(f"--labels {labels}: no such file", fix="pass the labels CSV (columns id,label)")
    if not csv_path.is_relative_to(folder):
        raise UsageError(f"--labels {labels}: the labels CSV must be inside {folder}, as the images are (the "
                         "students get it beside them)", path=csv_path, fix=f"move it into {folder}")
    _, rows = read_labels_csv(csv_path)
    image_dir = _images_folder(folder, images, rows)
    files = list_images(folder / image_dir)
    matched, missing, ambiguous = match_rows(rows, [p.name for p in files])
    rel = csv_path.relative_to(folder).as_posix()
    if ambiguous:
        raise DataError(f"{len(ambiguous)} ids of {rel} match two files by their name without extension, e.g. "
                        f"{', '.join(ambiguous[:5])}", path=csv_path,
                        fix="give the full file name (with its extension) as the id")
    ignored = [f"{rel}: {len(missing)} rows name no image in {image_dir}/, e.g. {', '.join(missing[:3])}"] \
        if missing else []
    used = set(matched.values())
    unlabelled = [p.name for p in files if p.name not in used]
    if unlabelled:
        ignored.append(f"{image_dir}/: {len(unlabelled)} images without a row in {rel}, e.g. "
                       f"{', '.join(unlabelled[:3])}")
    prefix = "" if image_dir == "." else f"{image_dir}/"
    entries = sorted((f"{prefix}{matched[r.id]}", r.label) for r in rows if r.id in matched)
    return Source(folder=folder, name=name, layout="labels-csv", entries=tuple(entries), labels=rel,
                  images=image_dir, ignored=tuple(ignored))


def read_source(data_dir: Path | None, folder: Path, *, labels: Path | None = None,
                images: str | None = None) -> Source:
    """Read the images and classes of ``folder`` (see the module docstring for the layouts).

    The layout: folders ``train`` and ``test`` holding class folders: ``train-test-folders``; else
    ``labels`` given, or exactly one CSV in ``folder``: ``labels-csv`` (the images' folder is the
    one whose files match the most ids, Kaggle's ``train/`` beside an unlabelled ``test/``); else
    ``class-folders`` (every folder holding images is a class).

    Args:
        data_dir: the data folder (``GRADER_DATA_DIR``).
        folder: the coach's folder, directly in ``data_dir``.
        labels: the labels CSV, inside ``folder`` (absolute, relative to the current folder or
            to ``folder``).
        images: for a labels CSV, the images' folder relative to ``folder`` (default: of ``folder``
            and its folders, the one whose files match the most ids).

    Raises:
        UsageError, ConfigError: ``folder`` is not directly in the data folder; a CSV outside it;
            no way to tell the images' folder.
        DataError: no classes (fewer than two), or a malformed labels CSV.
    """
    name = locate(data_dir, folder)
    here = folder.expanduser().resolve()
    csvs = sorted(p for p in here.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    sides = {p.name for p in _visible_dirs(here)}
    folders = {"train", "test"} <= sides and any(_visible_dirs(here / "train"))
    if labels is None and len(csvs) == 1 and not folders:
        labels = csvs[0]
    if labels is not None:
        source = _csv_source(here, name, labels, images)
    else:
        ignored: list[str] = []
        if folders:
            entries = [*_class_folders(here / "train", "train/", ignored),
                       *_class_folders(here / "test", "test/", ignored)]
            ignored += [f"{s}/: not train/ or test/" for s in sorted(sides - {"train", "test"})]
            test = frozenset(e for e, _ in entries if e.startswith("test/"))
            source = Source(folder=here, name=name, layout="train-test-folders", entries=tuple(sorted(entries)),
                            test=test, ignored=tuple(ignored))
            missing = sorted({c for e, c in entries if e.startswith("train/")} ^ {c for e, c in entries if e in test})
            if missing:
                raise DataError(f"train/ and test/ differ in their classes: {', '.join(missing)} is in one only",
                                path=here, fix="give both sides the same class folders")
        else:
            entries = _class_folders(here, "", ignored)
            source = Source(folder=here, name=name, layout="class-folders", entries=tuple(sorted(entries)),
                            ignored=tuple(ignored))
    if len(source.classes) < 2:
        raise DataError(f"{here}: found {len(source.classes)} classes ({', '.join(source.classes) or 'none'}); a "
                        "challenge needs two or more", path=here,
                        fix="put each class's images in a folder named after the class (cat/1.jpg, dog/2.jpg), "
                        "or pass --labels CSV with columns id,label beside an image folder")
    return source
