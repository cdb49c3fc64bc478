"""The synthetic "toy" challenge: a project, its data and its notebooks, for the tests and the benchmarks.

No pytest import: ``benchmarks/server.py`` and ``benchmarks/run.py`` build the same project
(tests/conftest.py wraps :func:`build_toy` in the ``make_toy`` fixture). The challenge ``toy``
has three classes (red, green, blue), six 40x30 PNG images of each, a plain colour with a white
rectangle, two of each in the hidden split; :data:`GOOD_TOY_CELLS` grade as a pass on every
criterion of :data:`TOY_RUBRIC`.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.core.settings import Settings

__all__ = ["GOOD_TOY_CELLS", "TOY_CHALLENGE", "TOY_CLASSES", "TOY_COLOURS", "TOY_RUBRIC", "build_toy",
           "new_image", "new_image_png", "toy_notebook", "toy_png", "toy_rubric", "write_submission"]

TOY_CLASSES = ("red", "green", "blue")
TOY_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}

TOY_RUBRIC = """
schema_version = 1
challenge = "toy"

[[criteria]]
id = "runs"
title = "runs"
check = "notebook_runs"
points = 1
fix = "make it run"

[[criteria]]
id = "accuracy"
title = "accuracy"
check = "hidden_accuracy"
points = 4
params = { model = "predict", threshold = 0.9 }
fix = "train better"

[[criteria]]
id = "loss-history"
title = "history"
check = "loss_history"
points = 1
fix = "record HISTORY"

[[criteria]]
id = "loss-plot"
title = "plot"
check = "loss_plot"
points = 1
fix = "plot it"

[[criteria]]
id = "per-class"
title = "per class"
check = "per_class_report"
points = 1
required = false
params = { min_recall = 0.5 }
fix = "balance"

[[criteria]]
id = "new-images"
title = "new images"
check = "new_image_predictions"
points = 1
params = { min_images = 2 }
fix = "add images"

[[criteria]]
id = "transfer-learning"
title = "transfer"
check = "transfer_learning"
points = 1
# the toy notebooks hand in one model as both (predict_transfer = predict)
params = { threshold = 0.5, allow_same_model = true }
fix = "transfer"

[[criteria]]
id = "saved-model"
title = "saved"
check = "saved_model"
points = 1
params = { min_bytes = 10 }
fix = "save"
"""

TOY_CHALLENGE = """
schema_version = 1
id = "toy"
title = "Toy colours"
seed = "{seed}"
rubric = "toy"

