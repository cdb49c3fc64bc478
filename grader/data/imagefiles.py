"""Which files of a folder are images: the suffixes the grader reads, and the listing of a folder's
image files (by name; hidden files left out). The one place both the class-folder layouts
(:mod:`grader.data.splits`) and the labels-CSV layout (:mod:`grader.data.labelscsv`) take them from."""

from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "list_images"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif"})


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name.

    An image file is one whose suffix is in :data:`IMAGE_SUFFIXES` in any case (``IMG_0001.JPG``,
    as phones name them; ``.heic`` too, decoded where ``pillow-heif`` is installed). Hidden
    files are left out: macOS writes ``._IMG_0001.JPG`` beside each photo it zips, and those
    are not images.

    Raises:
        OSError: ``folder`` cannot be listed.
    """
    return sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".") and p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
