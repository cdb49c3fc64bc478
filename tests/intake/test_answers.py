"""Written answers found in the notebook as submitted: by tag, by the question's heading when the
tags were lost, and nothing where neither leads to an answer cell."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grader.intake.answers import (
    MAX_ANSWER_CHARS,
    PLACEHOLDER,
    answer_sha256,
    answer_words,
    find_answer,
    is_placeholder,
    read_answers,
)


def question(cid: str, text: str = "Why?") -> object:
    return new_markdown_cell(f"### Question ({cid})\n{text}")


def tagged(cid: str, text: str) -> object:
    return new_markdown_cell(text, metadata={"tags": [f"answer:{cid}"]})


def test_the_tagged_cell_is_the_answer_wherever_it_is() -> None:
    nb = new_notebook(cells=[new_code_cell("x = 1"), tagged("gap", "  The error is 0.52.\n"), question("gap"),
                             new_markdown_cell("not this one")])
    [answer] = read_answers(nb)
    assert (answer.criterion, answer.text, answer.found, answer.cell) == ("gap", "The error is 0.52.", "tag", 2)
    assert answer.sha256 == answer_sha256("The error is 0.52.\r\n")  # line endings and ends do not count


def test_without_tags_the_first_markdown_cell_after_the_heading_is_the_answer() -> None:
    nb = new_notebook(cells=[new_markdown_cell("## Question (gap)\nWhat is the error?"),
                             new_code_cell("print(1)"), new_markdown_cell("It is 0.5 because colour photos vary."),
                             question("food"), new_markdown_cell("Food is no class of CIFAR-10.")])
    found = {a.criterion: a for a in read_answers(nb)}
    assert found["gap"].text.startswith("It is 0.5") and found["gap"].found == "heading" and found["gap"].cell == 3
    assert found["food"].cell == 5


def test_a_heading_followed_by_another_question_or_answer_cell_has_no_answer() -> None:
    nb = new_notebook(cells=[question("gap"), question("food"), tagged("other", "elsewhere"), question("last")])
    assert {a.criterion for a in read_answers(nb)} == {"other"}
    assert find_answer(read_answers(nb), "gap") is None and find_answer(read_answers(nb), "last") is None


def test_a_raw_cell_keeps_its_tag_a_code_cell_does_not() -> None:
    nb = new_notebook(cells=[new_raw_cell("raw words", metadata={"tags": ["answer:a"]}),
                             new_code_cell("# code", metadata={"tags": ["answer:b"]})])
    assert [a.criterion for a in read_answers(nb)] == ["a"]


def test_a_long_answer_is_cut_and_says_so() -> None:
    nb = new_notebook(cells=[tagged("gap", "word " * 5000)])
    [answer] = read_answers(nb)
    assert answer.cut and len(answer.text) <= MAX_ANSWER_CHARS
    assert read_answers(None) == ()


def test_placeholder_and_words() -> None:
    assert is_placeholder(PLACEHOLDER) and is_placeholder("_your answer here_") and is_placeholder("YOUR ANSWER HERE")
    assert not is_placeholder("Your answer here is that the error is high")
    assert answer_words("*YOUR ANSWER HERE* The MLP errs on half the images.") == 7
    assert answer_words("**Error**: `0.5` — see [the plot](x.png \"a title\")") == 5
