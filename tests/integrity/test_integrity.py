"""Cohort integrity (issue 19): copied code and shared mistakes, on real notebooks and on
constructed prediction vectors; the per-image predictions kept out of what teams see."""

from __future__ import annotations

import ast
import builtins
import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
from PIL import Image

from grader.core.challenge import load_challenge
from grader.core.settings import Settings
from grader.data.hidden import ensure_hidden_test_set
from grader.integrity.fingerprints import CODE_SHARE, MIN_MATCH_CHARS, code_signals
from grader.integrity.pairs import (
    IntegrityEntry,
    SimilarPair,
    boilerplate_code,
    code_of_cells,
    cohort_pairs,
    mistakes_p_limit,
    notebook_code,
    similar_pairs,
    with_thumbnails,
)
from grader.report.exports import gradescope_results
from grader.report.render import render_index, render_scorecard
from grader.score.measure import measure
from grader.score.scorecard import (
    Environment,
    ExecutionSummary,
    ModelReport,
    NotebookResult,
    SubmissionResult,
    decode_predicted,
    encode_predicted,
)

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "challenges" / "gear-cnn" / "starter.ipynb"
EXAMPLE = ROOT / "examples" / "team3" / "gear-cnn.ipynb"
REFERENCES = ROOT / "reference_solutions" / "gear-cnn"
CONTRACT = {"CLASS_NAMES", "predict", "predict_transfer", "HISTORY", "training_loss", "validation_loss",
            "DATA_DIR", "DEVICE", "PROFILE", "NEW_IMAGES_DIR", "MODEL_DIR", "self"}


def renamed(sources: list[str]) -> list[str]:
    """``sources`` (the code cells of one notebook) with every name the notebook defines renamed
    (variables, functions, classes, parameters and the keywords of calls to its own functions;
    the contract's names kept), written back by ``ast.unparse`` (comments and layout gone)."""
    trees = [ast.parse(source) for source in sources]
    defined: set[str] = set()
    functions: set[str] = set()
    methods = {f.name for t in trees for c in ast.walk(t) if isinstance(c, ast.ClassDef)
               for f in c.body if isinstance(f, ast.FunctionDef)}  # forward, __init__: the framework calls them
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
                functions.add(node.name)
            elif isinstance(node, ast.arg):
                defined.add(node.arg)
    keep = CONTRACT | methods | set(dir(builtins))
    new = {name: f"v{i}_{name[::-1]}" for i, name in enumerate(sorted(defined - keep))}

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            node.id = new.get(node.id, node.id)
            return node

        def visit_arg(self, node: ast.arg) -> ast.AST:
            node.arg = new.get(node.arg, node.arg)
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            node.name = new.get(node.name, node.name)
            return self.generic_visit(node)

        def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
            node.name = new.get(node.name, node.name)
            return self.generic_visit(node)

        def visit_Call(self, node: ast.Call) -> ast.AST:
            if isinstance(node.func, ast.Name) and node.func.id in functions:
                for keyword in node.keywords:
                    keyword.arg = new.get(keyword.arg, keyword.arg) if keyword.arg else None
            return self.generic_visit(node)

    return [ast.unparse(Rename().visit(tree)) for tree in trees]


def entry(team: str, code: str, predicted: tuple[int, ...] = (), labels: tuple[int, ...] = (),
          classes: tuple[str, ...] = ()) -> IntegrityEntry:
    return IntegrityEntry(team=team, notebook="gear-cnn.ipynb", challenge="gear-cnn", code=code,
                          predicted=predicted, labels=labels, classes=classes)


def gear_boilerplate() -> dict[str, str]:
    return {"gear-cnn": boilerplate_code(STARTER)}


def test_the_gear_cnn_references_are_not_flagged_on_code() -> None:
    pairs = similar_pairs([entry("pytorch", notebook_code(REFERENCES / "pytorch.ipynb")),
                           entry("tensorflow", notebook_code(REFERENCES / "tensorflow.ipynb"))],
                          boilerplate=gear_boilerplate())
    assert pairs == []


