"""Contact sheets of near-duplicate pairs, one PNG per perceptual-hash distance, for a person to
calibrate a dataset's ``near_duplicate_distance`` by looking (``grader data pairs``).

Each sheet shows up to ``per_distance`` pairs found at exactly that distance, chosen with a fixed
seed, each pair side by side (left: the hidden or test image, right: its public twin), every
image scaled to the same height, with the pair's number; a text file beside the sheets names
the entries of every numbered pair.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from grader.core import Challenge, Settings, write_atomic
from grader.data.neardup import Pair, cross_pairs, dataset_image_hashes, decoded, within_pairs
from grader.data.splits import Listing

__all__ = ["calibration_pairs", "write_sheets"]

_SEED = 25
_TILE = 128  # pixels: each image fitted into a square of this side
_COLUMNS = 3  # pairs per row


def calibration_pairs(settings: Settings, challenge: Challenge, listing: Listing, *,
                      max_distance: int) -> list[Pair]:
    """The pairs a calibration looks at: for a recorded hidden split (``class-folders``, ``labels-csv``), pairs
    anywhere in the dataset (the split is to be chosen around them); else each test image
    against the training images (the test set is given)."""
    hashes = dataset_image_hashes(settings, challenge.dataset, [e for e, _ in listing.public + listing.hidden])
    if challenge.dataset.layout in ("class-folders", "labels-csv"):
        return within_pairs(hashes, max_distance=max_distance)
    hidden = {e for e, _ in listing.hidden}
    part = type(hashes)
    return cross_pairs(part({e: h for e, h in hashes.phash.items() if e in hidden},
                            {e: h for e, h in hashes.content.items() if e in hidden}),
                       part({e: h for e, h in hashes.phash.items() if e not in hidden},
                            {e: h for e, h in hashes.content.items() if e not in hidden}),
                       max_distance=max_distance)


def write_sheets(settings: Settings, challenge: Challenge, pairs: Sequence[Pair], out: Path, *,
                 per_distance: int = 12) -> list[tuple[int, int, Path]]:
    """Write ``out/d<distance>.png`` for every distance with pairs, and ``out/pairs.txt``.

    Returns:
        ``(distance, pairs found at it, sheet)`` per distance, ascending.
    """
    from PIL import Image, ImageDraw, ImageOps

    out.mkdir(parents=True, exist_ok=True)
    by_distance: dict[int, list[Pair]] = {}
    for pair in pairs:
        by_distance.setdefault(pair.distance, []).append(pair)
    rng = random.Random(_SEED)
    written: list[tuple[int, int, Path]] = []
    lines: list[str] = []
    data_dir = settings.require_data_dir()
    for distance in sorted(by_distance):
        found = by_distance[distance]
        shown = sorted(rng.sample(found, min(per_distance, len(found))))
        entries = sorted({e for p in shown for e in (p.a, p.b)})
        images = {e: ImageOps.pad(im.convert("RGB"), (_TILE, _TILE), color="white",
                                  method=Image.Resampling.NEAREST if max(im.size) < _TILE else Image.Resampling.BICUBIC)
                  for e, im in decoded(data_dir, challenge.dataset, entries)}
        rows = (len(shown) + _COLUMNS - 1) // _COLUMNS
        cell_w, cell_h = 2 * _TILE + 4 + 16, _TILE + 16
        sheet = Image.new("RGB", (_COLUMNS * cell_w, rows * cell_h), "grey")
        draw = ImageDraw.Draw(sheet)
        for n, pair in enumerate(shown):
            x, y = (n % _COLUMNS) * cell_w, (n // _COLUMNS) * cell_h
            sheet.paste(images[pair.a], (x, y + 14))
            sheet.paste(images[pair.b], (x + _TILE + 4, y + 14))
            draw.text((x + 2, y + 1), f"#{n} d={distance}", fill="yellow")
            lines.append(f"d={distance} #{n}: {pair.a}  {pair.b}")
        path = out / f"d{distance:02d}.png"
        sheet.save(path)
        written.append((distance, len(found), path))
    write_atomic(out / "pairs.txt", "\n".join(lines) + "\n")
    return written
