"""Starters made from a marked solution (nbgrader's markers), the reference skeleton without one,
and ``grader verify-references``'s check that a starter was made from its current reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.author import FRAMEWORKS, Request, make_starter, new_challenge, split_solution
from grader.core import ChallengeError, Settings
from grader.pipeline import made_from_problem, reference_digest
from tests.author.conftest import write_class_folders

SOLUTION_CODE = """import numpy as np

def predict_batch(batch):
    ### BEGIN SOLUTION
    scores = batch.mean(axis=(1, 2))
    return scores.argmax(axis=1)
    ### END SOLUTION
"""


def _solution() -> dict[str, Any]:
    code = new_code_cell(SOLUTION_CODE, execution_count=3,
                         outputs=[new_output("stream", name="stdout", text="trained\n")])
    notebook = new_notebook(cells=[
        new_markdown_cell("# Fruit\n\nWhy does it work?\n\n### BEGIN SOLUTION\nColour is enough.\n### END SOLUTION"),
        new_code_cell("CLASS_NAMES = ['red', 'green', 'blue']"),
        code,
        new_code_cell("def predict(images):\n    return [CLASS_NAMES[i] for i in predict_batch(images)]"),
    ])
    return json.loads(nbformat.writes(notebook))  # type: ignore[no-any-return]


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else str(cell["source"])


def test_a_marked_solution_gives_the_reference_and_the_starter() -> None:
    made = split_solution(_solution(), challenge_id="fruit", reference_path="reference_solutions/fruit/pytorch.ipynb",
                          command="grader new-challenge fruit --starter-only --framework pytorch")
    assert made.regions == 2
    ref = [_source(c) for c in made.reference["cells"]]
    assert "BEGIN SOLUTION" not in "".join(ref) and "scores = batch.mean(axis=(1, 2))" in ref[2]
    assert "Colour is enough." in ref[0] and made.reference["cells"][2]["outputs"]  # the reference keeps its outputs
    starter = made.starter["cells"]
    assert _source(starter[2]) == ("import numpy as np\n\ndef predict_batch(batch):\n"
                                   "    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert _source(starter[0]) == "# Fruit\n\nWhy does it work?\n\nYOUR ANSWER HERE"
    assert _source(starter[1]) == "CLASS_NAMES = ['red', 'green', 'blue']"  # the contract cells are kept
    assert all(c.get("outputs") == [] and c.get("execution_count") is None for c in starter if c["cell_type"] == "code")
    recorded = made.starter["metadata"]["grader"]
    assert recorded["challenge"] == "fruit"
    assert recorded["made_from"] == {"reference": "reference_solutions/fruit/pytorch.ipynb",
                                     "sha256": reference_digest(made.reference),
                                     "command": "grader new-challenge fruit --starter-only --framework pytorch"}
    assert reference_digest(_solution()) == made.digest  # markers do not count


@pytest.mark.parametrize("source, message", [
    ("x = 1\n", "marks no part"),
    ("### BEGIN SOLUTION\nx = 1\n", "without an END SOLUTION"),
    ("x = 1\n### END SOLUTION\n", "without a BEGIN SOLUTION"),
])
def test_markers_that_do_not_pair_up_are_refused(source: str, message: str) -> None:
    notebook = json.loads(nbformat.writes(new_notebook(cells=[new_code_cell(source)])))
    with pytest.raises(ChallengeError, match=message):
        split_solution(notebook, challenge_id="x", reference_path="r.ipynb", command="c")


def test_verify_fails_a_starter_made_from_another_version_of_its_reference(project: Settings) -> None:
    folder = write_class_folders(project.data_dir / "fruit", {"red": 10, "green": 10})  # type: ignore[operator]
    solution = project.project_dir.parent / "solution.ipynb"
    solution.write_text(nbformat.writes(nbformat.from_dict(_solution())))
    new_challenge(project, Request(challenge_id="fruit", data=folder, solution=solution))
    reference = project.project_dir / "reference_solutions" / "fruit" / "pytorch.ipynb"  # numpy only: the default
    starter = project.project_dir / "challenges" / "fruit" / "starter.ipynb"
    assert "BEGIN SOLUTION" not in reference.read_text() and "YOUR CODE HERE" in starter.read_text()
    assert made_from_problem(starter) is None
    nb = nbformat.read(reference, as_version=4)
    nb.cells[2].source += "\n# tuned"
    nbformat.write(nb, reference)
    problem = made_from_problem(starter)
    assert problem is not None and "another version of" in problem
    assert f"grader new-challenge fruit --starter-only --framework pytorch --solution {solution}" in problem
    nb = nbformat.read(solution, as_version=4)
    nb.cells[2].source += "\n# tuned"
    nbformat.write(nb, solution)
    make_starter(project, "fruit", solution=solution)  # the command the problem names
    assert made_from_problem(starter) is None


@pytest.mark.parametrize("layout", ["class-folders", "labels-csv"])
def test_without_a_solution_the_skeleton_is_the_marked_reference(project: Settings, layout: str) -> None:
    root = project.data_dir / "fruit"  # type: ignore[operator]
    if layout == "class-folders":
        write_class_folders(root, {"red": 10, "green": 10})
    else:
        write_class_folders(root / "flat", {"red": 10, "green": 10})
        (root / "images").mkdir()
        rows = ["id,label"]
        for cls in ("red", "green"):
            for p in sorted((root / "flat" / cls).iterdir()):
                p.rename(root / "images" / f"{cls}-{p.name}")
                rows.append(f"{cls}-{p.stem},{cls}")
        (root / "flat" / "red").rmdir(), (root / "flat" / "green").rmdir(), (root / "flat").rmdir()
        (root / "labels.csv").write_text("\n".join(rows) + "\n")
    criteria = ("accuracy", "loss-curves", "new-images", "transfer-learning", "saved-model")
    for framework in FRAMEWORKS:
        new_challenge(project, Request(challenge_id="fruit", data=root, framework=framework, criteria=criteria,
                                       force=True))
        reference = project.project_dir / "reference_solutions" / "fruit" / f"{framework}.ipynb"
        starter = project.project_dir / "challenges" / "fruit" / "starter.ipynb"
        ref, start = nbformat.read(reference, as_version=4), nbformat.read(starter, as_version=4)
        assert sum("### BEGIN SOLUTION" in c.source for c in ref.cells) == 2  # the model, transfer learning
        for cell in ref.cells + start.cells:
            if cell.cell_type == "code":
                compile(cell.source, f"{framework} cell", "exec")
        assert "predict_transfer" in ref.cells[0].source and "under the `ci` profile" in start.cells[0].source
        assert start.cells[1].metadata["tags"] == ["parameters"]
        assert made_from_problem(starter) is None
        assert start.metadata["grader"]["made_from"]["command"] == (
            f"grader new-challenge fruit --starter-only --framework {framework}")
    reference.write_text(reference.read_text().replace("### END SOLUTION", "# mine\\n### END SOLUTION", 1))
    assert made_from_problem(starter) is not None
    assert make_starter(project, "fruit", framework="tensorflow") == [starter]  # the reference is the solution
    assert made_from_problem(starter) is None and "### BEGIN SOLUTION" in reference.read_text()


def test_a_starter_without_made_from_is_not_checked(tmp_path: Path) -> None:
    starter = tmp_path / "challenges" / "x" / "starter.ipynb"
    starter.parent.mkdir(parents=True)
    starter.write_text(nbformat.writes(new_notebook(cells=[new_code_cell("x = 1")])))
    assert made_from_problem(starter) is None