def test_the_example_with_renamed_variables_is_flagged_on_code() -> None:
    nb = nbformat.read(EXAMPLE, as_version=4)
    copy = nbformat.from_dict(json.loads(json.dumps(nb)))
    code_cells = [c for c in copy.cells if c.cell_type == "code"]
    for cell, source in zip(code_cells, renamed([c.source for c in code_cells]), strict=True):
        cell.source = source
    assert "def predict_image(" not in code_of_cells(copy.cells)  # the renaming happened
    original, disguised = code_of_cells(nb.cells), code_of_cells(copy.cells)
    [pair] = similar_pairs([entry("team3", original), entry("team3-renamed", disguised),
                            entry("pytorch", notebook_code(REFERENCES / "pytorch.ipynb"))],
                           boilerplate=gear_boilerplate())
    assert (pair.a.team, pair.b.team, pair.flagged_on) == ("team3", "team3-renamed", ["code"])
    assert pair.code is not None and pair.code.share_a > 0.9 and pair.code.share_b > 0.9
    assert pair.mistakes is None  # no predictions given
    # the side-by-side view is the code itself, cut into matching and other runs
    assert "".join(s.text for s in pair.code.a_segments) == original
    assert "".join(s.text for s in pair.code.b_segments) == disguised
    assert any(s.matched and "v" in s.text for s in pair.code.b_segments)


def test_the_starter_alone_in_two_notebooks_is_not_flagged() -> None:
    starter = notebook_code(STARTER)
    assert len(starter) > 500
    assert similar_pairs([entry("a", starter), entry("b", starter)], boilerplate=gear_boilerplate()) == []
    # what the two teams wrote beyond it still counts: one shared block of their own is flagged
    block = "\n".join(f"feature_{i} = np.asarray(images[{i}]).mean(axis=({i % 3}, 1)) * {i + 1}.5" for i in range(30))
    [pair] = similar_pairs([entry("a", starter + block), entry("b", starter + block)], boilerplate=gear_boilerplate())
    assert pair.flagged_on == ["code"] and pair.code is not None and pair.code.share > 0.99
    assert not any(s.matched and "NotImplementedError" in s.text for s in pair.code.a_segments)


def test_injected_cells_are_left_out_and_cells_keep_the_students_numbers() -> None:
    cells = [nbformat.v4.new_markdown_cell("# title"),
             nbformat.v4.new_code_cell("DATA_DIR = 'data'", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["injected-parameters"]}),
             nbformat.v4.new_code_cell("y = 2")]
    assert code_of_cells(cells) == "# cell 3\ny = 2\n"


def cohort(seed: int = 7, models: int = 8, n: int = 424, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Independent models on one hidden test set: images of unequal difficulty (Beta(0.4, 3)),
    each model's errors drawn image by image at its own rate, the wrong class from a confusion
    that favours one neighbouring class. Returns (labels (n,), predictions (models, n))."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    difficulty = rng.beta(0.4, 3.0, n)
    out = np.empty((models, n), dtype=np.int64)
    for j in range(models):
        scale = rng.uniform(0.6, 1.0)
        wrong = rng.random(n) < np.minimum(1.0, difficulty * scale)
        neighbour = (labels + 1) % k
        other = (labels + rng.integers(1, k, n)) % k
        out[j] = np.where(wrong, np.where(rng.random(n) < 0.5, neighbour, other), labels)
    return labels, out


def entries_of(labels: np.ndarray, predictions: np.ndarray) -> list[IntegrityEntry]:
    classes = tuple(f"class{i}" for i in range(int(labels.max()) + 1))
    return [entry(f"team{j}", f"x{j} = {j}\n", tuple(int(v) for v in row), tuple(int(v) for v in labels), classes)
            for j, row in enumerate(predictions)]


def test_two_copies_of_one_models_predictions_are_flagged_on_mistakes() -> None:
    labels, predictions = cohort()
    copied = np.vstack([predictions, predictions[2]])  # team8 hands in team2's model
    [pair] = similar_pairs(entries_of(labels, copied))
    assert (pair.a.team, pair.b.team, pair.flagged_on) == ("team2", "team8", ["mistakes"])
    m = pair.mistakes
    assert m is not None and m.shared == m.wrong_a == m.wrong_b and m.shared > 20
    assert m.p_value < mistakes_p_limit(36) and m.expected < m.shared / 3
    assert [(im.label, im.predicted) for im in m.images[:1]] == [
        (f"class{labels[m.images[0].index]}", f"class{predictions[2][m.images[0].index]}")]
    assert all(predictions[2][im.index] != labels[im.index] for im in m.images)


def test_independent_models_at_similar_accuracy_are_not_flagged() -> None:
    labels, predictions = cohort(seed=11)
    accuracy = (predictions == labels).mean(axis=1)
    assert accuracy.max() - accuracy.min() < 0.15  # similar accuracy
    assert similar_pairs(entries_of(labels, predictions)) == []


def test_mistakes_are_compared_only_on_the_same_hidden_test_set() -> None:
    labels, predictions = cohort()
    entries = entries_of(labels, np.vstack([predictions, predictions[2]]))
    shifted = tuple((v + 1) % 12 for v in entries[-1].labels)  # another test set
    entries[-1] = IntegrityEntry(**{**entries[-1].__dict__, "labels": shifted})
    assert similar_pairs(entries) == []


def test_predictions_are_kept_in_result_json_but_not_shown_to_teams(tmp_path: Path) -> None:
    classes = ["axes", "boots", "tents"]
    m = measure(["axes", "boots", "tents", "tents"], ["axes", "tents", "tents", "nothing"], classes)
    report = ModelReport.of("predict", "predict", m, 1.0, correct=[True, False, True, False],
                            predictions=["axes", "tents", "tents", "nothing"])
    assert report.predicted == "022-"
    assert decode_predicted(report.predicted) == [0, 2, 2, -1]
    assert encode_predicted(["c35"], [f"c{i}" for i in range(37)]) == ""  # over 36 classes: not kept
    nb = NotebookResult(notebook="gear-cnn.ipynb", challenge="gear-cnn", profile="ci", verdict="fail", score=0,
                        max_score=1, criteria=[], models=[report],
                        execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1,
                                                   sandboxed=True, probe_status="ok", cells=[]))
    result = SubmissionResult(submission="team3", path="team3", verdict="fail", score=0, max_score=1,
                              notebooks=[nb], started="", finished="",
                              environment=Environment(grader="0", python="3", platform="x", device="cpu",
                                                      sandbox="bwrap"))
    assert json.loads(result.model_dump_json())["notebooks"][0]["models"][0]["predicted"] == "022-"
    assert "022-" not in json.dumps(gradescope_results(result))
    assert "022-" not in render_scorecard(result, audience="team")