[dataset]
source = "toy"
classes = ["red", "green", "blue"]
hidden_split = "splits/toy-hidden.txt"
{contract}
[execution]
cell_timeout_s = {cell_timeout}
deadline_s = {deadline}
probe_timeout_s = 60
max_output_bytes = 100000
"""

_TRANSFER_CONTRACT = """
[contract]
transfer = "predict_transfer"
"""

_CRITERION = "\n[[criteria]]\n"

GOOD_TOY_CELLS = [
    "import os\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
    "CLASS_NAMES = sorted(os.listdir(os.path.join(DATA_DIR, 'toy')))",
    "def predict(images):\n"
    "    out = []\n"
    "    for im in images:\n"
    "        r, g, b = np.asarray(im.convert('RGB')).reshape(-1, 3).mean(0)\n"
    "        out.append(['red', 'green', 'blue'][int(np.argmax([r, g, b]))])\n"
    "    return out\n"
    "predict_transfer = predict",
    "HISTORY = {'loss': [1.0, 0.6, 0.4], 'val_loss': [1.1, 0.7, 0.5]}\n"
    "plt.plot(HISTORY['loss']); plt.plot(HISTORY['val_loss']); plt.show()",
    "np.save(os.path.join(MODEL_DIR, 'model.npy'), np.arange(10.0))",
]


def toy_rubric(*, without: Collection[str] = ()) -> str:
    """:data:`TOY_RUBRIC` less the criteria whose ids are in ``without`` (the others in their order).

    Raises:
        ValueError: an id of ``without`` is not one of the rubric's criteria.
    """
    head, *blocks = TOY_RUBRIC.split(_CRITERION)
    ids = [block.split("\n", 1)[0].removeprefix('id = "').removesuffix('"') for block in blocks]
    unknown = set(without) - set(ids)
    if unknown:
        raise ValueError(f"no criteria {sorted(unknown)} in the toy rubric (it has {ids})")
    return _CRITERION.join([head, *(b for i, b in zip(ids, blocks, strict=True) if i not in without)])


def toy_png(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    """A PNG of ``size`` (width, height, px) in the RGB ``colour`` with a white 9x7 rectangle placed by ``seed``
    (the toy data set's images)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((seed % 20, seed % 10, seed % 20 + 8, seed % 10 + 6), fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def build_toy(root: Path, *, deadline: int = 120, cell_timeout: int = 60, execution: str = "", seed: str = "test",
              without: Collection[str] = ()) -> Settings:
    """Build a toy project (challenge ``toy``, rubric, starter without code, data, hidden split) under ``root``.

    Args:
        root: an empty or missing folder; gets ``project/``, ``data/`` (``cache/`` is the settings' cache).
        deadline: the challenge's ``deadline_s`` (s).
        cell_timeout: the challenge's ``cell_timeout_s`` (s).
        execution: TOML appended to the challenge's ``[execution]`` table (sandbox limits).
        seed: the challenge's ``seed`` (a label: which seed challenge it derives from).
        without: criteria ids left out of the rubric (:func:`toy_rubric`); without ``transfer-learning``
            the challenge has no ``[contract]`` either, so the probe does not run ``predict_transfer``.

    Returns:
        Settings of the project, its data, ``root/cache`` and this interpreter.

    Raises:
        ValueError: an unknown criterion id in ``without``.
    """
    rubric = toy_rubric(without=without)
    project = root / "project"
    data = root / "data"
    (project / "challenges" / "toy").mkdir(parents=True)
    (project / "challenges" / "splits").mkdir(parents=True, exist_ok=True)
    (project / "rubrics").mkdir(parents=True, exist_ok=True)
    contract = "" if "transfer-learning" in without else _TRANSFER_CONTRACT
    (project / "challenges" / "toy" / "challenge.toml").write_text(
        TOY_CHALLENGE.replace("{seed}", seed).replace("{contract}", contract).replace(
            "{deadline}", str(deadline)).replace("{cell_timeout}", str(cell_timeout)) + execution)
    (project / "rubrics" / "toy.toml").write_text(rubric)
    # a starter without code (grader validate wants one; no code, so no boilerplate for the integrity checks)
    nbformat.write(new_notebook(cells=[new_markdown_cell("# toy\n\nYour model goes here.")]),
                   str(project / "challenges" / "toy" / "starter.ipynb"))
    hidden = []
    for cls in TOY_CLASSES:
        folder = data / "toy" / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(6):
            (folder / f"{cls}{i}.png").write_bytes(toy_png(TOY_COLOURS[cls], seed=i * 7 + len(cls)))
        hidden += [f"{cls}/{cls}0.png", f"{cls}/{cls}1.png"]
    (project / "challenges" / "splits" / "toy-hidden.txt").write_text(
        "# toy hidden split\n" + "\n".join(hidden) + "\n")
    return Settings(project_dir=project, data_dir=data, cache_dir=root / "cache",
                    python=sys.executable)


def new_image_png(seed: int) -> bytes:
    """A 64x48 PNG "new image" of a submission: a grey gradient with an orange ellipse shifted by ``seed`` px."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    ImageDraw.Draw(image).ellipse((8 + seed, 6, 40 + seed, 40), fill=(200, 120, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def new_image(path: Path, seed: int) -> None:
    """Write :func:`new_image_png` of ``seed`` to ``path``."""
    path.write_bytes(new_image_png(seed))


def toy_notebook(cells: Sequence[str], *, challenge: str = "toy") -> nbformat.NotebookNode:
    """A notebook for ``challenge``: a ``parameters``-tagged cell ``DATA_DIR = None``, then one code cell
    a string of ``cells``, with the python3 kernelspec."""
    nb: nbformat.NotebookNode = new_notebook(
        cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
               *[new_code_cell(c) for c in cells]],
        metadata={"grader": {"challenge": challenge},
                  "kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )
    return nb


def write_submission(root: Path, name: str, cells: Sequence[str], *, challenge: str = "toy",
                     new_images: int = 2, raw: str | None = None) -> Path:
    """Write a submission folder ``root/name`` with one notebook and ``new_images`` images.

    The notebook is ``{challenge}.ipynb``: :func:`toy_notebook` of ``cells``, or the text ``raw``
    where given; the images are ``new_images/new{i}.png`` (:func:`new_image`, seed ``4 * i``).
    """
    folder = root / name
    (folder / "new_images").mkdir(parents=True, exist_ok=True)
    for i in range(new_images):
        new_image(folder / "new_images" / f"new{i}.png", seed=4 * i)
    path = folder / f"{challenge}.ipynb"
    if raw is not None:
        path.write_text(raw)
        return folder
    nbformat.write(toy_notebook(cells, challenge=challenge), path)
    return folder
