"""Reading notebooks (every format people save; files that are not notebooks named for what they
are), telling their challenge, injecting parameters, the notes on how a notebook ran."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.core.settings import Settings
from grader.intake.notebook import (
    MalformedNotebook,
    challenge_of,
    diagnose,
    inject_parameters,
    notebook_notes,
    read_notebook,
)
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.report.render import render_scorecard
from grader.sandbox.session import resolve_sandbox
from tests.support.toy import write_submission

ASSETS = Path(__file__).resolve().parents[1] / "assets"
NO_NETWORK = "the sandbox has no network; packages come from the grader's environment"
PIP = "pip install --no-index --quiet grader-test-package-not-on-pypi"
KERNEL_NOTE = "the notebook asks for kernel conda_pytorch_p36; it ran in the grader's Python 3 kernel"
FORMAT3_NOTE = "the notebook is in format 3; the grader upgraded it to format 4 to run it"


def asset(case: str) -> Path:
    return ASSETS / f"notebook-{case}" / "toy.ipynb"


# what the student's own run left in the file (the asset is committed without outputs): a printed
# claim and a figure in the first cell, a result in the second
STORED = (
    [{"name": "stdout", "output_type": "stream", "text": ["test accuracy: 0.99\n"]},
     {"data": {"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElF"
                            "TkSuQmCC", "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
      "metadata": {}, "output_type": "display_data"}],
    [{"data": {"text/plain": ["'accuracy: 0.99'"]}, "execution_count": 42, "metadata": {},
      "output_type": "execute_result"}],
)


def stored_outputs() -> dict[str, Any]:
    """The stored-outputs asset as the student saved it: with its run's outputs and counts."""
    raw: dict[str, Any] = json.loads(asset("stored-outputs").read_text())
    for count, (cell, outputs) in enumerate(zip(raw["cells"], STORED, strict=True), 41):
        cell["outputs"], cell["execution_count"] = outputs, count
    return raw


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


@pytest.mark.parametrize(("case", "minor", "ids"), [
    ("4.0", 0, False), ("4.4", 4, False), ("4.5", 5, True), ("nbformat3", 5, True)])
def test_every_saved_format_reads_and_takes_the_injected_parameters(case: str, minor: int, ids: bool) -> None:
    nb = read_notebook(asset(case))
    assert (nb.nbformat, nb.nbformat_minor) == (4, minor)
    out = inject_parameters(nb, {"DATA_DIR": "/data"})
    nbformat.validate(out)  # cell ids only from 4.5 on, on every cell
    assert [("id" in c) for c in out.cells] == [ids] * len(out.cells)
    tagged = next(i for i, c in enumerate(out.cells) if "parameters" in c.metadata.get("tags", []))
    assert out.cells[tagged + 1].source == "# Parameters injected by the grader\nDATA_DIR = '/data'"


@pytest.mark.parametrize("minor", range(6))
def test_every_4x_minor_version_validates_with_the_injected_cell(minor: int, tmp_path: Path) -> None:
    raw = json.loads(asset("4.4").read_text())
    raw["nbformat_minor"] = minor
    (tmp_path / "toy.ipynb").write_text(json.dumps(raw))
    nb = inject_parameters(read_notebook(tmp_path / "toy.ipynb"), {"A": 1})
    nbformat.validate(nb)
    assert nb.nbformat_minor == minor and [("id" in c) for c in nb.cells] == [minor >= 5] * 4


def test_format_3_is_upgraded_with_its_headings_raw_cells_and_code() -> None:
    nb = read_notebook(asset("nbformat3"))
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "code", "code", "code", "code", "code", "raw"]
    assert nb.cells[0].source == "# Toy colours"
    assert nb.cells[2].source == "DATA_DIR = 'data'\nMODEL_DIR = 'models'"
    assert nb.metadata.grader.challenge == "toy"
    assert notebook_notes(nb) == [FORMAT3_NOTE]


def test_sources_as_lists_of_lines_and_cells_without_metadata_are_read() -> None:
    raw = json.loads(asset("4.0").read_text())
    assert "metadata" not in raw["cells"][2] and isinstance(raw["cells"][1]["source"], list)
    nb = read_notebook(asset("4.0"))
    assert nb.cells[1].source == "DATA_DIR = 'data'\nMODEL_DIR = 'models'"
    assert nb.cells[2].metadata == {}


