"""A starter notebook made from a solution notebook, as nbgrader's ``generate_assignment`` and
``otter assign`` make the student's version: the solution's marked parts replaced, the rest kept.

Markers are nbgrader's: in a code cell, the lines between ``### BEGIN SOLUTION`` and ``### END
SOLUTION`` become ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (nbgrader's own stub, at
the marker's indentation); in a markdown cell, the lines between them become ``YOUR ANSWER HERE``.
The reference is the solution with the marker lines removed. The starter's outputs are cleared
and its metadata records the reference it was made from (``grader.made_from``: the reference's
path, its :func:`grader.pipeline.reference_digest` and the command that remakes the starter),
which ``grader verify-references`` checks.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from grader.core import ChallengeError
from grader.pipeline import SOLUTION_MARKER, reference_digest

__all__ = ["CODE_STUB", "MARKDOWN_STUB", "Made", "split_solution"]

CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's code stub for Python
MARKDOWN_STUB = "YOUR ANSWER HERE"  # nbgrader's markdown stub
_BEGIN = re.compile(r"^(\s*)#+\s*BEGIN SOLUTION\s*$")


@dataclass(frozen=True)
class Made:
    """A reference and the starter made from it.

    Attributes:
        reference: the solution with its marker lines removed (nbformat 4, as a dict).
        starter: the marked parts replaced, outputs cleared, ``grader.made_from`` recorded.
        regions: marked parts replaced.
        digest: the reference's :func:`grader.pipeline.reference_digest`.
    """

    reference: dict[str, Any]
    starter: dict[str, Any]
    regions: int
    digest: str


def _text(source: object) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _split_cell(text: str, *, code: bool, where: str) -> tuple[str, str, int]:
    """The cell's source without marker lines, with its marked parts replaced, and how many."""
    kept: list[str] = []
    stubbed: list[str] = []
    inside = False
    regions = 0
    for line in text.splitlines(keepends=True):
        begin = _BEGIN.match(line)
        if SOLUTION_MARKER.match(line):
            if begin is not None and inside:
                raise ChallengeError(f"{where}: BEGIN SOLUTION inside a marked part", fix="close it with "
                                     "### END SOLUTION first")
            if begin is None and not inside:
                raise ChallengeError(f"{where}: END SOLUTION without a BEGIN SOLUTION before it",
                                     fix="mark the solution's lines with ### BEGIN SOLUTION above them")
            if begin is not None:
                indent = begin.group(1)
                stub = [f"{indent}{CODE_STUB[0]}\n", f"{indent}{CODE_STUB[1]}\n"] if code else [f"{MARKDOWN_STUB}\n"]
                stubbed += stub
                regions += 1
            inside = begin is not None
            continue
        kept.append(line)
        if not inside:
            stubbed.append(line)
    if inside:
        raise ChallengeError(f"{where}: BEGIN SOLUTION without an END SOLUTION", fix="close the marked part with "
                             "### END SOLUTION")
    return "".join(kept), "".join(stubbed).rstrip("\n"), regions


def split_solution(solution: dict[str, Any], *, challenge_id: str, reference_path: str, command: str) -> Made:
    """Make the reference and the starter of ``challenge_id`` from a marked solution.

    Args:
        solution: the solution notebook (nbformat 4, as nbformat reads it).
        challenge_id: the challenge (``metadata.grader.challenge`` of both notebooks).
        reference_path: where the reference is written, relative to the project folder
            (``reference_solutions/<id>/<framework>.ipynb``).
        command: the command that remakes the starter (``grader new-challenge ID --starter-only ...``).

    Raises:
        ChallengeError: no marked part at all (the starter would be the solution), or markers
            that do not pair up (the cell is named).
    """
    reference = copy.deepcopy(solution)
    starter = copy.deepcopy(solution)
    regions = 0
    for number, (ref_cell, cell) in enumerate(zip(reference["cells"], starter["cells"], strict=True), 1):
        if cell.get("cell_type") not in ("code", "markdown"):
            continue
        kept, stubbed, found = _split_cell(_text(cell.get("source", "")), code=cell["cell_type"] == "code",
                                           where=f"cell {number} ({cell['cell_type']})")
        regions += found
        ref_cell["source"] = kept.rstrip("\n") if found else ref_cell["source"]
        cell["source"] = stubbed if found else _text(cell.get("source", ""))
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    if not regions:
        raise ChallengeError("the solution marks no part to leave out: its starter would be the solution itself",
                             fix="put ### BEGIN SOLUTION and ### END SOLUTION lines around the code the students "
                             "write (the model, its training), as nbgrader marks a solution")
    digest = reference_digest(reference)
    for notebook in (reference, starter):
        notebook.setdefault("metadata", {}).setdefault("grader", {})["challenge"] = challenge_id
    starter["metadata"]["grader"]["made_from"] = {"reference": reference_path, "sha256": digest, "command": command}
    reference["metadata"]["grader"].pop("made_from", None)
    return Made(reference=reference, starter=starter, regions=regions, digest=digest)
