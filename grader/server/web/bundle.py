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
unpacked here. The files are on disk (:mod:`grader.server.web.receive`) and are read in chunks.
Nothing here runs or unpickles what was uploaded.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.intake import size_text, zip_problem
from grader.server.web.nbverdict import verdict
from grader.server.web.precheck import Checked, check_notebook, check_zip, first_problem
from grader.server.web.receive import StagedFile

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
        path: where its bytes are (a staged file, or the zip made here); None when refused.
        problem: why the upload is refused, or None.
    """

    filename: str
    path: Path | None
    problem: str | None = None


def _refused(problem: str) -> Bundle:
    return Bundle(filename="", path=None, problem=problem)


def _named(path: Path, name: str, folder: Path) -> Path:
    """The staged file ``path`` under the team's name for it (a hard link in ``folder/named/``): the
    intake's diagnosis names the file in its fixes (``python -m json.tool toy.ipynb``); ``path``
    itself where the link cannot be made."""
    link = folder / "named" / name
    try:
        link.parent.mkdir(exist_ok=True)
        os.link(path, link)
    except OSError:
        return path
    return link


def _notebook(name: str, path: Path, folder: Path) -> Checked:
    """The notebook file ``path`` checked: refused by :func:`verdict` where it cannot be parsed in
    bounded memory, else by :func:`check_notebook` (the intake's diagnosis of what it is instead,
    the challenge it names, its syntax)."""
    kind, _ = verdict(path)
    if kind in ("ok", "json", "cells"):  # the intake names what it is (UTF-16 and format 3 are notebooks)
        return check_notebook(_named(path, name, folder), name=name)
    why = {"deep": "its JSON is nested too deeply to read",
           "memory": "its JSON takes too much memory to read (millions of tiny values)"}.get(
        kind, "it could not be read")
    return Checked(name=name, problem=f"{name} is not a notebook: {why}. {_FIX_NOTEBOOK}")


def _base_name(name: str) -> str:
    base = PurePosixPath(name.replace("\\", "/")).name.replace("\0", "")
    return base if base not in ("", ".", "..") else "upload"


def bundle(files: Sequence[StagedFile], *, max_bytes: int, folder: Path, challenge: str,
           challenges: Sequence[str]) -> Bundle:
    """Check an upload form's files and make the one file to store.

    Args:
        files: the form's files, on disk (empty file fields already left out).
        max_bytes: the most the upload may hold, in bytes (all files together).
        folder: where a zip made here is written (the form's private folder).
        challenge: the challenge picked in the form (one of ``challenges``).
        challenges: the event's challenges.

    Returns:
        the notebook as uploaded, the zip as uploaded, or for a notebook with images a new zip
        (``folder/bundle.zip``) with the notebook at its top and the images under
        ``new_images/`` (stored as they are: images are compressed already); or the refusal.

    Raises:
        OSError: a staged file cannot be read, or the zip (or a zip's skeleton,
            :func:`grader.server.web.precheck.check_zip`) cannot be written (ENOSPC).
    """
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
        problem = zip_problem(files[0].path, name=names[0]) or first_problem(
            check_zip(files[0].path, name=names[0], folder=folder, challenge=challenge, challenges=challenges),
            picked=challenge, challenges=challenges)
        return _refused(problem) if problem else Bundle(filename=names[0], path=files[0].path)
    if kinds.count(".ipynb") != 1 or ".zip" in kinds:
        return _refused("Upload exactly one notebook (.ipynb), with its new images if you like, or one .zip of your "
                        f"team's folder; this upload has {kinds.count('.ipynb')} notebooks and "
                        f"{kinds.count('.zip')} zips.")
    at = kinds.index(".ipynb")
    problem = first_problem([_notebook(names[at], files[at].path, folder)], picked=challenge, challenges=challenges)
    if problem:
        return _refused(problem)
    others = [(n, f) for i, (n, f) in enumerate(zip(names, files, strict=True)) if i != at]
    if not others:
        return Bundle(filename=names[at], path=files[at].path)
    strange = sorted(n for n, _ in others if PurePosixPath(n).suffix.lower() not in IMAGE_SUFFIXES)
    if strange:
        return _refused(f"Not images: {', '.join(strange[:5])}. Fix: beside the notebook, upload only the new "
                        f"images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if len({n for n, _ in others}) != len(others):
        return _refused("Two images have the same name. Fix: rename one of them.")
    packed = folder / "bundle.zip"
    with zipfile.ZipFile(packed, "x") as archive:
        archive.write(files[at].path, names[at], compress_type=zipfile.ZIP_DEFLATED)
        for name, item in others:
            archive.write(item.path, f"new_images/{name}", compress_type=zipfile.ZIP_STORED)
    return Bundle(filename=PurePosixPath(names[at]).stem + ".zip", path=packed)
