"""The shipped challenges ask their written questions (issue 29).

Every coach-graded criterion of every shipped rubric is asked in its challenge's starter (a markdown
cell headed ``### Question (<id>)`` holding the rubric's question, then the answer cell tagged
``answer:<id>`` holding only the placeholder), and answered in every reference solution of that
challenge (the same two cells, a real answer of at least the criterion's ``min_words`` words), as
:func:`grader.intake.read_answers` finds answers. No kernel: the notebooks are read, never run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest
from nbformat import NotebookNode

from grader.intake import (
    ANSWER_TAG,
    PLACEHOLDER,
    answer_words,
    find_answer,
    is_placeholder,
    question_heading,
    read_answers,
)
from grader.score import load_rubric
from grader.score.checks.answers import AnswerParams
from tests.conftest import REPO

# The challenges whose seeds ask questions only a person can grade (issue 29); each must keep at least one.
ASKING = {"cifar10-mlp", "gear-cnn", "cifar10-kaggle", "fashion-mnist"}


class Asked(NamedTuple):
    challenge: str
    criterion: str
    question: str
    min_words: int


def coach_graded() -> list[Asked]:
    """Every coach-graded criterion of every shipped rubric, in file order."""
    asked = []
    for path in sorted((REPO / "rubrics").glob("*.toml")):
        rubric = load_rubric(REPO, path.stem)
        for c in rubric.criteria:
            if c.check == "coach_graded":
                params = c.params_for(None)
                assert c.question and isinstance(params, AnswerParams), f"{path}: criterion {c.id}"
                asked.append(Asked(rubric.challenge, c.id, c.question, params.min_words))
    return asked


ASKED = coach_graded()


def two_cells(nb: NotebookNode, criterion: str) -> tuple[str, str]:
    """The question under the heading ``### Question (<criterion>)`` and the text of the answer cell
    right after it, which must be the one markdown cell tagged ``answer:<criterion>``.

    Raises:
        AssertionError: naming the cell that is missing or out of place.
    """
    heading = question_heading(criterion)
    at = [i for i, c in enumerate(nb.cells)
          if c.cell_type == "markdown" and c.source.lstrip("\n").split("\n", 1)[0].strip() == heading]
    assert len(at) == 1, f"{len(at)} markdown cells headed {heading!r}; one asked"
    tagged = [i for i, c in enumerate(nb.cells) if ANSWER_TAG + criterion in c.metadata.get("tags", [])]
    assert tagged == [at[0] + 1], (f"the cell right after {heading!r} (cell {at[0] + 2}) must be the one cell "
                                   f"tagged {ANSWER_TAG + criterion}; tagged: cells {[i + 1 for i in tagged]}")
    answer = nb.cells[at[0] + 1]
    assert answer.cell_type == "markdown", f"the answer cell of {criterion} is a {answer.cell_type} cell"
    found = find_answer(read_answers(nb), criterion)  # the grader finds this very cell
    assert found is not None and found.found == "tag" and found.cell == at[0] + 2, found
    question = nb.cells[at[0]].source.lstrip("\n").split("\n", 1)[1:]
    return " ".join(" ".join(question).split()), answer.source


def starter(challenge: str) -> NotebookNode:
    nb: NotebookNode = nbformat.read(REPO / "challenges" / challenge / "starter.ipynb", as_version=4)
    return nb


def references(challenge: str) -> list[Path]:
    return sorted((REPO / "reference_solutions" / challenge).glob("*.ipynb"))


def test_the_seeds_questions_are_in_the_shipped_rubrics() -> None:
    assert ASKING <= {a.challenge for a in ASKED}, ASKED
    for a in ASKED:
        assert 15 <= a.min_words <= 25, a


@pytest.mark.parametrize("asked", ASKED, ids=lambda a: f"{a.challenge}:{a.criterion}")
def test_the_starter_asks_the_question_and_leaves_the_placeholder(asked: Asked) -> None:
    question, answer = two_cells(starter(asked.challenge), asked.criterion)
    assert question == " ".join(asked.question.split()), "the starter's question differs from the rubric's"
    assert answer.strip() == PLACEHOLDER


@pytest.mark.parametrize("asked", ASKED, ids=lambda a: f"{a.challenge}:{a.criterion}")
def test_every_reference_solution_answers_it(asked: Asked) -> None:
    paths = references(asked.challenge)
    assert paths, f"no reference solution of {asked.challenge}"
    for path in paths:
        question, answer = two_cells(nbformat.read(path, as_version=4), asked.criterion)
        assert question == " ".join(asked.question.split()), f"{path}: the question differs from the rubric's"
        assert not is_placeholder(answer), f"{path}: {asked.criterion} is still the placeholder"
        assert answer_words(answer) >= asked.min_words, f"{path}: {asked.criterion}: {answer_words(answer)} words"


def test_a_missing_or_untagged_cell_is_caught() -> None:
    asked = ASKED[0]
    nb = starter(asked.challenge)
    two_cells(nb, asked.criterion)
    heading = question_heading(asked.criterion)
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith(heading))

    no_question = copy.deepcopy(nb)
    del no_question.cells[at]
    with pytest.raises(AssertionError, match="0 markdown cells headed"):
        two_cells(no_question, asked.criterion)

    no_answer = copy.deepcopy(nb)
    del no_answer.cells[at + 1]
    with pytest.raises(AssertionError, match="must be the one cell tagged"):
        two_cells(no_answer, asked.criterion)

    untagged = copy.deepcopy(nb)
    untagged.cells[at + 1].metadata = {}
    with pytest.raises(AssertionError, match="must be the one cell tagged"):
        two_cells(untagged, asked.criterion)

    answered = copy.deepcopy(nb)
    answered.cells[at + 1].source = "Too short."
    _, answer = two_cells(answered, asked.criterion)
    assert not is_placeholder(answer) and answer_words(answer) < asked.min_words
