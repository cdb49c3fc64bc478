"""Datasets: listing them and their recorded splits, the hidden test sets and their cache, the
public views a notebook sees, practice splits, near-duplicates, ingestion folders and exports.

Modules:

- ``export``: ``grader data export``.
- ``hidden``: The hidden test set.
- ``idx``: The ``idx`` dataset layout.
- ``imagefiles``: Which files of a folder are images.
- ``images``: Decode a team's image files the way a phone or an editor saved them, into plain RGB.
- ``ingestion``: The ingestion/scoring split.
- ``labelscsv``: Datasets of layout ``labels-csv``: one folder of images and a labels CSV, as Kaggle
  ships them.
- ``mnist``: MNIST beside a challenge's own data (seed 001's comparison, challenge key
  ``[dataset.mnist]``).
- ``neardup``: Near-duplicates across a split.
- ``phash``: The project's perceptual hash, one way for ``new-challenge``, ``validate`` and ``make-split``.
- ``pairsheet``: Contact sheets of near-duplicate pairs, one PNG per perceptual-hash distance, for a
  person to calibrate a dataset's ``near_duplicate_distance`` by looking (``grader data pairs``).
- ``practice``: The practice split.
- ``splitmake``: Hidden test sets free of near-duplicates of the public data (``grader data
  make-split``), and the check that they stay so (``grader validate``).
- ``splits``: Listing a dataset and its recorded splits.
- ``store``: The cache folder's builds.
- ``views``: The public view a notebook sees as ``DATA_DIR``.

Other packages import through this face (``from grader.data import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
