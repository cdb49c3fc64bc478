"""The project's perceptual hash, computed one way for every caller: ``grader new-challenge``'s
check of a coach's photos (:mod:`grader.author.scan`) and the near-duplicate checks of ``grader
validate`` and ``grader data make-split`` (:mod:`grader.data.neardup`). So a pair of images one of
them finds, the other finds too, and splits chosen by ``new-challenge`` pass ``validate``.

The hash is ImageHash's 64-bit ``phash`` (Zauner 2010) of the image converted to RGB: greyscale, a
32 x 32 Lanczos thumbnail, the signs of the 8 x 8 lowest frequencies of its DCT against their
median. A JPEG of :data:`DRAFT_FROM` pixels or more on its shorter side (a photo of a few
megapixels) is decoded at a reduced size (Pillow's ``Image.draft``: the JPEG decoder's own DCT
scaling, 1/8 from 1024 px, no smaller than :data:`DRAFT_SIDE`): a 3000 x 2000 photo decodes at
375 x 250 in about a third of the time, and the thumbnail is 32 x 32 anyway. Such a hash may differ
from the full decode's by a few bits (0 to 2 on 60 synthetic 3000 x 2000 photos; smaller images
differ more, up to 10 bits for 400 x 400 product photos at 1/2, so they are decoded whole), so a
pair with a reduced hash counts within :data:`REDUCED_MARGIN` more bits (:func:`pair_limit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DRAFT_FROM", "DRAFT_SIDE", "REDUCED_MARGIN", "THUMB_SIDE", "decode_for_hash", "pair_limit", "phashes",
           "thumbnail"]

DRAFT_FROM = 1024  # px: a JPEG this large or larger on its shorter side is decoded at a reduced size
DRAFT_SIDE = 128  # px: ... no smaller than this on its shorter side (1/8 from 1024 px; phash reads 32 x 32)
REDUCED_MARGIN = 4  # bits a reduced decode's phash may differ from the full decode's (measured: 0 to 2)
THUMB_SIDE = 32  # px: phash's thumbnail (hash_size 8 x highfreq_factor 4)


def decode_for_hash(im: Image.Image) -> tuple[Image.Image, bool]:
    """Decode an opened image as the hash reads it: a large JPEG at a reduced size (the module
    docstring), any other image whole.

    Args:
        im: a Pillow image just opened, not loaded yet (``draft`` works only before ``load``).

    Returns:
        The decoded image converted to RGB, and whether the decode was reduced.

    Raises:
        OSError, ValueError, SyntaxError: as Pillow's ``load`` for a file that does not decode.
    """
    width, height = im.size
    if im.format == "JPEG" and min(width, height) >= DRAFT_FROM:
        im.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
    reduced = im.size != (width, height)
    im.load()
    return im.convert("RGB"), reduced


def thumbnail(rgb: Image.Image) -> Image.Image:
    """The 32 x 32 greyscale thumbnail ``phash`` reads of an RGB image (ImageHash 4.3:
    ``convert("L")``, then a Lanczos resize, its ``ANTIALIAS``)."""
    from PIL import Image

    return rgb.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)


def phashes(thumbnails: Any) -> list[int]:
    """ImageHash's ``phash`` of each 32 x 32 greyscale thumbnail (uint8 array ``(N, 32, 32)``), as an int.

    Method: imagehash 4.3's ``phash`` (``hash_size`` 8, ``highfreq_factor`` 4) over a stack: SciPy's
    ``fftpack.dct`` along the rows, then the columns; the 8 x 8 lowest frequencies against their median;
    the bits in row-major order, the first the most significant (ImageHash's hex). The same numbers as
    one ``imagehash.phash`` call per image, a tenth of the time.
    """
    import numpy as np
    import scipy.fftpack

    if not len(thumbnails):
        return []
    dct = scipy.fftpack.dct(scipy.fftpack.dct(thumbnails, axis=1), axis=2)
    low = dct[:, :8, :8].reshape(len(thumbnails), 64)
    bits = low > np.median(low, axis=1, keepdims=True)
    return [int.from_bytes(row.tobytes(), "big") for row in np.packbits(bits, axis=1)]


def pair_limit(max_distance: int, *, reduced: bool) -> int:
    """The largest Hamming distance at which two images are near-duplicates: ``max_distance``, and
    :data:`REDUCED_MARGIN` more where either hash was computed on a reduced decode."""
    return max_distance + (REDUCED_MARGIN if reduced else 0)
