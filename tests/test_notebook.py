"""Reading notebooks, telling their challenge, injecting parameters."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.notebook import MalformedNotebook, challenge_of, inject_parameters, read_notebook


def test_parameters_go_after_the_tagged_cell() -> None:
    nb = new_notebook(cells=[new_markdown_cell("# t"),
                             new_code_cell("DATA_DIR = 'x'", metadata={"tags": ["parameters"]}),
                             new_code_cell("print(DATA_DIR)")])
    out = inject_parameters(nb, {"DATA_DIR": "/data", "PROFILE": "ci"})
    assert [c.source.splitlines()[0] for c in out.cells][2] == "# Parameters injected by the grader"
    assert "DATA_DIR = '/data'\nPROFILE = 'ci'" in out.cells[2].source
    assert out.cells[2].metadata.tags == ["injected-parameters"]
    assert len(nb.cells) == 3  # the input is not changed
    nbformat.validate(out)


def test_without_a_parameters_cell_they_go_first_and_replace_earlier_injections() -> None:
    nb = new_notebook(cells=[new_code_cell("print(1)")])
    once = inject_parameters(nb, {"A": 1})
    twice = inject_parameters(once, {"A": 2})
    assert len(twice.cells) == 2 and twice.cells[0].source.endswith("A = 2")


def test_malformed_json_is_reported_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text('{"cells": [}')
    with pytest.raises(MalformedNotebook, match="not valid JSON \\(line 1, column 12\\)"):
        read_notebook(path)


def test_json_that_is_not_a_notebook_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text('{"hello": 1}')
    with pytest.raises(MalformedNotebook, match="not a Jupyter notebook"):
        read_notebook(path)
    path.write_text('{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}')
    with pytest.raises(MalformedNotebook, match="not a valid notebook"):
        read_notebook(path)


def test_challenge_from_option_metadata_then_file_name() -> None:
    known = ["gear-cnn", "gear-deep", "cifar10-mlp"]
    nb = new_notebook(metadata={"grader": {"challenge": "gear-deep"}})
    assert challenge_of(Path("any.ipynb"), nb, known, explicit="cifar10-mlp") == "cifar10-mlp"
    assert challenge_of(Path("any.ipynb"), nb, known, explicit=None) == "gear-deep"
    assert challenge_of(Path("team3_gear_cnn.ipynb"), new_notebook(), known, explicit=None) == "gear-cnn"
    assert challenge_of(Path("solution.ipynb"), new_notebook(), known, explicit=None) == known