def test_a_byte_order_mark_and_crlf_line_endings_are_read(tmp_path: Path) -> None:
    # written here: git may normalise the line endings of a committed file
    path = tmp_path / "toy.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + asset("4.4").read_bytes().replace(b"\n", b"\r\n"))
    assert read_notebook(path).cells[1].source == "DATA_DIR = 'data'\nMODEL_DIR = 'models'"
    path.write_bytes(asset("4.4").read_text().encode("utf-16"))  # Windows Notepad's "Unicode"
    assert read_notebook(path).cells[2].source == "print(DATA_DIR)"


def test_stored_outputs_of_the_students_run_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "toy.ipynb"
    path.write_text(json.dumps(stored_outputs()))
    nb = read_notebook(path)
    assert [(c.outputs, c.execution_count) for c in nb.cells] == [([], None), ([], None)]
    assert "0.99" not in nbformat.writes(nb) and "image/png" not in nbformat.writes(nb)


def test_a_kernel_this_machine_lacks_is_a_note() -> None:
    nb = read_notebook(asset("kernelspec"))
    assert notebook_notes(nb) == [KERNEL_NOTE]
    assert notebook_notes(read_notebook(asset("4.4"))) == []  # python3: nothing to say


def test_package_installs_are_notes_numbered_as_the_scorecard_numbers_cells() -> None:
    nb = inject_parameters(read_notebook(asset("pip")), {"A": 1})  # injected first: the pip cell is cell 1
    assert notebook_notes(nb) == [f"cell 1 runs `{PIP}`: {NO_NETWORK}"]
    assert notebook_notes(nb, sandboxed=False) == [
        f"cell 1 runs `{PIP}`: packages should come from the grader's environment (this run was not "
        "sandboxed: it may have installed into it)"]
    shell = new_notebook(cells=[new_code_cell("%%bash\necho hi\npip3 install torch==1.4"),
                                new_code_cell("%pip install -q efficientnet_pytorch"),
                                new_code_cell("# pip install timm\nprint('pip install x')")])
    assert notebook_notes(shell) == [f"cell 1 runs `pip3 install torch==1.4`: {NO_NETWORK}",
                                     f"cell 2 runs `pip install -q efficientnet_pytorch`: {NO_NETWORK}"]
    forms = new_notebook(cells=[new_code_cell("import sys\n!{sys.executable} -m pip install watermark"),
                                new_code_cell("!python3 -m pip install -q tqdm"),
                                new_code_cell("!ls -m pip install")])
    assert notebook_notes(forms) == [f"cell 1 runs `{{sys.executable}} -m pip install watermark`: {NO_NETWORK}",
                                     f"cell 2 runs `python3 -m pip install -q tqdm`: {NO_NETWORK}"]


def test_magics_need_no_note() -> None:
    nb = read_notebook(asset("magics"))
    assert [c.source.splitlines()[0] for c in nb.cells] == ["%matplotlib inline", "%%time", "%%capture captured",
                                                           "%%bash"]
    assert notebook_notes(nb) == []


SAVE = "upload the notebook again, or save it from Jupyter with File > Save"
NOT_NOTEBOOKS = [
    ("empty", "empty", "the file is empty", SAVE),
    ("html", "html", "this is a web page (HTML), not the notebook",
     "on GitHub use 'Download raw file' (or open 'Raw' and save that page); from Jupyter, use File > Download; "
     "then upload the .ipynb"),
    ("conflict", "conflict",
     "the file holds git merge-conflict markers (`<<<<<<<` at line 23, `=======` at line 25, `>>>>>>>` at line 27)",
     "resolve the conflict: keep one side and delete the markers, then check the JSON "
     "(`python -m json.tool toy.ipynb` must print it without an error)"),
    ("truncated", "truncated",
     "the file was cut off (upload interrupted?): the JSON ends at line 23 before the notebook does",
     f"{SAVE} and upload that file"),
    ("invalid-json", "json", "not valid JSON (line 24, column 4): Expecting value",
     "the file was changed outside Jupyter: repair line 24 in a text editor (`python -m json.tool toy.ipynb` "
     "names the error), or upload an earlier copy that opens in Jupyter"),
    ("schema", "schema", "not a valid notebook: cells[1]: 'source' is a required property",
     "repair that field in a text editor, or copy the cells into the starter notebook, and upload the .ipynb"),
    ("script", "script", "this is a Python script, not a notebook (a notebook is a JSON file)",
     "paste its code into the cells of the starter notebook (or rename it to toy.py and convert it with "
     "`jupytext --to notebook toy.py`) and upload the .ipynb"),
    ("jupytext", "jupytext",
     "this is a Python script with `# %%` cells (Jupytext, VS Code or 'Download as .py'), not a notebook",
     "rename it to toy.py and convert it back with `jupytext --to notebook toy.py` (or open it in VS Code and "
     "export it as a Jupyter notebook), then upload the .ipynb"),
    ("rmarkdown", "rmarkdown", "this is an R Markdown file, not a Jupyter notebook",
     "copy its Python code into the starter notebook (or rename it to toy.Rmd and convert it with "
     "`jupytext --to notebook toy.Rmd`) and upload the .ipynb"),
    ("zeppelin", "zeppelin", "this is an Apache Zeppelin note (a 'paragraphs' list), not a Jupyter notebook",
     "copy its paragraphs into the cells of the starter notebook and upload the .ipynb"),
    ("databricks", "databricks",
     "this is a Databricks notebook export (a 'commands' list), not a Jupyter notebook",
     "in Databricks use File > Export > IPython Notebook and upload that .ipynb"),
    ("no-cells", "not_notebook",
     "valid JSON with a notebook's 'metadata' but no 'cells' list: not a complete Jupyter notebook",
     "download it again as a notebook (Colab: File > Download > Download .ipynb; VS Code: Save As... .ipynb) "
     "and upload that file"),
    ("r-kernel", "language", "the notebook is written for R, not Python: the grader runs Python notebooks only",
     "do the challenge in Python, starting from the starter notebook"),
]