def test_the_index_shows_each_pair_as_evidence_escaped_with_thumbnails(tmp_path: Path) -> None:
    labels, predictions = cohort()
    copied = np.vstack([predictions, predictions[2]])
    entries = entries_of(labels, copied)
    evil = "<script>alert(1)</script>"
    code = f"print('{evil}')\n" + "\n".join(f"value_{i} = compute(table[{i}], weight={i} * 2.5)" for i in range(30))
    entries[2] = IntegrityEntry(**{**entries[2].__dict__, "code": code})
    entries[-1] = IntegrityEntry(**{**entries[-1].__dict__, "code": code.replace("value_", "renamed_")})
    [pair] = similar_pairs(entries)
    assert pair.flagged_on == ["code", "mistakes"]
    files = [f"{i:05d}.png" for i in range(len(labels))]
    for name in files[:: 1]:
        Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / name)
    drawn = with_thumbnails(pair, tmp_path, files)
    assert drawn.mistakes is not None and all(im.thumbnail.startswith("data:image/png;base64,")
                                              for im in drawn.mistakes.images)
    html = render_index([], [], pairs=[drawn])
    assert "<h2>Similar pairs</h2>" in html and "a reason to look: code and mistakes" in html
    assert "no score was changed" in html
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<mark>" in html and html.count('<img src="data:image/png;base64,') == len(drawn.mistakes.images)
    assert "Similar pairs" not in render_index([], [])


def test_similar_pairs_of_nothing_or_one_notebook() -> None:
    assert similar_pairs([]) == []
    assert similar_pairs([entry("alone", "x = 1\n")]) == []
    assert isinstance(SimilarPair, type)


def test_a_run_of_the_toy_challenge_compares_its_notebooks_with_thumbnails(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    challenge = load_challenge(settings.project_dir, "toy")
    hidden = ensure_hidden_test_set(settings, challenge)
    classes = list(challenge.dataset.classes)
    wrong = [classes[(classes.index(label) + 1) % 3] for label in hidden.labels]
    answers = [wrong[0], wrong[1], *hidden.labels[2:]]  # the first two images wrong, the same way
    code = "\n".join(f"feature_{i} = np.asarray(images[{i}]).mean(axis=({i % 3}, 1)) * {i + 1}.5" for i in range(40))
    results, notebooks = [], []
    for team in ("red-team", "blue-team"):
        nb_path = tmp_path / team / "toy.ipynb"
        nb_path.parent.mkdir()
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), nb_path)
        m = measure(list(hidden.labels), answers, classes)
        report = ModelReport.of("predict", "predict", m, 1.0,
                                correct=[a == b for a, b in zip(answers, hidden.labels, strict=True)],
                                predictions=answers)
        nb = NotebookResult(notebook="toy.ipynb", challenge="toy", profile="ci", verdict="fail", score=0,
                            max_score=1, criteria=[], models=[report],
                            execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1,
                                                       sandboxed=True, probe_status="ok", cells=[]))
        results.append(SubmissionResult(submission=team, path=team, verdict="fail", score=0, max_score=1,
                                        notebooks=[nb], started="", finished="",
                                        environment=Environment(grader="0", python="3", platform="x",
                                                                device="cpu", sandbox="bwrap")))
        notebooks.append([nb_path])
    [pair] = cohort_pairs(results, notebooks, ["red-team", "blue-team"], settings)
    assert (pair.a.team, pair.b.team, pair.flagged_on) == ("red-team", "blue-team", ["code"])
    assert pair.mistakes is not None and not pair.mistakes.flagged  # 2 of 6 images: no evidence
    assert (pair.mistakes.n, pair.mistakes.shared) == (6, 2)
    assert [(im.index, im.label, im.predicted) for im in pair.mistakes.images] == [
        (0, hidden.labels[0], wrong[0]), (1, hidden.labels[1], wrong[1])]
    assert all(im.thumbnail.startswith("data:image/png;base64,") for im in pair.mistakes.images)


