"""Shared fixtures: a toy challenge on synthetic images, notebooks built in memory."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.settings import Settings
from tests.pg import database_url, postgres_server, postgres_url  # noqa: F401  (fixtures: a throwaway PostgreSQL)

REPO = Path(__file__).resolve().parent.parent
TOY_CLASSES = ("red", "green", "blue")
TOY_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def real_data_dir() -> Path | None:
    """The real datasets: $GRADER_DATA_DIR, else ../shared/datasets beside the checkout."""
    candidate = os.environ.get("GRADER_DATA_DIR") or str(REPO.parent / "shared" / "datasets")
    path = Path(candidate)
    return path if (path / "gear").is_dir() else None


def _toy_image(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (40, 30), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((seed % 20, seed % 10, seed % 20 + 8, seed % 10 + 6), fill=(250, 250, 250))
    image.save(path)


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
params = { threshold = 0.5 }
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
seed = "test"
rubric = "toy"

[dataset]
source = "toy"
classes = ["red", "green", "blue"]
hidden_split = "splits/toy-hidden.txt"

[contract]
transfer = "predict_transfer"

[execution]
cell_timeout_s = {cell_timeout}
deadline_s = {deadline}
probe_timeout_s = 60
max_output_bytes = 100000
"""


def build_toy(root: Path, *, deadline: int = 120, cell_timeout: int = 60,
              execution: str = "") -> Settings:
    """Build a toy project (challenge ``toy``, rubric, data, hidden split) under ``root``.

    ``execution`` is appended to the challenge's ``[execution]`` table (sandbox limits).
    """
    project = root / "project"
    data = root / "data"
    (project / "challenges" / "toy").mkdir(parents=True)
    (project / "challenges" / "splits").mkdir(parents=True, exist_ok=True)
    (project / "rubrics").mkdir(parents=True, exist_ok=True)
    (project / "challenges" / "toy" / "challenge.toml").write_text(
        TOY_CHALLENGE.replace("{deadline}", str(deadline)).replace(
            "{cell_timeout}", str(cell_timeout)) + execution)
    (project / "rubrics" / "toy.toml").write_text(TOY_RUBRIC)
    hidden = []
    for cls in TOY_CLASSES:
        folder = data / "toy" / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(6):
            _toy_image(folder / f"{cls}{i}.png", TOY_COLOURS[cls], seed=i * 7 + len(cls))
        hidden += [f"{cls}/{cls}0.png", f"{cls}/{cls}1.png"]
    (project / "challenges" / "splits" / "toy-hidden.txt").write_text(
        "# toy hidden split\n" + "\n".join(hidden) + "\n")
    return Settings(project_dir=project, data_dir=data, cache_dir=root / "cache",
                    python=sys.executable)


@pytest.fixture
def make_toy(tmp_path: Path) -> Callable[..., Settings]:
    """Build a toy project under ``tmp_path`` (see :func:`build_toy`)."""

    def build(**options: object) -> Settings:
        return build_toy(tmp_path, **options)  # type: ignore[arg-type]

    return build


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


def _new_image(path: Path, seed: int) -> None:
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    ImageDraw.Draw(image).ellipse((8 + seed, 6, 40 + seed, 40), fill=(200, 120, 40))
    image.save(path)


def write_submission(root: Path, name: str, cells: Sequence[str], *, challenge: str = "toy",
                     new_images: int = 2, raw: str | None = None) -> Path:
    """Write a submission folder ``root/name`` with one notebook and ``new_images`` images."""
    folder = root / name
    (folder / "new_images").mkdir(parents=True, exist_ok=True)
    for i in range(new_images):
        _new_image(folder / "new_images" / f"new{i}.png", seed=4 * i)
    path = folder / f"{challenge}.ipynb"
    if raw is not None:
        path.write_text(raw)
        return folder
    nb = new_notebook(
        cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
               *[new_code_cell(c) for c in cells]],
        metadata={"grader": {"challenge": challenge},
                  "kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )
    nbformat.write(nb, path)
    return folder


@pytest.fixture
def copy_tree() -> Callable[[Path, Path], Path]:
    def copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    return copy


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite the golden files under tests/golden from the current output")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