@pytest.mark.parametrize(("case", "kind", "reason", "fix"), NOT_NOTEBOOKS, ids=[c[0] for c in NOT_NOTEBOOKS])
def test_files_that_are_not_notebooks_are_named_for_what_they_are(case: str, kind: str, reason: str,
                                                                  fix: str) -> None:
    with pytest.raises(MalformedNotebook) as caught:
        read_notebook(asset(case))
    assert (caught.value.kind, caught.value.reason, caught.value.fix) == (kind, reason, fix)
    found = diagnose(asset(case).read_text(encoding="utf-8-sig"), asset(case))  # the same, as a pure function
    assert found is not None and (found.kind, found.reason, found.fix) == (kind, reason, fix)


@pytest.mark.parametrize(("text", "kind", "reason"), [
    (" \r\n\t", "empty", "the file is empty"),
    ('{"cells": [}', "json", "not valid JSON (line 1, column 12): Expecting value"),
    ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 4, "x": "ab', "truncated",
     "the file was cut off (upload interrupted?): the JSON ends at line 1 before the notebook does"),
    ('{"cells": [], "metadata": {}, "nbf' + "\0" * 40, "truncated",
     "the file was cut off (upload interrupted?): the JSON ends at line 1 before the notebook does"),
    ('{"hello": 1}', "not_notebook", "valid JSON without a 'cells' list (its keys: hello): not a Jupyter notebook"),
    ("[1, 2]", "not_notebook", "valid JSON, but a list, not a Jupyter notebook (a JSON object with a 'cells' list)"),
    ('{"cells": [], "metadata": {}}', "schema", "not a valid notebook: the field 'nbformat' is missing"),
    ('{"cells": [], "metadata": {}, "nbformat": 5, "nbformat_minor": 0}', "version",
     "notebook format 5.0: the grader reads formats 3 and 4"),
    ('{"cells": [{"cell_type": "Code", "source": "", "metadata": {}}], "metadata": {}, "nbformat": 4, '
     '"nbformat_minor": 4}', "schema",
     "not a valid notebook: cells[0].cell_type: 'Code' is not one of 'code', 'markdown', 'raw'"),
    ('{"cells": {}, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}', "schema",
     "not a valid notebook: cells: dict, not a list of cells"),
    ('{"cells": [], "metadata": {"kernelspec": {"name": "julia-1.9", "display_name": "Julia 1.9"}}, '
     '"nbformat": 4, "nbformat_minor": 4}', "language",
     "the notebook is written for Julia, not Python: the grader runs Python notebooks only"),
    # a student's fault, not the grader's (it was "internal error of the grader (RecursionError)")
    ('{"cells": [' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + '], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}',
     "schema", "not a valid notebook: its JSON nests lists or objects thousands of levels deep"),
])
def test_diagnose_names_each_fault(text: str, kind: str, reason: str) -> None:
    found = diagnose(text, Path("toy.ipynb"))
    assert found is not None and (found.kind, found.reason) == (kind, reason)