# ---------------------------------------------------------------- the size floor (issue 28)

HELPER = '''def show_predictions(model, images, names, columns=4):
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax, image in zip(axes.ravel(), images):
        label = names[int(np.argmax(model.predict(np.asarray(image)[None] / 255.0, verbose=0)))]
        ax.imshow(image)
        ax.set_title(f"predicted: {label}", fontsize=10)
        ax.axis("off")
'''
OWN_A = '''import numpy as np
import matplotlib.pyplot as plt
from tensorflow import keras
model = keras.models.load_model(MODEL_DIR + "/best.keras")
CLASS_NAMES = sorted(os.listdir(DATA_DIR + "/gear"))
'''
OWN_B = '''import os
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
net = tf.keras.Sequential([tf.keras.layers.Rescaling(1 / 255.0), tf.keras.layers.Flatten(), tf.keras.layers.Dense(12)])
net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
'''


def test_two_short_notebooks_sharing_one_helper_are_not_flagged() -> None:
    """The issue's case: two short notebooks (the starter and a few lines of their own) sharing an
    8-line helper reach the share on it alone, but not the size: no flag."""
    starter = notebook_code(STARTER)
    a, b = starter + OWN_A + "\n" + HELPER, starter + OWN_B + "\n" + HELPER
    [found] = code_signals([a, b], boilerplate_code(STARTER), share=CODE_SHARE, common=10, also={(0, 1)}).values()
    assert found.share >= CODE_SHARE  # the share alone would flag it
    assert 200 <= found.matched_chars < MIN_MATCH_CHARS and not found.flagged
    assert similar_pairs([entry("a", a), entry("b", b)], boilerplate=gear_boilerplate()) == []
    # the same two teams sharing a substantial part of a solution are flagged
    half = notebook_code(REFERENCES / "tensorflow.ipynb")[:3000]
    [pair] = similar_pairs([entry("a", a + half), entry("b", b + half)], boilerplate=gear_boilerplate())
    assert pair.flagged_on == ["code"] and pair.code is not None and pair.code.matched_chars >= MIN_MATCH_CHARS


def test_the_size_floor_is_a_third_of_the_smallest_reference_solution() -> None:
    """MIN_MATCH_CHARS's stated source (fingerprints' docstring): a third (copydetect's display
    threshold, 0.33) of the smallest reference solution's tokenized code."""
    from copydetect.utils import filter_code

    sizes = {path: len(filter_code(notebook_code(path), "x.py", "python")[0])
             for path in sorted((ROOT / "reference_solutions").glob("*/*.ipynb"))}
    smallest = min(sizes.values())
    assert smallest == sizes[ROOT / "reference_solutions" / "gear-classical" / "scikit-learn.ipynb"] == 1083
    assert MIN_MATCH_CHARS == round(0.33 * smallest, -1)


def test_every_reference_solution_copied_with_renamed_names_is_flagged_and_its_starter_is_not() -> None:
    for path in sorted((ROOT / "reference_solutions").glob("*/*.ipynb")):
        challenge = path.parent.name
        nb = nbformat.read(path, as_version=4)
        copy = nbformat.from_dict(json.loads(json.dumps(nb)))
        code_cells = [c for c in copy.cells if c.cell_type == "code"]
        for cell, source in zip(code_cells, renamed([c.source for c in code_cells]), strict=True):
            cell.source = source
        starter = ROOT / "challenges" / challenge / "starter.ipynb"

        codes = {"original": code_of_cells(nb.cells), "renamed": code_of_cells(copy.cells),
                 "starter": notebook_code(starter)}
        pairs = similar_pairs([IntegrityEntry(team=team, notebook=path.name, challenge=challenge, code=code)
                               for team, code in codes.items()], boilerplate={challenge: boilerplate_code(starter)})
        assert [(p.a.team, p.b.team, p.flagged_on) for p in pairs] == [("original", "renamed", ["code"])], path
        assert pairs[0].code is not None and pairs[0].code.share > 0.9, path
