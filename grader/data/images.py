"""Decode a team's image files the way a phone or an editor saved them, into plain RGB.

The grader decodes ``new_images/`` here (thumbnails, perceptual hashes); the probe in the
student's kernel holds its own copy of the same conversion (``grader/student/kernel/probe.py`` cannot
import the grader), and ``tests/score/test_images.py`` proves both give the same pixels for every mode.

The conversion, in order (Pillow's documented behaviour in brackets):

1. EXIF orientation applied (``ImageOps.exif_transpose``), so a phone photo stands upright;
2. 16-bit and 32-bit modes scaled to 8 bits instead of clipped: ``I;16*`` and ``I`` divided by
   257 (65535 -> 255); ``F`` likewise, or multiplied by 255 when its values lie within 0..1;
3. alpha (``RGBA``, ``LA``, ``PA``, ``P`` with transparency) composited on white, as the gear
   photos are on white;
4. everything else (``CMYK``, ``P``, ``L``, ``1``, ``YCbCr``) by ``Image.convert("RGB")``.

GIF and WEBP give their first frame. HEIC/HEIF decode when ``pillow-heif`` is installed.
Decoding keeps Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS`` set to its default
while decoding, whatever the process set, and checked here as well), turns
``DecompressionBombWarning`` into an error and never loads truncated files
(``ImageFile.LOAD_TRUNCATED_IMAGES`` is forced off while decoding).
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = ["MAX_PIXELS", "Decoded", "decode", "describe_error", "register_heif", "thumbnail_uri", "to_rgb"]

MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's default Image.MAX_IMAGE_PIXELS
_HEIF_SUFFIXES = (".heic", ".heif")
_heif_registered: bool | None = None


def register_heif() -> bool:
    """Register ``pillow-heif``'s HEIC/HEIF opener with Pillow once; False when not installed."""
    global _heif_registered
    if _heif_registered is None:
        try:
            import pillow_heif  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            _heif_registered = False
        else:
            pillow_heif.register_heif_opener()
            _heif_registered = True
    return _heif_registered


def to_rgb(im: Image.Image) -> Image.Image:
    """The image as 8-bit RGB, upright, alpha on white (the module's conversion, steps 1-4).

    Args:
        im: an opened (loaded or not) Pillow image of any mode.

    Returns:
        A new ``RGB`` image; ``im`` is not changed.

    Raises:
        ValueError: Pillow cannot convert the mode to RGB (``LAB``, ``HSV``).
    """
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block: keep the pixels as stored
        im = im.copy()
    if im.mode.startswith("I;16") or im.mode == "I":
        im = im.convert("I").point(lambda v: v / 257).convert("L")
    elif im.mode == "F":
        low, high = im.getextrema()
        scale = 255 if 0 <= float(low) and float(high) <= 1 else 1 / 257  # type: ignore[arg-type]
        im = im.point(lambda v: v * scale).convert("L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = (im.convert("LA") if im.mode == "La" else im).convert("RGBA")  # no La -> RGBA in Pillow
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


@dataclass(frozen=True)
class Decoded:
    """An image file decoded to RGB, or why it could not be.

    Attributes:
        image: the ``RGB`` image, or None.
        error: None, or a short reason for a person: ``truncated``, ``oversized (...)``,
            ``not an image Pillow can read``, ``is a symbolic link``...
    """

    image: Image.Image | None
    error: str | None


def decode(path: Path) -> Decoded:
    """Open, fully load and convert one image file (see the module docstring).

    Never raises for a bad file: every failure of the file is a :class:`Decoded` with ``error``.
    """
    if path.is_symlink():
        return Decoded(None, "is a symbolic link; put the image itself in new_images/")
    if path.suffix.lower() in _HEIF_SUFFIXES and not register_heif():
        return Decoded(None, "HEIC/HEIF, which this grader cannot read (pillow-heif is not installed)")
    truncated, limit = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    try:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = False, MAX_PIXELS
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    return Decoded(None, _oversized(width, height))
                im.load()
                return Decoded(to_rgb(im), None)
    except Exception as err:  # a bad file is data, never an exception
        return Decoded(None, describe_error(err))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = truncated, limit


def _oversized(width: int, height: int) -> str:
    return f"oversized: {width}x{height} pixels, over the {MAX_PIXELS:,}-pixel limit"


def describe_error(err: Exception) -> str:
    """A short reason for a decoding error, for the new-images table."""
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"oversized: over the {MAX_PIXELS:,}-pixel limit"
    if isinstance(err, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = str(err)
    if "truncated" in text or "broken data stream" in text or "premature end" in text.lower():
        return "truncated"
    return f"{type(err).__name__}: {text}"[:200]


def thumbnail_uri(image: Image.Image, *, size: int = 160) -> str:
    """A PNG ``data:`` URI of ``image`` scaled to at most ``size`` px on a side."""
    small = image.copy()
    small.thumbnail((size, size))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