def test_diagnose_finds_nothing_wrong_with_a_notebook_missing_only_what_the_grader_fills_in() -> None:
    text = ('{"cells": [{"cell_type": "code", "source": ["x = 1\\n", "y = 2"]}], "nbformat": 4, '
            '"nbformat_minor": 5}')  # no metadata, ids, outputs or execution counts
    assert diagnose(text, Path("toy.ipynb")) is None
    assert diagnose(asset("4.5").read_text(), asset("4.5")) is None


def test_binary_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "toy.ipynb"
    path.write_bytes(b"PK\x03\x04\x14\x00\x00\x00")
    with pytest.raises(MalformedNotebook) as caught:
        read_notebook(path)
    assert (caught.value.kind, caught.value.reason, caught.value.fix) == (
        "zip", "this is a zip archive, not the notebook", "unzip it and upload the .ipynb inside")
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    with pytest.raises(MalformedNotebook) as caught:
        read_notebook(path)
    assert (caught.value.kind, caught.value.reason) == ("binary", "not text (byte 0 is not UTF-8): not a notebook")


def test_challenge_from_option_metadata_then_file_name() -> None:
    known = ["gear-cnn", "gear-deep", "cifar10-mlp"]
    nb = new_notebook(metadata={"grader": {"challenge": "gear-deep"}})
    assert challenge_of(Path("any.ipynb"), nb, known, explicit="cifar10-mlp") == "cifar10-mlp"
    assert challenge_of(Path("any.ipynb"), nb, known, explicit=None) == "gear-deep"
    assert challenge_of(Path("team3_gear_cnn.ipynb"), new_notebook(), known, explicit=None) == "gear-cnn"
    assert challenge_of(Path("solution.ipynb"), new_notebook(), known, explicit=None) == known


def test_a_malformed_file_is_a_scorecard_that_names_it_and_its_notes_render(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_toy()
    folder = write_submission(tmp_path, "github-page", [], raw=asset("html").read_text())
    result = grade_submission(discover(folder), settings, GradeOptions())
    nb = result.notebooks[0]
    assert result.verdict == "fail" and nb.execution.status == "malformed"
    assert nb.execution.message == (
        "toy.ipynb: this is a web page (HTML), not the notebook. On GitHub use 'Download raw file' (or open "
        "'Raw' and save that page); from Jupyter, use File > Download; then upload the .ipynb.")
    assert nb.notes == []
    noted = result.model_copy(update={"notebooks": [nb.model_copy(update={"notes": ["kernel <ir>", "b"]})]})
    assert '<ul class="small muted notes"><li>kernel &lt;ir&gt;</li><li>b</li></ul>' in render_scorecard(noted)


@pytest.mark.kernel
def test_real_saved_notebooks_run_with_their_magics_installs_kernels_and_formats(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two kernels: a SageMaker-kernel toy solution with the magics, pip and stored-output cells
    of the assets added, and the format 3 toy solution (one notebook per challenge is graded, so
    each is its own submission)."""
    settings = make_toy()
    features = json.loads(asset("kernelspec").read_text())
    extra = [json.loads(asset(case).read_text())["cells"] for case in ("magics", "pip")]
    extra.append(stored_outputs()["cells"])
    features["cells"][2:2] = extra[0] + extra[1]  # after the markdown and parameters cells
    features["cells"] += extra[2]
    options = GradeOptions(sandbox=resolve_sandbox("auto"))
    run = grade_submission(discover(write_submission(tmp_path, "saved", [], raw=json.dumps(features))),
                           settings, options).notebooks[0]
    old = grade_submission(discover(write_submission(tmp_path, "ipython2", [], raw=asset("nbformat3").read_text())),
                           settings, options).notebooks[0]
    for nb in (run, old):
        assert (nb.verdict, nb.execution.status) == ("pass", "ok"), (nb.execution.message, nb.criteria)
    where = (NO_NETWORK if options.sandbox.kind != "none" else "packages should come from the grader's "
             "environment (this run was not sandboxed: it may have installed into it)")
    # cells: markdown, parameters, injected, four magics, pip (7), the solution, stored outputs, raw
    assert run.notes == [KERNEL_NOTE, f"cell 7 runs `{PIP}`: {where}"]
    assert [c.status for c in run.execution.cells][3:8] == ["ok"] * 5
    assert run.claimed_accuracy is None  # the stored "test accuracy: 0.99" never reached the checks
    assert old.notes == [FORMAT3_NOTE]
