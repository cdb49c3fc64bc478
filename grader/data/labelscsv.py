"""Datasets of layout ``labels-csv``: one folder of images and a labels CSV, as Kaggle ships them
(``train/<id>.png`` and ``trainLabels.csv``), read as they are, without conversion.

The CSV has a header row with the columns ``id`` and ``label`` (in any order, any case; other
columns are kept but not read). ``id`` is an image's file name, with or without its extension
(``1`` or ``1.png``); each image file is matched by its full name first, then by its name less
the extension. An entry of such a dataset is the image's path relative to the source folder,
``<images>/<file>`` (``<file>`` where the images sit beside the CSV, ``images = "."``), and its
class is the CSV's label.

The public view and the public data's export hold the same layout: the public images, and the CSV
with the rows of the public images only (:func:`public_csv_text`), so that a notebook written
against the coach's copy reads the grader's as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from grader.core import DataError, DatasetSpec, missing_label_error
from grader.data.imagefiles import list_images

__all__ = ["LabelRow", "csv_entry", "csv_labels", "match_rows", "public_csv_text", "read_labels_csv"]

_FIX_COLUMNS = "make the CSV's first row name its columns, with id (the file name) and label among them"


@dataclass(frozen=True)
class LabelRow:
    """One data row of a labels CSV.

    Attributes:
        line: its line number in the file (the header is line 1).
        id: the image's id as written (a file name, with or without its extension).
        label: its class.
        cells: the row's cells, every column, as read.
    """

    line: int
    id: str
    label: str
    cells: tuple[str, ...]


def csv_entry(images: str, name: str) -> str:
    """The dataset entry of the image file ``name`` in the folder ``images`` (``train/1.png``;
    the bare name for ``images = "."``)."""
    return name if images in ("", ".") else f"{images.rstrip('/')}/{name}"


def read_labels_csv(path: Path) -> tuple[list[str], list[LabelRow]]:
    """The header and the data rows of a labels CSV, in file order.

    Args:
        path: the CSV (UTF-8, a byte-order mark allowed, as spreadsheets save it).

    Returns:
        The header's cells and each data row (blank lines skipped).

    Raises:
        DataError: the file cannot be read; its header lacks ``id`` or ``label``; a row has an
            empty id or label or an id with a ``/``; an id is on two rows. The message names the
            lines.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the labels CSV: {err}", path=path,
                        fix="save it as a UTF-8 CSV file with columns id,label") from err
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    names = [c.strip().lower() for c in header or []]
    if "id" not in names or "label" not in names:
        raise DataError(f"the labels CSV's header is {header!r}: it needs the columns id and label", path=path,
                        fix=_FIX_COLUMNS)
    at_id, at_label = names.index("id"), names.index("label")
    rows: list[LabelRow] = []
    bad: list[str] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        ident = cells[at_id].strip() if at_id < len(cells) else ""
        label = cells[at_label].strip() if at_label < len(cells) else ""
        if not ident or not label or "/" in ident:
            bad.append(f"line {line} ({','.join(cells)[:40]!r}): " + ("an id with a /" if "/" in ident
                                                                     else "an empty id or label"))
        elif ident in seen:
            bad.append(f"line {line}: id {ident!r} again (first on line {seen[ident]})")
        else:
            seen[ident] = line
            rows.append(LabelRow(line=line, id=ident, label=label, cells=tuple(cells)))
    if bad:
        raise DataError(f"the labels CSV has {len(bad)} bad rows: {'; '.join(bad[:5])}", path=path,
                        fix="give every row a file name (no folder) as its id and a label, each id once")
    return header or [], rows


