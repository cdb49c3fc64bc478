"""The ``idx`` dataset layout: MNIST-style idx files (Fashion-MNIST), read with NumPy.

The files are ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` as Zalando publishes them and
Debian's ``dataset-fashion-mnist`` installs them (``/usr/share/datasets/fashion-mnist/``). They
are found in ``<data dir>/<source>/`` first, else in the challenge's ``dataset.idx.system_dir``.

An image is named by its identity ``<side>/<class>/<index>.png``: ``side`` is ``train`` or
``test``, ``index`` its 0-based position in the idx file (5 digits), ``class`` the name of its
integer label (``classes[label]``). The identities are what the hidden split, the public split
and the listing hold; the pixels are read from the idx file, never from a file of that name.

Format (LeCun et al., "The MNIST database", yann.lecun.com/exdb/mnist): a big-endian header,
two zero bytes, a type byte (``0x08``: unsigned byte), the number of dimensions, then each
dimension as a big-endian uint32, then the data in C order.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from grader.core import DataError

if TYPE_CHECKING:
    from PIL import Image

    from grader.core import DatasetSpec, PreparedView

__all__ = [
    "CSV_NAME",
    "IDX_FILES",
    "IdxSet",
    "entry_index",
    "find_idx_folder",
    "idx_entries",
    "idx_images",
    "image_of",
    "kaggle_csv_view",
    "load_side",
    "read_idx",
    "render_idx",
    "write_train_csv",
]

log = logging.getLogger(__name__)

Side = Literal["train", "test"]

# images and labels file of each side, as Zalando names them
IDX_FILES: dict[Side, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Kaggle's file name for the training images (kaggle.com/datasets/zalando-research/fashionmnist)
CSV_NAME = "fashion-mnist_train.csv"
_UBYTE = 0x08
_MAX_BYTES = 1 << 30  # 1 GiB: far above Fashion-MNIST's 47 MB of training images


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """Read one gzip-compressed idx file of unsigned bytes.

    Returns:
        uint8 array of the file's shape: ``(N, H, W)`` for images, ``(N,)`` for labels.

    Raises:
        DataError: the file cannot be read or decompressed, is not an idx file of unsigned
            bytes, or holds more or fewer bytes than its header says.
    """
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read the idx file: {err}", path=path,
                        fix="reinstall the dataset's package (apt-get install --reinstall <package>) or copy "
                        "the published files again") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or raw[3] == 0:
        raise DataError("not an idx file of unsigned bytes (its first four bytes are "
                        f"{raw[:4].hex() or 'missing'}, expected 0000 08 and a dimension count)", path=path)
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"the idx header is cut off ({len(raw)} bytes)", path=path)
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(f"the idx file holds {len(raw) - header} bytes of data, its header says {expected} "
                        f"(shape {shape})", path=path)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@dataclass(frozen=True)
class IdxSet:
    """One side of an idx dataset.

    Attributes:
        images: uint8 array (N, H, W), 0 = background (black), 255 = full ink.
        labels: uint8 array (N,), integer labels (indices into the challenge's classes).
    """

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.uint8]


def find_idx_folder(data_dir: Path | None, ds: DatasetSpec) -> Path:
    """The folder holding the dataset's four idx files: ``<data dir>/<source>/`` if it holds
    them all, else ``ds.idx.system_dir``.

    Raises:
        DataError: neither folder holds all four files; the message names the package to
            install and both folders.
    """
    if ds.idx is None:
        raise DataError(f"dataset {ds.source!r} has layout idx but no [dataset.idx] table")
    names = [name for pair in IDX_FILES.values() for name in pair]
    candidates = ([data_dir / ds.source] if data_dir is not None else []) + [Path(ds.idx.system_dir)]
    for folder in candidates:
        if all((folder / name).is_file() for name in names):
            return folder
    local = f"{data_dir / ds.source}/" if data_dir is not None else f"GRADER_DATA_DIR/{ds.source}/"
    raise DataError(
        f"dataset {ds.source!r} is missing: its idx files ({', '.join(names)}) are neither in "
        f"{local} (GRADER_DATA_DIR/{ds.source}/) nor in {ds.idx.system_dir}/",
        path=candidates[0],
        fix=f"install the Debian package {ds.idx.package} (apt-get install {ds.idx.package}, as ./setup.sh "
        f"does where it is root), or copy the four files into GRADER_DATA_DIR/{ds.source}/",
    )


@lru_cache(maxsize=8)
def _load(images: Path, labels: Path, _stamp: tuple[int, int, int, int]) -> IdxSet:
    log.info("reading %s and %s", images, labels)
    return IdxSet(images=read_idx(images), labels=read_idx(labels))


def load_side(folder: Path, side: Side, ds: DatasetSpec) -> IdxSet:
    """Read and check one side (``train`` or ``test``) of the idx dataset in ``folder``; read
    once per process while the files are unchanged (size and modification time).

    Checks: the images are ``(N, H, W)`` with ``(H, W) == ds.idx.shape``, one label per image,
    every label an index of ``ds.classes``, and exactly ``ds.idx.train_per_class`` (or
    ``test_per_class``) images of each class (Fashion-MNIST: 6,000 and 1,000, so 60,000 and
    10,000 in all, as Zalando's README publishes them).

    Raises:
        DataError: a file is unreadable or malformed, or a check fails (the message names it).
    """
    assert ds.idx is not None  # validated at load: layout idx needs [dataset.idx]
    image_path, label_path = (folder / name for name in IDX_FILES[side])
    stats = [os.stat(p) for p in (image_path, label_path)]
    data = _load(image_path, label_path, (stats[0].st_size, stats[0].st_mtime_ns, stats[1].st_size,
                                          stats[1].st_mtime_ns))
    per_class = ds.idx.train_per_class if side == "train" else ds.idx.test_per_class
    want_n = per_class * len(ds.classes)
    height, width = ds.idx.shape
    if data.images.ndim != 3 or data.images.shape[1:] != (height, width):
        raise DataError(f"{side} images have shape {data.images.shape}, expected (N, {height}, {width})",
                        path=image_path)
    if data.labels.ndim != 1 or data.labels.shape[0] != data.images.shape[0]:
        raise DataError(f"{side}: {data.labels.shape} labels for {data.images.shape[0]} images", path=label_path)
    if data.images.shape[0] != want_n:
        raise DataError(f"{side} holds {data.images.shape[0]:,} images, the published count is {want_n:,}",
                        path=image_path, fix="reinstall the dataset: the files are not the published ones")
    found = np.bincount(data.labels, minlength=len(ds.classes)).tolist()
    if found != [per_class] * len(ds.classes):
        raise DataError(f"{side} labels per class are {found}, the published count is {per_class:,} "
                        f"for each of {len(ds.classes)} classes", path=label_path)
    return data


def idx_entries(side: Side, labels: npt.NDArray[np.uint8], classes: list[str]) -> tuple[tuple[str, str], ...]:
    """The ``(identity, class)`` pair of every image of one side, in file order
    (``("test/ankle_boot/00000.png", "ankle_boot")``, ...)."""
    return tuple((f"{side}/{classes[int(v)]}/{i:05d}.png", classes[int(v)]) for i, v in enumerate(labels))


def entry_index(entry: str) -> tuple[Side, int]:
    """The side and 0-based file position of an identity ``<side>/<class>/<index>.png``.

    Raises:
        DataError: the entry is not of that form.
    """
    parts = entry.split("/")
    if len(parts) != 3 or parts[0] not in IDX_FILES or not parts[2].endswith(".png") or not parts[2][:-4].isdigit():
        raise DataError(f"not an idx image identity (<train|test>/<class>/<index>.png): {entry!r}")
    side: Side = "train" if parts[0] == "train" else "test"
    return side, int(parts[2][:-4])


def image_of(data: IdxSet, index: int) -> Image.Image:
    """Image ``index`` of one side as an 8-bit grayscale PIL image (mode ``L``), pixels as stored."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(data.images[index]), mode="L")


def write_train_csv(path: Path, data: IdxSet, indices: list[int]) -> None:
    """Write Kaggle's CSV of the images at ``indices`` (in that order): header
    ``label,pixel1,...,pixel<H*W>``, then one row per image, its integer label then its pixels
    in row-major order, as Kaggle's ``fashion-mnist_train.csv`` has them."""
    pixels = data.images.shape[1] * data.images.shape[2]
    header = "label," + ",".join(f"pixel{i}" for i in range(1, pixels + 1))
    rows = np.empty((len(indices), pixels + 1), dtype=np.uint8)
    rows[:, 0] = data.labels[indices]
    rows[:, 1:] = data.images[indices].reshape(len(indices), pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    # np.savetxt formats each row with one % operation: about 10 s for 60,000 rows of 785 values
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")


def idx_images(data_dir: Path, ds: DatasetSpec, entries: Iterable[str]) -> Iterator[tuple[str, Image.Image]]:
    """Each identity of ``entries`` of an ``idx`` dataset with its image, 8-bit grayscale."""
    folder = find_idx_folder(data_dir, ds)
    sides = {side: load_side(folder, side, ds) for side in IDX_FILES}
    for entry in entries:
        side, index = entry_index(entry)
        yield entry, image_of(sides[side], index)


def kaggle_csv_view(tmp: Path, view: PreparedView, public: tuple[tuple[str, str], ...], data_dir: Path,
                    ds: DatasetSpec) -> None:
    """Kaggle's Fashion-MNIST layout: ``<view>/fashion-mnist_train.csv`` of the public images, in
    file order (:func:`write_train_csv`)."""
    data = load_side(find_idx_folder(data_dir, ds), "train", ds)
    indices = sorted(entry_index(e)[1] for e, _ in public)
    write_train_csv(tmp / view.name / CSV_NAME, data, indices)


def render_idx(tmp: Path, names: Sequence[str], entries: Sequence[str], data_dir: Path, ds: DatasetSpec) -> None:
    """Write each idx image of ``entries`` as an 8-bit grayscale PNG named by ``names``."""
    for name, (_, image) in zip(names, idx_images(data_dir, ds, entries), strict=True):
        image.save(tmp / name)
