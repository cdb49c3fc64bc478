"""Written answers: the markdown cells where a team answers a challenge's questions, read from the
notebook as submitted.

A rubric's coach-graded criterion (``check = "coach_graded"``, :mod:`grader.score.checks.answers`)
asks a question; the starter notebook writes it as a markdown cell whose first line is the heading
``### Question (<criterion id>)``, followed by the answer cell: a markdown cell tagged
``answer:<criterion id>`` whose text is the placeholder ``*YOUR ANSWER HERE*`` (nbgrader's words).

Where the answer is found (:func:`read_answers`):

1. the first markdown (or raw) cell tagged ``answer:<id>``;
2. else, for notebooks that lost their tags (copied into a new notebook, saved by another editor),
   the first markdown cell after the markdown cell whose first line is the heading
   ``Question (<id>)`` at any level (``#`` to ``######``), unless another question's heading or
   another answer's tagged cell comes first.

The text is student text: never executed, never trusted; at most :data:`MAX_ANSWER_CHARS`
characters are kept (:attr:`Answer.cut` says when more were cut). Pure: a notebook in, answers out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["ANSWER_TAG", "ANSWER_WORD", "MAX_ANSWER_CHARS", "PLACEHOLDER", "Answer", "answer_sha256",
           "answer_words",
           "find_answer", "is_placeholder", "question_heading", "read_answers"]

ANSWER_TAG = "answer:"  # the answer cell's tag is ANSWER_TAG + the criterion's id
PLACEHOLDER = "*YOUR ANSWER HERE*"  # the starter's answer cell (nbgrader's words)
MAX_ANSWER_CHARS = 20_000
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+Question\s*\(\s*([a-z0-9][a-z0-9-]*)\s*\)", re.IGNORECASE)
ANSWER_WORD = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*")  # a word of an answer: letters and digits; 0.52, don't
_LINK_TARGET = re.compile(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")  # ](url "title") of a markdown link or image


@dataclass(frozen=True)
class Answer:
    """A team's written answer to one question.

    Attributes:
        criterion: the coach-graded criterion's id.
        text: the cell's markdown source, stripped, at most :data:`MAX_ANSWER_CHARS` characters.
        found: ``tag`` (the cell tagged ``answer:<id>``) or ``heading`` (the cell after the heading
            ``Question (<id>)``: the tags were lost).
        cell: the student's number of the cell (1-based, markdown cells counted), as the scorecard
            numbers cells.
        cut: the cell held more than :data:`MAX_ANSWER_CHARS` characters; the rest was cut.
    """

    criterion: str
    text: str
    found: Literal["tag", "heading"]
    cell: int
    cut: bool = False

    @property
    def sha256(self) -> str:
        """:func:`answer_sha256` of :attr:`text`."""
        return answer_sha256(self.text)


def question_heading(criterion: str) -> str:
    """The heading line of the question of ``criterion`` as the starter writes it."""
    return f"### Question ({criterion})"


def answer_sha256(text: str) -> str:
    """The SHA-256 (hex) of an answer's text with its line endings made ``\\n`` and its ends stripped:
    what tells a changed answer from the one the coach graded."""
    return hashlib.sha256(text.replace("\r\n", "\n").strip().encode("utf-8")).hexdigest()


def _words_of(text: str) -> list[str]:
    return ANSWER_WORD.findall(_LINK_TARGET.sub("]", text))


_PLACEHOLDER_WORDS = [w.lower() for w in _words_of(PLACEHOLDER)]


def is_placeholder(text: str) -> bool:
    """Whether ``text`` is the starter's placeholder and nothing else (any emphasis, case or spacing)."""
    return [w.lower() for w in _words_of(text)] == _PLACEHOLDER_WORDS


def answer_words(text: str) -> int:
    """The words of an answer: runs of letters and digits (Unicode; ``0.52`` and ``don't`` one
    each), markdown syntax and link targets not counted, the placeholder's three words left out
    where the team kept them beside its own."""
    words = [w.lower() for w in _words_of(text)]
    n = len(_PLACEHOLDER_WORDS)
    for i in range(len(words) - n + 1):
        if words[i:i + n] == _PLACEHOLDER_WORDS:
            return len(words) - n
    return len(words)


def _source(cell: object) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source)


def _tags(cell: object) -> list[str]:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _kept(criterion: str, text: str, found: Literal["tag", "heading"], index: int) -> Answer:
    text = text.strip()
    return Answer(criterion=criterion, text=text[:MAX_ANSWER_CHARS].rstrip(), found=found, cell=index + 1,
                  cut=len(text) > MAX_ANSWER_CHARS)


def read_answers(nb: NotebookNode | None) -> tuple[Answer, ...]:
    """Every written answer of ``nb`` (the notebook as submitted, :func:`grader.intake.read_notebook`):
    one per criterion id that a tagged cell or a question heading names, found as the module says;
    a heading with no answer cell after it gives none. In the order the notebook names them.

    Args:
        nb: the notebook (format 4), or None (a malformed file: no answers).
    """
    if nb is None:
        return ()
    cells: Sequence[object] = nb.get("cells", []) if isinstance(nb, dict) else []
    found: dict[str, Answer] = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("markdown", "raw"):
            continue
        for tag in _tags(cell):
            criterion = tag[len(ANSWER_TAG):].strip()
            if tag.startswith(ANSWER_TAG) and criterion and criterion not in found:
                found[criterion] = _kept(criterion, _source(cell), "tag", index)
    headings = [(i, m.group(1).lower()) for i, cell in enumerate(cells)
                if isinstance(cell, dict) and cell.get("cell_type") == "markdown"
                and (m := _HEADING.match(_source(cell).lstrip("\n").split("\n", 1)[0]))]
    heading_at = {i for i, _ in headings}
    for at, criterion in headings:
        if criterion in found:
            continue
        for index in range(at + 1, len(cells)):
            cell = cells[index]
            if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
                continue
            if index not in heading_at and not any(t.startswith(ANSWER_TAG) for t in _tags(cell)):
                found[criterion] = _kept(criterion, _source(cell), "heading", index)
            break
    return tuple(found.values())


def find_answer(answers: Sequence[Answer], criterion: str) -> Answer | None:
    """The answer of ``criterion`` among ``answers`` (:func:`read_answers`), or None."""
    return next((a for a in answers if a.criterion == criterion), None)
