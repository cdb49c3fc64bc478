"""Cohort integrity at course size: 300 notebooks of one challenge compared on both signals.

The cohort (``--notebooks``, default 300) is built in memory, reproducibly (``--seed``):

- every real notebook of the project (the reference solutions of every challenge, the example
  team) and, for each, a disguised copy: every name it defines renamed, written back without
  comments or layout by ``ast.unparse``, numbers nudged and a line added to each cell;
- the rest independent notebooks written by a generator: the same task in varied code (data
  loading, a CNN of random depth and widths, a training loop, plots, ``predict``), each a
  different draw of structure, names and numbers;
- per notebook, the per-image predictions of its model on the 424 images of gear's hidden
  test set (12 classes): independent models err image by image with the image's difficulty
  (Beta(0.4, 3)) at their own rate, a copy hands in its original's predictions.

Prints the seconds :func:`grader.integrity.pairs.similar_pairs` took (fingerprinting included), the
pairs compared and the pairs flagged on each signal; the issue asks for under a minute.

Usage: .venv/bin/python benchmarks/integrity.py [--notebooks 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import ast
import builtins
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.integrity.pairs import IntegrityEntry, boilerplate_code, notebook_code, similar_pairs  # noqa: E402

KEEP = {"CLASS_NAMES", "predict", "predict_transfer", "HISTORY", "training_loss", "validation_loss",
        "DATA_DIR", "DEVICE", "PROFILE", "NEW_IMAGES_DIR", "MODEL_DIR", "self"}


def disguised(code: str, rng: random.Random) -> str:
    """``code`` with its names renamed, numbers nudged, a line added per cell; as ``unparse`` writes it."""
    cells = [c for c in code.split("# cell ") if c.strip()]
    trees: list[ast.Module | None] = []
    for cell in cells:
        try:
            trees.append(ast.parse(cell.split("\n", 1)[1] if "\n" in cell else ""))
        except SyntaxError:  # IPython magics: the cell as it is
            trees.append(None)
    nodes = [n for t in trees if t for n in ast.walk(t)]
    defined = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    defined |= {n.name for n in nodes if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    new = {name: f"my_{name}_{rng.randrange(100)}" for name in defined - KEEP - set(dir(builtins))}

    class Mutate(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            node.id = new.get(node.id, node.id)
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            node.name = new.get(node.name, node.name)
            return self.generic_visit(node)

        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            if isinstance(node.value, int) and not isinstance(node.value, bool) and rng.random() < 0.3:
                node.value += rng.choice((-1, 1))
            return node

    out = []
    for cell, tree in zip(cells, trees, strict=True):
        body = ast.unparse(Mutate().visit(tree)) if tree else cell
        out.append(f"print('step {rng.randrange(1000)}')\n{body}\n")
    return "\n".join(out)


def independent(rng: random.Random) -> str:
    """One generated notebook: the task in code of its own."""
    def name(*words: str) -> str:
        return "_".join(rng.choice(w.split("|")) for w in words)

    data, loader, net, opt, hist = (name("train|my|gear|img", "data|set|images"), name("train|batch|my", "loader|iter"),
                                    name("my|gear|small|deep", "net|model|cnn"), name("opt|optimizer|adam", ""),
                                    name("losses|history|curve", ""))
    widths = [rng.choice((8, 16, 24, 32, 48, 64, 96, 128)) for _ in range(rng.randint(2, 5))]
    layers = []
    c_in = 3
    for i, w in enumerate(widths):
        k = rng.choice((3, 5))
        layers.append(f"        self.{name('conv|c|block|layer')}{i} = nn.Conv2d({c_in}, {w}, {k}, padding={k // 2})")
        if rng.random() < 0.5:
            layers.append(f"        self.{name('bn|norm')}{i} = nn.BatchNorm2d({w})")
        c_in = w
    size = rng.choice((32, 48, 64, 96, 128))
    epochs = rng.randint(3, 40)
    lr = rng.choice((0.1, 0.01, 0.003, 0.001, 0.0005))
    cells = [
        "\n".join(rng.sample(["import os", "import numpy as np", "import torch", "from torch import nn",
                              "import matplotlib.pyplot as plt", "from PIL import Image",
                              "import torchvision.transforms as T", "import random"], 6)),
        f"{name('root|base|folder', 'dir|path')} = os.path.join(DATA_DIR, 'gear')\n"
        f"CLASS_NAMES = sorted(os.listdir(os.path.join(DATA_DIR, 'gear')))\n"
        f"print(len(CLASS_NAMES), {rng.choice(['CLASS_NAMES', repr('classes')])})",
        f"tf_{rng.randrange(99)} = T.Compose([T.Resize(({size}, {size})), T.ToTensor()])\n"
        f"{data} = []\nfor {name('idx|k|c', '')}, {name('cls|label|name', '')} in enumerate(CLASS_NAMES):\n"
        f"    pass  # {rng.randrange(10 ** 6)}\n"
        f"{loader} = torch.utils.data.DataLoader({data}, batch_size={rng.choice((8, 16, 32, 64, 100))}, "
        f"shuffle={rng.choice(('True', 'False'))})",
        f"class {name('Gear|My|Small|Tiny', 'Net|Model|CNN')}(nn.Module):\n    def __init__(self):\n"
        f"        super().__init__()\n" + "\n".join(layers) +
        f"\n        self.{name('head|fc|out')} = nn.Linear({c_in}, {rng.choice((12, len(widths) + 10))})\n"
        f"    def forward(self, {name('x|t|inp')}):\n        return {name('x|t|inp')}\n"
        f"{net} = {name('Gear|My', 'Net')}()",
        f"{opt} = torch.optim.{rng.choice(('Adam', 'SGD', 'AdamW', 'RMSprop'))}({net}.parameters(), lr={lr})\n"
        f"{hist} = {{'loss': [], 'val_loss': []}}\n"
        f"for {name('epoch|ep|e', '')} in range({epochs}):\n"
        f"    {name('total|running|acc', 'loss|sum')} = {rng.choice(('0', '0.0'))}\n"
        f"    {hist}['loss'].append({rng.random():.3f})\n    {hist}['val_loss'].append({rng.random():.3f})",
        f"plt.{rng.choice(('plot', 'semilogy'))}({hist}['loss'], label='{name('train|training', 'loss|curve')}')\n"
        f"plt.plot({hist}['val_loss'], label='{name('val|validation', 'loss|curve')}')\n"
        f"plt.{rng.choice(('legend()', 'title(' + repr(name('loss|curves|training', '')) + ')'))}\nplt.show()",
        f"def predict({name('images|ims|batch|pics', '')}):\n"
        f"    return [CLASS_NAMES[{rng.randrange(12)}] for _ in {name('images|ims|batch|pics', '')}]\n"
        f"HISTORY = {hist}",
    ]
    rng.shuffle(cells[4:6])
    return "\n".join(f"# cell {i + 1}\n{c}\n" for i, c in enumerate(cells))


def predictions(models: int, copies: dict[int, int], rng: np.random.Generator, n: int = 424,
                k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, k, n)
    difficulty = rng.beta(0.4, 3.0, n)
    out = np.empty((models, n), dtype=np.int64)
    for j in range(models):
        wrong = rng.random(n) < np.minimum(1.0, difficulty * rng.uniform(0.5, 1.0))
        out[j] = np.where(wrong, np.where(rng.random(n) < 0.5, (labels + 1) % k, (labels + rng.integers(1, k, n)) % k),
                          labels)
    for copy, original in copies.items():
        out[copy] = out[original]
    return labels, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    real = [notebook_code(p) for p in sorted((ROOT / "reference_solutions").glob("*/*.ipynb"))]
    real.append(notebook_code(ROOT / "examples" / "team3" / "gear-cnn.ipynb"))
    codes = [*real, *(disguised(code, rng) for code in real)]
    code_copies = {len(real) + i: i for i in range(len(real))}
    while len(codes) < args.notebooks:
        codes.append(independent(rng))
    codes = codes[:args.notebooks]
    model_copies = {len(codes) - 1 - i: len(codes) - 60 - i for i in range(5)}  # five models handed in twice
    labels, predicted = predictions(len(codes), model_copies, np.random.default_rng(args.seed))
    classes = tuple(f"class{i}" for i in range(12))
    entries = [IntegrityEntry(team=f"team{i:03d}", notebook="gear-cnn.ipynb", challenge="gear-cnn", code=code,
                              predicted=tuple(predicted[i].tolist()), labels=tuple(labels.tolist()), classes=classes)
               for i, code in enumerate(codes)]
    boilerplate = {"gear-cnn": boilerplate_code(ROOT / "challenges" / "gear-cnn" / "starter.ipynb")}
    t0 = time.perf_counter()
    pairs = similar_pairs(entries, boilerplate=boilerplate)
    seconds = time.perf_counter() - t0
    on_code = sum("code" in p.flagged_on for p in pairs)
    on_mistakes = sum("mistakes" in p.flagged_on for p in pairs)
    print(f"integrity: {len(entries)} notebooks, {len(entries) * (len(entries) - 1) // 2} pairs compared "
          f"in {seconds:.1f} s; {len(pairs)} pairs flagged ({on_code} on code, {on_mistakes} on mistakes); "
          f"planted: {len(code_copies)} disguised copies of real notebooks, {len(model_copies)} models handed in twice")
    expected_code = {(b, a) if b < a else (a, b) for a, b in code_copies.items()}
    found_code = {(int(p.a.team[4:]), int(p.b.team[4:])) for p in pairs if "code" in p.flagged_on}
    found_models = {(int(p.a.team[4:]), int(p.b.team[4:])) for p in pairs if "mistakes" in p.flagged_on}
    expected_models = {(min(a, b), max(a, b)) for a, b in model_copies.items()}
    # the project's notebooks (and so their copies) are one author's, for several challenges: alike
    project = set(range(2 * len(real)))
    other = found_code - expected_code
    print(f"integrity: disguised copies found {len(expected_code & found_code)} of {len(expected_code)}; "
          f"other code pairs {len(other)}, of them between two of the project's own notebooks or their copies "
          f"(one author's, for several challenges) {sum(a in project and b in project for a, b in other)}; "
          f"models handed in twice found {len(expected_models & found_models)} of {len(expected_models)}, "
          f"other mistake pairs {len(found_models - expected_models)}")


if __name__ == "__main__":
    main()
