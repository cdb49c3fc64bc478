"""Check what a team uploads before it is queued, and bundle a notebook with its new images.

Checked at once, each refusal a message for the team (never an exception, never a server path):
the total size (``max_bytes``), the number of files, the kinds of file (one ``.ipynb``, or one
``.zip``, or one ``.ipynb`` with image files for ``new_images/``), a notebook that can be parsed
in bounded memory (:mod:`grader.server.web.nbverdict`: nested too deeply, or too many tiny values),
a zip judged from its central directory alone by the rules of
:func:`grader.intake.submissions.intake_upload` (:func:`grader.intake.submissions.zip_problem`: entry count, size
unpacked, expansion, no traversal, links or encryption, a notebook present); then the notebooks the
workers would grade, by :mod:`grader.server.web.precheck`: the intake's own diagnosis of a file
that is no notebook (the one ``grader check`` gives: a web page, conflict markers, a cut-off
upload...), a notebook whose metadata names another challenge than the one picked (both named),
and the first syntax error of its code cells (cell and line). Nothing of a zip's images is
unpacked here. A small upload's files are held in memory (:mod:`grader.server.web.receive`), and its
bundle is made there too: no file is made for it before it is stored; a zip is written to the form's
folder to be judged; a larger upload's files are on disk. Nothing here runs or unpickles what was
uploaded.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from grader.intake import size_text, zip_problem
from grader.server.web.nbverdict import verdict
from grader.server.web.precheck import Checked, check_notebook, check_zip, first_problem
from grader.server.web.receive import ReceivedForm, StagedFile

__all__ = ["IMAGE_SUFFIXES", "MAX_FILES", "Bundle", "bundle"]

MAX_FILES = 200  # files in one upload form (a notebook and its new images)
# what Pillow opens, and HEIF where pillow-heif is installed (grader.data.images)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif"})
_FIX_NOTEBOOK = "Fix: upload the .ipynb file as Jupyter saved it."


@dataclass(frozen=True)
class Bundle:
    """The one file to store for a checked upload (``.ipynb`` or ``.zip``), or why it is refused.

    Attributes:
        filename: the stored file's name (the team's, without folders).
        path: where its bytes are (a staged file, or the zip made here), or None.
        data: its bytes, where they are held in memory, or None.
        problem: why the upload is refused, or None (then one of ``path`` and ``data`` is set).
    """

    filename: str
    path: Path | None = None
    data: bytes | None = None
    problem: str | None = None

    def open(self) -> BinaryIO:
        """Its bytes to read (the caller closes the stream).

        Raises:
            ValueError: the upload was refused (nothing to read).
            OSError: its file cannot be opened.
        """
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is None:
            raise ValueError(f"a refused upload has nothing to store: {self.problem}")
        return self.path.open("rb")


def _refused(problem: str) -> Bundle:
    return Bundle(filename="", problem=problem)


def _as_stored(name: str, staged: StagedFile) -> Bundle:
    return Bundle(filename=name, path=staged.path, data=staged.data)


def _notebook(name: str, staged: StagedFile) -> Checked:
    """The notebook ``staged`` checked: refused by the verdict (:mod:`grader.server.web.nbverdict`)
    where it cannot be parsed in bounded memory, else by :func:`check_notebook` (the intake's
    diagnosis of what it is instead, the challenge it names, its syntax)."""
    source: Path | bytes = staged.data if staged.data is not None else _on_disk(staged)
    kind, _ = verdict(source)
    if kind in ("ok", "json", "cells"):  # the intake names what it is (UTF-16 and format 3 are notebooks)
        return check_notebook(source, name=name, filename=name)
    why = {"deep": "its JSON is nested too deeply to read",
           "memory": "its JSON takes too much memory to read (millions of tiny values)"}.get(
        kind, "it could not be read")
    return Checked(name=name, problem=f"{name} is not a notebook: {why}. {_FIX_NOTEBOOK}")


def _on_disk(staged: StagedFile) -> Path:
    assert staged.path is not None  # a file not held in memory is on disk (receive_form)
    return staged.path


def _base_name(name: str) -> str:
    base = PurePosixPath(name.replace("\\", "/")).name.replace("\0", "")
    return base if base not in ("", ".", "..") else "upload"


def bundle(form: ReceivedForm, *, max_bytes: int, challenge: str, challenges: Sequence[str]) -> Bundle:
    """Check an upload form's files and make the one file to store.

    Args:
        form: the received form (its files in memory or on disk; empty file fields already left
            out). A zip held in memory is written to its folder to be judged.
        max_bytes: the most the upload may hold, in bytes (all files together).
        challenge: the challenge picked in the form (one of ``challenges``).
        challenges: the event's challenges.

    Returns:
        the notebook as uploaded, the zip as uploaded, or for a notebook with images a new zip
        with the notebook at its top and the images under ``new_images/`` (stored as they are:
        images are compressed already), made in memory for a form held there and in the form's
        folder (``bundle.zip``) otherwise; or the refusal.

    Raises:
        OSError: a staged file cannot be read, or a zip (or a zip's skeleton,
            :func:`grader.server.web.precheck.check_zip`) cannot be written (ENOSPC).
    """
    files = form.files
    if not files:
        return _refused("No file was chosen. Fix: choose your notebook (.ipynb) and its new images, or one .zip.")
    total = sum(f.size for f in files)
    if total > max_bytes:
        return _refused(f"The upload holds {size_text(total)}, over the limit of {size_text(max_bytes)}. Fix: leave "
                        "datasets and checkpoints out; the grader gives the data in DATA_DIR.")
    if len(files) > MAX_FILES:
        return _refused(f"The upload holds {len(files)} files, over the limit of {MAX_FILES}. Fix: hand in the "
                        "notebook and at most a few new images.")
    names = [_base_name(f.filename) for f in files]
    kinds = [PurePosixPath(n).suffix.lower() for n in names]
    if kinds == [".zip"]:
        path = form.path_of(0)
        problem = zip_problem(path, name=names[0]) or first_problem(
            check_zip(path, name=names[0], folder=form.workspace(), challenge=challenge, challenges=challenges),
            picked=challenge, challenges=challenges)
        return _refused(problem) if problem else Bundle(filename=names[0], path=path)
    if kinds.count(".ipynb") != 1 or ".zip" in kinds:
        return _refused("Upload exactly one notebook (.ipynb), with its new images if you like, or one .zip of your "
                        f"team's folder; this upload has {kinds.count('.ipynb')} notebooks and "
                        f"{kinds.count('.zip')} zips.")
    at = kinds.index(".ipynb")
    problem = first_problem([_notebook(names[at], files[at])], picked=challenge, challenges=challenges)
    if problem:
        return _refused(problem)
    others = [(n, f) for i, (n, f) in enumerate(zip(names, files, strict=True)) if i != at]
    if not others:
        return _as_stored(names[at], files[at])
    strange = sorted(n for n, _ in others if PurePosixPath(n).suffix.lower() not in IMAGE_SUFFIXES)
    if strange:
        return _refused(f"Not images: {', '.join(strange[:5])}. Fix: beside the notebook, upload only the new "
                        f"images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if len({n for n, _ in others}) != len(others):
        return _refused("Two images have the same name. Fix: rename one of them.")
    filename = PurePosixPath(names[at]).stem + ".zip"
    in_memory = all(f.data is not None for f in files)  # a form held in memory (at most MEMORY_BYTES)
    packed: Path | io.BytesIO = io.BytesIO() if in_memory else form.workspace() / "bundle.zip"
    with zipfile.ZipFile(packed, "x" if isinstance(packed, Path) else "w") as archive:
        _add(archive, names[at], files[at], zipfile.ZIP_DEFLATED)
        for name, item in others:
            _add(archive, f"new_images/{name}", item, zipfile.ZIP_STORED)
    if isinstance(packed, io.BytesIO):
        return Bundle(filename=filename, data=packed.getvalue())
    return Bundle(filename=filename, path=packed)


def _add(archive: zipfile.ZipFile, arcname: str, staged: StagedFile, compress_type: int) -> None:
    """Add ``staged`` to ``archive`` as ``arcname``: its file (its time and mode), or its bytes."""
    if staged.data is None:
        archive.write(_on_disk(staged), arcname, compress_type=compress_type)
    else:  # as zipfile names it: the time now, mode 0o600
        archive.writestr(arcname, staged.data, compress_type=compress_type)
