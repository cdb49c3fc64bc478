"""Check what a team uploads before it is queued, and bundle a notebook with its new images.

Checked at once, each refusal a message for the team (never an exception): the total size
(``max_bytes``), the number of files, the kinds of file (one ``.ipynb``, or one ``.zip``, or one
``.ipynb`` with image files for ``new_images/``), a notebook that parses as JSON with a
``cells`` list (nbformat's top-level layout), and a zip that passes the rules of
:func:`grader.intake.intake_upload` (:mod:`grader.unzip`: no traversal, links, encryption or zip
bombs) and holds a notebook. Nothing here runs or unpickles what was uploaded.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.intake import intake_upload
from grader.unzip import size_text

__all__ = ["IMAGE_SUFFIXES", "MAX_FILES", "Bundle", "UploadedFile", "bundle"]

MAX_FILES = 200  # files in one upload form (a notebook and its new images)
# what Pillow opens, and HEIF where pillow-heif is installed (grader.images)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif"})
_FIX_NOTEBOOK = "Fix: upload the .ipynb file as Jupyter saved it."


@dataclass(frozen=True)
class UploadedFile:
    """One file of the upload form: its name (as the browser sent it) and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Bundle:
    """The one file to store for a checked upload (``.ipynb`` or ``.zip``), or why it is refused.

    Attributes:
        filename: the stored file's name; ``data`` its bytes (empty when refused).
        problem: why the upload is refused, or None.
    """

    filename: str
    data: bytes
    problem: str | None = None


def _refused(problem: str) -> Bundle:
    return Bundle(filename="", data=b"", problem=problem)


def _notebook_problem(item: UploadedFile) -> str | None:
    try:
        nb = json.loads(item.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        return f"{item.filename} is not a notebook: it does not parse as JSON ({err}). {_FIX_NOTEBOOK}"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return f"{item.filename} is not a notebook: it has no list of cells. {_FIX_NOTEBOOK}"
    return None


def _zip_problem(data: bytes, filename: str, challenges: Sequence[str], challenge: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="grader-upload-") as tmp:
        path = Path(tmp) / (PurePosixPath(filename).stem + ".zip")
        path.write_bytes(data)
        workspace = Path(tmp) / "work"
        workspace.mkdir()
        found = intake_upload(path, workspace=workspace, challenges=challenges, explicit=challenge)
        if found.problems:
            return "; ".join(found.problems)
        if not found.notebooks:
            return f"{filename} holds no notebook (.ipynb). Fix: zip the team's folder with its notebook in it."
    return None


def _base_name(name: str) -> str:
    base = PurePosixPath(name.replace("\\", "/")).name
    return base if base not in ("", ".", "..") else "upload"


def bundle(files: Sequence[UploadedFile], *, challenge: str, challenges: Sequence[str], max_bytes: int) -> Bundle:
    """Check an upload form's files and make the one file to store.

    Args:
        files: the form's files (empty file fields already left out).
        challenge: the challenge chosen on the form (already checked to be in the event).
        challenges: the event's challenges (to read a zip's notebooks against).
        max_bytes: the most the upload may hold, in bytes (all files together).

    Returns:
        the notebook as uploaded, the zip as uploaded, or for a notebook with images a new zip
        with the notebook at its top and the images under ``new_images/``; or the refusal.
    """
    if not files:
        return _refused("No file was chosen. Fix: choose your notebook (.ipynb) and its new images, or one .zip.")
    total = sum(len(f.data) for f in files)
    if total > max_bytes:
        return _refused(f"The upload holds {size_text(total)}, over the limit of {size_text(max_bytes)}. Fix: leave "
                        "datasets and checkpoints out; the grader gives the data in DATA_DIR.")
    if len(files) > MAX_FILES:
        return _refused(f"The upload holds {len(files)} files, over the limit of {MAX_FILES}. Fix: hand in the "
                        "notebook and at most a few new images.")
    names = [_base_name(f.filename) for f in files]
    kinds = [PurePosixPath(n).suffix.lower() for n in names]
    if kinds == [".zip"]:
        problem = _zip_problem(files[0].data, names[0], challenges, challenge)
        return _refused(problem) if problem else Bundle(filename=names[0], data=files[0].data)
    if kinds.count(".ipynb") != 1 or ".zip" in kinds:
        return _refused("Upload exactly one notebook (.ipynb), with its new images if you like, or one .zip of your "
                        f"team's folder; this upload has {kinds.count('.ipynb')} notebooks and "
                        f"{kinds.count('.zip')} zips.")
    at = kinds.index(".ipynb")
    notebook = UploadedFile(filename=names[at], data=files[at].data)
    problem = _notebook_problem(notebook)
    if problem:
        return _refused(problem)
    others = [(n, f) for i, (n, f) in enumerate(zip(names, files, strict=True)) if i != at]
    if not others:
        return Bundle(filename=notebook.filename, data=notebook.data)
    strange = sorted(n for n, _ in others if PurePosixPath(n).suffix.lower() not in IMAGE_SUFFIXES)
    if strange:
        return _refused(f"Not images: {', '.join(strange[:5])}. Fix: beside the notebook, upload only the new "
                        f"images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if len({n for n, _ in others}) != len(others):
        return _refused("Two images have the same name. Fix: rename one of them.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(notebook.filename, notebook.data)
        for name, item in others:
            archive.writestr(f"new_images/{name}", item.data)
    return Bundle(filename=PurePosixPath(notebook.filename).stem + ".zip", data=buffer.getvalue())
