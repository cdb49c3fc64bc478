"""MNIST beside a challenge's own data (seed 001's comparison, challenge key ``[dataset.mnist]``).

Seed 001 asks why a multilayer perceptron does much worse on CIFAR-10 than on MNIST. A challenge
with ``[dataset.mnist]`` gives the notebook MNIST's training part in its view
(``DATA_DIR/mnist/mnist_train.npz``: ``x_train`` and ``y_train`` only, never the test labels) and
keeps the 10,000 test images as a second hidden set: 28 x 28 grayscale PNGs under neutral names
(``00000.png`` ...) in a fixed shuffled order, their labels (``"0"`` to ``"9"``) kept by the grader.
The probe calls the contract's ``mnist`` function (``predict_mnist``) on them when the notebook
defines it; the grader measures its accuracy (:mod:`grader.score.score`, check ``mnist_accuracy``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from grader.core import Challenge, DataError, MnistSpec, Settings
from grader.data.store import SHUFFLE_SEED, HiddenTestSet, build_atomically, digest

__all__ = ["MNIST_CLASSES", "ensure_mnist_test_set", "load_mnist", "write_mnist_view"]

MNIST_CLASSES = [str(d) for d in range(10)]  # the class names of the digits, as the probe's answers


def load_mnist(data_dir: Path, spec: MnistSpec, *, train_only: bool = False) -> dict[str, Any]:
    """The four arrays of ``<data_dir>/<spec.source>``, checked (no pickles are loaded).

    Args:
        data_dir: the data folder.
        spec: the challenge's ``[dataset.mnist]``.
        train_only: read ``x_train`` and ``y_train`` only (a public-only data folder, ``grader data
            export``, holds no test arrays).

    Returns:
        ``{"x_train", "y_train", "x_test", "y_test"}`` (the first two with ``train_only``) as numpy
        arrays: images uint8 of shape (N, 28, 28), labels integers 0-9 of shape (N,).

    Raises:
        DataError: the file is missing, unreadable, or lacks a key or the expected shapes.
    """
    import numpy as np

    path = data_dir / spec.source
    if not path.is_file():
        raise DataError("the MNIST file is missing", path=path,
                        fix="point GRADER_DATA_DIR at the full datasets folder")
    parts = ("train",) if train_only else ("train", "test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {f"{xy}_{part}": np.asarray(npz[f"{xy}_{part}"]) for part in parts for xy in ("x", "y")}
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"the MNIST file cannot be read: {err}", path=path) from err
    for part in parts:
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
            raise DataError(f"the MNIST {part} arrays have shapes {x.shape} ({x.dtype}) and {y.shape}, "
                            "expected (N, 28, 28) uint8 and (N,)", path=path)
        if y.size and (int(y.min()) < 0 or int(y.max()) > 9):
            raise DataError(f"the MNIST {part} labels are not all digits 0-9", path=path)
    return arrays


def write_mnist_view(tmp: Path, data_dir: Path, spec: MnistSpec, *, at: str | None = None) -> Path:
    """Write the public training part, ``x_train`` and ``y_train`` only, to ``tmp/<spec.view>``
    (a compressed npz); the test arrays are never read or written. ``at``: another path under
    ``tmp`` (``grader data export`` writes it under the source's own name, ``mnist/mnist.npz``).

    Returns:
        the file written.

    Raises:
        DataError: as :func:`load_mnist`.
    """
    import numpy as np

    arrays = load_mnist(data_dir, spec, train_only=True)
    out = tmp / (at or spec.view)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:  # a file object: numpy adds no second ".npz"
        np.savez_compressed(fh, x_train=arrays["x_train"], y_train=arrays["y_train"])
    return out


def ensure_mnist_test_set(settings: Settings, challenge: Challenge) -> HiddenTestSet | None:
    """The MNIST test images as the second hidden set (cached), or None without ``[dataset.mnist]``.

    Image ``i`` of the set (``{i:05d}.png``, mode ``L``) is ``x_test[order[i]]``, ``order`` being
    ``range(N)`` shuffled by ``random.Random`` with the grader's fixed seed; its label is
    ``str(y_test[order[i]])``.

    Raises:
        DataError: as :func:`load_mnist`.
    """
    from PIL import Image

    spec = challenge.dataset.mnist
    if spec is None:
        return None
    arrays = load_mnist(settings.require_data_dir(), spec)
    x, y = arrays["x_test"], arrays["y_test"]
    order = list(range(len(y)))
    random.Random(SHUFFLE_SEED).shuffle(order)
    names = tuple(f"{i:05d}.png" for i in range(len(order)))
    labels = tuple(str(int(y[j])) for j in order)
    target = settings.cache_dir / "hidden" / f"mnist-{digest([spec.source, str(len(order)), *labels])}"

    def build(tmp: Path) -> None:
        for name, j in zip(names, order, strict=True):
            Image.fromarray(x[j]).save(tmp / name, format="PNG")  # uint8 (28, 28): mode L

    build_atomically(target, build)
    return HiddenTestSet(images_dir=target, files=names, labels=labels)
