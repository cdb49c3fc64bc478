"""Notebooks as the grader handles them: read, validate, tell the challenge, inject parameters.

Parameter injection follows papermill's convention: a new code cell tagged
``injected-parameters`` goes right after the cell tagged ``parameters`` (or first, if there is
none), so the notebook's own defaults are overridden by the grader's values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "MalformedNotebook",
    "challenge_of",
    "inject_parameters",
    "metadata_challenge",
    "read_notebook",
]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


class MalformedNotebook(Exception):
    """The file is not a valid Jupyter notebook (a student's failure, reported as data).

    Attributes:
        path: the notebook file.
        reason: what is wrong, in one line.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_notebook(path: Path) -> NotebookNode:
    """Read and validate a notebook, upgraded to format 4.

    Raises:
        MalformedNotebook: unreadable file, invalid JSON, or a notebook that fails nbformat's
            schema; the reason says which.
    """
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MalformedNotebook(path, f"cannot read the file: {err}") from err
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise MalformedNotebook(
            path, f"not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}"
        ) from err
    if not isinstance(raw, dict) or "cells" not in raw:
        raise MalformedNotebook(path, "JSON without a 'cells' list: not a Jupyter notebook")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises several unrelated types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MalformedNotebook(path, f"not a valid notebook: {first}") from err
    return nb  # type: ignore[no-any-return]


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
