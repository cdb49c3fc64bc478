"""Notebooks as the grader handles them: read, validate, tell the challenge, inject parameters.

Reading accepts every notebook file people actually save: nbformat 3 and every 4.x (upgraded to
4 with nbformat, then validated), a UTF-8 byte order mark, CRLF line endings, ``source`` as a
list of lines, cells without ``metadata``. The outputs a notebook was saved with are dropped on
reading: they are the student's own run, never evidence. A file that is not a notebook is named
for what it is (an HTML page, a merge conflict, a script, another tool's export, a cut-off
upload) by :func:`diagnose` (:mod:`grader.intake.diagnosis`), with a fix that can work.

Parameter injection follows papermill's convention: a new code cell tagged
``injected-parameters`` goes right after the cell tagged ``parameters`` (or first, if there is
none), so the notebook's own defaults are overridden by the grader's values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.intake.diagnosis import SAVE_FROM_JUPYTER, Diagnosis, not_json, not_notebook, wrong_shape

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["GRADER_KERNEL", "INJECTED_TAG", "MalformedNotebook", "PARAMETERS_TAG", "challenge_of", "diagnose",
           "inject_parameters", "metadata_challenge", "notebook_notes", "parse_notebook", "read_notebook",
           "student_code_cells"]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
GRADER_KERNEL = "python3"


class MalformedNotebook(Exception):
    """The file is not a usable Jupyter notebook (a student's failure, reported as data).

    Attributes:
        path: the notebook file.
        reason: what is wrong, in one line.
        kind: the :attr:`grader.intake.diagnosis.Diagnosis.kind`, or ``unreadable`` when the file
            could not be read.
        fix: what to do about it (may be empty).
    """

    def __init__(self, path: Path, reason: str, *, kind: str = "unreadable", fix: str = "") -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.kind = kind
        self.fix = fix


def _repair(raw: dict[str, Any], major: int, minor: int) -> None:
    """Fix in place what does not change the notebook's code: the outputs and prompt numbers of
    the student's own run are dropped (never evidence), a cell without ``metadata`` gets an
    empty one, cell ids follow the minor version (added from 4.5 on, removed before)."""
    raw.setdefault("metadata", {})
    sheets = raw.get("worksheets") if major == 3 else [raw]
    taken: set[str] = set()
    for sheet in sheets if isinstance(sheets, list) else []:
        cells = sheet.get("cells") if isinstance(sheet, dict) else None
        cells = cells if isinstance(cells, list) else []
        for index, cell in enumerate(cells):
            if not isinstance(cell, dict):
                continue
            cell.setdefault("metadata", {})
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
                cell.pop("prompt_number", None)
                if major == 4:
                    cell["execution_count"] = None
            if major == 4 and minor < 5:
                cell.pop("id", None)
            elif major == 4:
                if not isinstance(cell.get("id"), str) or cell["id"] in taken:
                    cell["id"] = next(f"cell-{index}-{n}" for n in range(len(cells) + 1)
                                      if f"cell-{index}-{n}" not in taken)
                taken.add(cell["id"])


def _field(path: Sequence[object]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the notebook"


def _language(nb: NotebookNode) -> str:
    """The notebook's language as its metadata names it (kernelspec, then language_info)."""
    spec = nb.metadata.get("kernelspec") or {}
    info = nb.metadata.get("language_info") or {}
    spec, info = (spec if isinstance(spec, dict) else {}), (info if isinstance(info, dict) else {})
    language = spec.get("language") or info.get("name")
    if not language:
        name = str(spec.get("name", "")).lower()
        language = "R" if name == "ir" else "Julia" if name.startswith("julia") else None
    return str(language or "python")


def _parse(text: str, path: Path) -> NotebookNode | Diagnosis:
    """The notebook in ``text`` (format 4, outputs dropped), or what the text is instead.

    Reads as ``nbformat.reads(text, as_version=4)`` does (the version's ``to_notebook_json``,
    ``nbformat.convert``, ``nbformat.validate``), without its logging of schema errors, after
    :func:`_repair`.
    """
    import nbformat

    if not text.strip():
        return Diagnosis("empty", "the file is empty",
                         f"upload the notebook again, or {SAVE_FROM_JUPYTER}")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        return not_json(text, path, err)
    except RecursionError:  # a student's file, not a fault of the grader: its JSON nests without end
        return Diagnosis("schema", "not a valid notebook: its JSON nests lists or objects thousands of levels deep",
                         f"{SAVE_FROM_JUPYTER}; a notebook saved by Jupyter nests a few levels")
    wrong = not_notebook(raw)
    if wrong is not None:
        return wrong
    fix = "repair that field in a text editor, or copy the cells into the starter notebook, and upload the .ipynb"
    major, minor = raw.get("nbformat"), raw.get("nbformat_minor", 0)
    if major is None:
        return Diagnosis("schema", "not a valid notebook: the field 'nbformat' is missing",
                         'add `"nbformat": 4, "nbformat_minor": 4,` after the opening brace, or copy the cells '
                         "into the starter notebook, and upload the .ipynb")
    if major not in (3, 4) or not isinstance(minor, int):
        return Diagnosis("version", f"notebook format {major!r}.{minor!r}: the grader reads formats 3 and 4",
                         "open it in a current Jupyter and save it with File > Save (it writes format 4)")
    shape = wrong_shape(raw, major)
    if shape:
        return Diagnosis("schema", f"not a valid notebook: {shape}", fix)
    _repair(raw, major, minor)
    try:
        nb = nbformat.versions[major].to_notebook_json(raw, minor=minor)
        nb = nbformat.convert(nb, 4)
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        where = _field(list(err.absolute_path))
        message = err.message if len(err.message) <= 200 else f"{repr(err.instance)[:60]}... does not fit the schema"
        return Diagnosis("schema", f"not a valid notebook: {where}: {message}", fix)
    except Exception as err:  # nbformat's readers and converters raise AttributeError, KeyError...
        return Diagnosis("schema", f"not a valid notebook: a required field is missing or of the wrong type "
                         f"({type(err).__name__}: {err})"[:300], fix)
    language = _language(nb)
    if language.lower() not in ("python", "python3", "ipython", "ipython3"):
        return Diagnosis("language", f"the notebook is written for {language}, not Python: the grader runs "
                         "Python notebooks only", "do the challenge in Python, starting from the starter notebook")
    return nb  # type: ignore[no-any-return]


def diagnose(text: str, path: Path) -> Diagnosis | None:
    """Tell what is wrong with ``text`` as a Jupyter notebook; None when it reads as one.

    Pure: ``path`` is used only for its name and suffix (``.py``, ``.Rmd``). Checks, in order:
    empty or blank; not JSON (merge-conflict markers, an HTML page, R Markdown, a Jupytext or
    percent script, a plain Python script, cut off at the end, invalid elsewhere with line and
    column); JSON of another tool (Zeppelin's ``paragraphs``, Databricks' ``commands``) or
    without ``cells``; an nbformat other than 3 or 4; nbformat's schema (the failing field is
    named); a kernel language other than Python.
    """
    found = _parse(text, path)
    return found if isinstance(found, Diagnosis) else None


def _decode(data: bytes, path: Path) -> str:
    """The text of a notebook file: UTF-8 with or without a byte order mark, or UTF-16 with one.

    Raises:
        MalformedNotebook: a zip archive or other binary data.
    """
    if data.startswith(b"PK\x03\x04"):
        raise MalformedNotebook(path, "this is a zip archive, not the notebook", kind="zip",
                                fix="unzip it and upload the .ipynb inside")
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MalformedNotebook(path, f"not text (byte {err.start} is not UTF-8): not a notebook", kind="binary",
                                fix=f"upload the .ipynb itself, or {SAVE_FROM_JUPYTER}") from err


def read_notebook(path: Path) -> NotebookNode:
    """Read and validate a notebook, upgraded to format 4, without the outputs it was saved with.

    Raises:
        MalformedNotebook: unreadable file or anything :func:`diagnose` finds; ``kind``,
            ``reason`` and ``fix`` say what the file is and what to do.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MalformedNotebook(path, f"cannot read the file: {err.strerror or err}") from err
    return parse_notebook(data, path)


def parse_notebook(data: bytes, path: Path) -> NotebookNode:
    """:func:`read_notebook` of a file's bytes ``data`` already read (an upload held in memory);
    ``path`` is used only for its name and suffix, as :func:`diagnose` uses it (the fixes name
    the file: ``python -m json.tool toy.ipynb``).

    Raises:
        MalformedNotebook: anything :func:`diagnose` finds, or binary data.
    """
    found = _parse(_decode(data, path), path)
    if isinstance(found, Diagnosis):
        raise MalformedNotebook(path, found.reason, kind=found.kind, fix=found.fix)
    return found


# "!pip install", "%pip install", "!python -m pip install", "!{sys.executable} -m pip install", conda, mamba
_PYTHON_M = r"(?:\S*python[\d.]*|\S*\{sys\.executable\}\S*)\s+-m\s+"  # python3 -m, {sys.executable} -m
_INSTALL = re.compile(rf"^\s*[!%]\s*((?:{_PYTHON_M})?(?:pip3?|conda|mamba)\s+install\b.*)$", re.MULTILINE)
_SHELL_CELL = re.compile(r"^\s*%%(?:bash|sh|script\s+(?:ba)?sh)\b")
_SHELL_INSTALL = re.compile(rf"^\s*((?:{_PYTHON_M})?(?:pip3?|conda|mamba)\s+install\b.*)$", re.MULTILINE)


def notebook_notes(nb: NotebookNode, *, sandboxed: bool = True) -> list[str]:
    """What the scorecard should say about how the notebook was run (not failures).

    Cell numbers are the student's own, as on the scorecard's timeline (1-based, markdown cells
    counted, the grader's injected cell not counted): an upgraded format 3, a kernel other than the grader's ``python3``
    (the grader always runs its own Python 3 kernel), and each cell that installs packages with
    ``!pip``/``%pip``/``conda`` (IPython runs ``!`` as a shell command whose failure does not
    raise, so the notebook goes on).
    """
    notes: list[str] = []
    original = nb.metadata.get("orig_nbformat")
    if original is not None and original != 4:
        notes.append(f"the notebook is in format {original}; the grader upgraded it to format 4 to run it")
    spec = nb.metadata.get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    if name and name != GRADER_KERNEL:
        notes.append(f"the notebook asks for kernel {str(name)[:80]}; it ran in the grader's Python 3 kernel")
    where = ("the sandbox has no network; packages come from the grader's environment" if sandboxed else
             "packages should come from the grader's environment (this run was not sandboxed: it may have "
             "installed into it)")
    for number, source in student_code_cells(nb):
        found = (_SHELL_INSTALL if _SHELL_CELL.match(source) else _INSTALL).search(source)
        if found:
            command = " ".join(found.group(1).split())
            command = command if len(command) <= 80 else command[:77] + "..."
            notes.append(f"cell {number} runs `{command}`: {where}")
    return notes


def student_code_cells(nb: NotebookNode) -> Iterator[tuple[int, str]]:
    """Each code cell of ``nb`` with the student's number for it (1-based, markdown cells
    counted, the grader's injected cell not: the scorecard's numbers) and its source."""
    number = 0
    for cell in nb.cells:
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        number += 1
        if cell.get("cell_type") == "code":
            yield number, str(cell.get("source", ""))


def metadata_challenge(nb: NotebookNode) -> str | None:
    """The challenge id the starter wrote into ``metadata.grader.challenge``, if any."""
    meta = nb.get("metadata", {}).get("grader", {})
    value = meta.get("challenge") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else None


def challenge_of(
    path: Path, nb: NotebookNode | None, known: Sequence[str], *, explicit: str | None
) -> str | list[str]:
    """Tell which challenge a notebook is for.

    Order: ``explicit`` (``--challenge``), then notebook metadata, then a known id contained in
    the file name (the longest match wins when one contains another).

    Returns:
        the id, or the list of candidates when there is none or more than one.
    """
    if explicit:
        return explicit
    if nb is not None:
        meta = metadata_challenge(nb)
        if meta:
            return meta
    stem = path.stem.lower().replace("_", "-")
    matches = [c for c in known if c in stem]
    longest = [c for c in matches if not any(c != o and c in o for o in matches)]
    if len(longest) == 1:
        return longest[0]
    return longest or list(known)


def _literal(value: Any) -> str:
    return repr(value) if not isinstance(value, Path) else repr(str(value))


def inject_parameters(nb: NotebookNode, parameters: Mapping[str, Any]) -> NotebookNode:
    """Return a copy of ``nb`` with an ``injected-parameters`` cell setting ``parameters``.

    Values must be literals (str, int, float, bool, None, Path); earlier injected cells are
    replaced.
    """
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    lines = ["# Parameters injected by the grader"]
    lines += [f"{name} = {_literal(value)}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    if out.get("nbformat_minor", 0) < 5:
        cell.pop("id", None)  # cell ids exist from format 4.5 on
    position = 0
    for index, existing in enumerate(out.cells):
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", []):
            position = index + 1
            break
    out.cells.insert(position, cell)
    return out
