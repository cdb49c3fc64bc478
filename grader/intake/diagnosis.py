"""Files that are not usable notebooks, named for what they are: a merge conflict, an HTML page,
R Markdown, a script, another tool's export, a cut-off upload, JSON of the wrong shape; each with
a fix that can work for that kind (:func:`grader.intake.notebook.diagnose` reads the rest)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SAVE_FROM_JUPYTER", "Diagnosis", "not_json", "not_notebook", "wrong_shape"]


@dataclass(frozen=True)
class Diagnosis:
    """What a file that is not a usable notebook is.

    Attributes:
        kind: ``empty``, ``binary``, ``zip``, ``html``, ``conflict``, ``script``, ``jupytext``,
            ``rmarkdown``, ``zeppelin``, ``databricks``, ``not_notebook``, ``truncated``,
            ``json``, ``version``, ``schema`` or ``language``.
        reason: what the file is, in one sentence without a final full stop.
        fix: what the team can do about it, one sentence that can work for this kind.
    """

    kind: str
    reason: str
    fix: str


SAVE_FROM_JUPYTER = "save it from Jupyter with File > Save"
_CONFLICT = re.compile(r"^(<<<<<<<|=======|>>>>>>>)(?: |$)", re.MULTILINE)
_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body|meta|script)\b", re.IGNORECASE)
_PERCENT = re.compile(r"^# (?:%%|In\[[ \d]*\]:)|^# jupyter:", re.MULTILINE)
_RMD = re.compile(r"^```\{r\b", re.MULTILINE)
_PYTHON = re.compile(r"^(?:import \w|from [\w.]+ import |def \w+\(|class \w+|print\(|#!.*python)", re.MULTILINE)


def not_json(text: str, path: Path, err: json.JSONDecodeError) -> Diagnosis:
    """Name a file that is not JSON for what it is, from its text (the order matters)."""
    name = path.name
    markers: dict[str, int] = {}
    for found in _CONFLICT.finditer(text):
        markers.setdefault(found.group(1), text.count("\n", 0, found.start()) + 1)
    if "<<<<<<<" in markers or ">>>>>>>" in markers:
        where = ", ".join(f"`{m}` at line {n}" for m, n in markers.items())
        return Diagnosis("conflict", f"the file holds git merge-conflict markers ({where})",
                         "resolve the conflict: keep one side and delete the markers, then check the JSON "
                         f"(`python -m json.tool {name}` must print it without an error)")
    if text.lstrip().startswith("<") and _HTML.search(text[:5000]):
        return Diagnosis("html", "this is a web page (HTML), not the notebook",
                         "on GitHub use 'Download raw file' (or open 'Raw' and save that page); from Jupyter, "
                         "use File > Download; then upload the .ipynb")
    # jupytext picks its reader by the suffix: the command names the file as it must be renamed
    if path.suffix.lower() == ".rmd" or _RMD.search(text):
        rmd = path.with_suffix(".Rmd").name
        return Diagnosis("rmarkdown", "this is an R Markdown file, not a Jupyter notebook",
                         "copy its Python code into the starter notebook (or rename it to "
                         f"{rmd} and convert it with `jupytext --to notebook {rmd}`) and upload the .ipynb")
    script = path.with_suffix(".py").name
    if _PERCENT.search(text):
        return Diagnosis("jupytext", "this is a Python script with `# %%` cells (Jupytext, VS Code or "
                         "'Download as .py'), not a notebook",
                         f"rename it to {script} and convert it back with `jupytext --to notebook {script}` "
                         "(or open it in VS Code and export it as a Jupyter notebook), then upload the .ipynb")
    if path.suffix.lower() == ".py" or _PYTHON.search(text):
        return Diagnosis("script", "this is a Python script, not a notebook (a notebook is a JSON file)",
                         "paste its code into the cells of the starter notebook (or rename it to "
                         f"{script} and convert it with `jupytext --to notebook {script}`) and upload the .ipynb")
    rest = text[err.pos:]
    # a JSON string cannot hold a raw line break: an unterminated one ran into the end of the file
    if err.pos >= len(text.rstrip()) or not rest.strip("\x00 \t\r\n") or err.msg.startswith("Unterminated string"):
        return Diagnosis("truncated", f"the file was cut off (upload interrupted?): the JSON ends at line "
                         f"{err.lineno} before the notebook does",
                         f"upload the notebook again, or {SAVE_FROM_JUPYTER} and upload that file")
    return Diagnosis("json", f"not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}",
                     f"the file was changed outside Jupyter: repair line {err.lineno} in a text editor "
                     f"(`python -m json.tool {name}` names the error), or upload an earlier copy that opens in Jupyter")


def not_notebook(raw: object) -> Diagnosis | None:
    """Name valid JSON that is not a notebook at all, or None when it has a notebook's shape."""
    if not isinstance(raw, dict):
        return Diagnosis("not_notebook", f"valid JSON, but a {type(raw).__name__}, not a Jupyter notebook "
                         "(a JSON object with a 'cells' list)", "upload the .ipynb that Jupyter saved")
    if "paragraphs" in raw:
        return Diagnosis("zeppelin", "this is an Apache Zeppelin note (a 'paragraphs' list), not a Jupyter notebook",
                         "copy its paragraphs into the cells of the starter notebook and upload the .ipynb")
    if "commands" in raw:
        return Diagnosis("databricks", "this is a Databricks notebook export (a 'commands' list), not a Jupyter "
                         "notebook", "in Databricks use File > Export > IPython Notebook and upload that .ipynb")
    if "cells" in raw or "worksheets" in raw:
        return None
    if "metadata" in raw:
        return Diagnosis("not_notebook", "valid JSON with a notebook's 'metadata' but no 'cells' list: not a "
                         "complete Jupyter notebook", "download it again as a notebook (Colab: File > Download > "
                         "Download .ipynb; VS Code: Save As... .ipynb) and upload that file")
    keys = ", ".join(sorted(str(k) for k in raw)[:5]) or "none"
    return Diagnosis("not_notebook", f"valid JSON without a 'cells' list (its keys: {keys}): not a Jupyter notebook",
                     "upload the .ipynb that Jupyter saved")


_CELL_TYPES = {3: ("code", "markdown", "raw", "heading"), 4: ("code", "markdown", "raw")}


def wrong_shape(raw: dict[str, Any], major: int) -> str | None:
    """The first top-level or cell-type fault, named by its field (nbformat's own readers fail on
    these with an AttributeError or a schema message that lists the whole cell)."""
    sheets = raw.get("worksheets", []) if major == 3 else [raw]
    if not isinstance(sheets, list) or not all(isinstance(w, dict) for w in sheets):
        return "worksheets: not a list of worksheets"
    for w, sheet in enumerate(sheets):
        cells, prefix = sheet.get("cells"), (f"worksheets[{w}]." if major == 3 else "")
        if not isinstance(cells, list):
            return f"{prefix}cells: {type(cells).__name__}, not a list of cells"
        for index, cell in enumerate(cells):
            kind = cell.get("cell_type") if isinstance(cell, dict) else None
            if kind not in _CELL_TYPES[major]:
                return (f"{prefix}cells[{index}].cell_type: {kind!r} is not one of "
                        f"{', '.join(repr(k) for k in _CELL_TYPES[major])}")
    if "metadata" in raw and not isinstance(raw["metadata"], dict):
        return "metadata: not an object"
    return None