def match_rows(rows: Collection[LabelRow], names: Collection[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """Match each row's id to one of the image files ``names`` (by full name, else by the name
    less its extension).

    Returns:
        ``{id: file name}`` of the matched rows; the ids with no file; the ids that match two
        files or more by their stem (``1`` for ``1.png`` and ``1.jpg``) and none by name.
    """
    by_name = set(names)
    by_stem: dict[str, list[str]] = {}
    for name in names:
        by_stem.setdefault(Path(name).stem, []).append(name)
    matched: dict[str, str] = {}
    missing: list[str] = []
    ambiguous: list[str] = []
    for row in rows:
        if row.id in by_name:
            matched[row.id] = row.id
        elif len(by_stem.get(row.id, ())) == 1:
            matched[row.id] = by_stem[row.id][0]
        elif row.id in by_stem:
            ambiguous.append(row.id)
        else:
            missing.append(row.id)
    return matched, missing, ambiguous


def _read(data_dir: Path, ds: DatasetSpec) -> tuple[Path, list[str], list[LabelRow], list[str]]:
    """The CSV's path, header and rows, and the image files of the images folder."""
    if ds.labels is None or ds.images is None:
        raise DataError(f"dataset {ds.source!r} is not of layout labels-csv")
    root = data_dir / ds.source
    folder = root / ds.images
    csv_path = root / ds.labels
    if not folder.is_dir():
        raise DataError(f"the images folder of dataset {ds.source!r} is missing", path=folder,
                        fix="point GRADER_DATA_DIR at the datasets folder, or set images under [dataset] to the "
                        "folder that holds the images (relative to the source folder)")
    if not csv_path.is_file():
        raise DataError(f"the labels CSV of dataset {ds.source!r} is missing", path=csv_path,
                        fix="restore it, or set labels under [dataset] to its path relative to the source folder")
    header, rows = read_labels_csv(csv_path)
    return csv_path, header, rows, [p.name for p in list_images(folder)]


def csv_labels(data_dir: Path, ds: DatasetSpec, *, public_only: bool = False,
               toml: Path | None = None) -> dict[str, str]:
    """The entries of a ``labels-csv`` dataset of ``ds.classes`` with their labels, in CSV order.

    Args:
        data_dir: the datasets folder.
        ds: the dataset spec (``labels``, ``images``, ``classes``).
        public_only: the folder may hold only the public data (``grader data export``): rows
            without an image file are left out instead of refused.
        toml: the challenge's ``challenge.toml``, named as the file to fix for a class without a row.

    Raises:
        DataError: the folder or the CSV is missing or malformed; (unless ``public_only``) a row
            of the challenge's classes names no image file, or an id matches two files.
        ChallengeError: a class has no row with an image file (:func:`grader.core.missing_label_error`:
            the nearest label, the labels that are no class).
    """
    csv_path, _, rows, names = _read(data_dir, ds)
    classes = set(ds.classes)
    mine = [r for r in rows if r.label in classes]
    matched, missing, ambiguous = match_rows(mine, names)
    if (missing or ambiguous) and not public_only:
        said = [f"{len(missing)} ids with no image file in {ds.images}/, e.g. {', '.join(missing[:5])}"
                ] if missing else []
        said += [f"{len(ambiguous)} ids that match two files, e.g. {', '.join(ambiguous[:5])}"] if ambiguous else []
        raise DataError(f"labels CSV of dataset {ds.source!r}: " + "; ".join(said), path=csv_path,
                        fix="restore the missing images, or give the full file name (with its extension) as the id")
    found = {r.label for r in mine if r.id in matched}
    if any(c not in found for c in ds.classes):
        every, _, _ = match_rows(rows, names)  # the labels of every row with an image, for the nearest label
        error = missing_label_error(csv_path, ds.classes, [r.label for r in rows if r.id in every], toml=toml)
        assert error is not None
        raise error
    assert ds.images is not None
    return {csv_entry(ds.images, matched[r.id]): r.label for r in mine if r.id in matched}


def public_csv_text(data_dir: Path, ds: DatasetSpec, keep: Collection[str]) -> str:
    """The labels CSV of ``ds`` with only the rows of the entries in ``keep`` (the public images),
    every column and the header as in the file, in file order: what the public view and the
    export hold beside the public images.

    Raises:
        DataError: as :func:`csv_labels`.
    """
    _, header, rows, names = _read(data_dir, ds)
    assert ds.images is not None
    matched, _, _ = match_rows(rows, names)
    wanted = set(keep)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if row.id in matched and csv_entry(ds.images, matched[row.id]) in wanted:
            writer.writerow(row.cells)
    return out.getvalue()
