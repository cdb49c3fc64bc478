"""Written answers compared across teams (issue 29): the third signal of the similar pairs, with the
code's calibration (half the shorter answer and a substantial matched size), its boilerplate (the
question, the starter's cells, the placeholder) and its passages shown escaped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat

from grader.core.settings import Settings
from grader.intake import PLACEHOLDER, read_answers
from grader.integrity.answers import (
    ANSWER_SHARE,
    K_WORDS,
    MIN_MATCH_WORDS,
    WrittenAnswer,
    answer_signals,
    boilerplate_answers,
    words_of,
)
from grader.integrity.pairs import IntegrityEntry, cohort_pairs, notebook_entry, similar_pairs
from grader.report.render import render_index
from grader.score.scorecard import CriterionResult, Environment, ExecutionSummary, NotebookResult, SubmissionResult

ROOT = Path(__file__).resolve().parents[2]
QUESTION = ("What average test error does your MLP reach on CIFAR-10, and what does the same kind of network "
            "reach on MNIST? Why is the gap so large?")
COPIED = ("Our multilayer perceptron stops at about 52 percent test error on CIFAR-10 while the same network "
          "gets under 3 percent on MNIST. A photo of a cat or a ship varies in pose, lighting, background and "
          "colour far more than a centred handwritten digit on a black background does, and a dense layer sees "
          "every pixel on its own with no idea which pixels are neighbours, so it cannot learn edges or shapes "
          "that move around the image. Convolutions share their weights across positions, which is why they do "
          "much better here.")
OWN_A = ("We measured 0.47 accuracy after twenty epochs with two hidden layers of 512 units and dropout; the "
         "validation curve flattened after epoch twelve, and more epochs only helped the training loss.")
OWN_B = ("Learning rate 1e-3 with Adam was the best of the three we tried, the others diverged or crawled, and "
         "batch normalisation between the layers bought another two points of validation accuracy.")
PHRASE = "a dense layer sees every pixel on its own with no idea which pixels are neighbours"


def entry(team: str, *answers: tuple[str, str], question: str = QUESTION) -> IntegrityEntry:
    """An entry of ``team`` on cifar10-mlp whose code is its own and whose written answers are
    ``answers`` (criterion id, text), each to ``question``."""
    return IntegrityEntry(team=team, notebook="cifar10-mlp.ipynb", challenge="cifar10-mlp",
                          code=f"team = {team!r}\n",
                          answers=tuple(WrittenAnswer(criterion=c, question=question, text=t) for c, t in answers))


def test_a_copied_answer_is_flagged_with_its_passages() -> None:
    # b copied a's answer, changed its capitals, punctuation and line breaks, and added a sentence of its own
    disguised = COPIED.upper().replace(",", "").replace(". ", ".\n\n") + " " + OWN_B
    [pair] = similar_pairs([entry("alpha", ("mnist-gap", COPIED + " " + OWN_A)),
                            entry("beta", ("mnist-gap", disguised)), entry("gamma", ("mnist-gap", OWN_A))])
    assert (pair.a.team, pair.b.team, pair.flagged_on) == ("alpha", "beta", ["answers"])
    assert pair.answers is not None and pair.answers.compared == 1
    [q] = pair.answers.questions
    assert q.flagged and q.criterion == "mnist-gap" and q.question == QUESTION
    copied_words = len(words_of(COPIED))
    assert q.matched_words == copied_words >= MIN_MATCH_WORDS and q.share >= ANSWER_SHARE
    assert q.words_a == copied_words + len(words_of(OWN_A)) and 0.5 < q.share_a < 1
    # the passages: each answer as written, the copied part marked, the rest not
    assert "".join(s.text for s in q.a_segments) == COPIED + " " + OWN_A
    assert "".join(s.text for s in q.b_segments) == disguised
    [marked_a] = [s.text for s in q.a_segments if s.matched]
    assert marked_a == COPIED.removesuffix(".")  # from the first matching word to the last
    marked_b = " ".join(s.text for s in q.b_segments if s.matched)
    assert words_of(marked_b) == words_of(COPIED) and not any(s.matched and "Adam" in s.text for s in q.b_segments)


def test_a_shared_short_phrase_is_not_flagged() -> None:
    a = f"{OWN_A} As the lecture said, {PHRASE}."
    b = f"{OWN_B} The reason is that {PHRASE}, unlike a convolution."
    [found] = answer_signals([[WrittenAnswer("mnist-gap", QUESTION, a)], [WrittenAnswer("mnist-gap", QUESTION, b)]],
                             (), common=10, also=set()).values()
    [q] = found.questions
    assert q.matched_words == len(words_of(PHRASE)) and not q.flagged and not found.flagged
    assert similar_pairs([entry("alpha", ("mnist-gap", a)), entry("beta", ("mnist-gap", b))]) == []
    # two short answers made mostly of that phrase reach the share, not the size: still no flag
    short = [[WrittenAnswer("mnist-gap", QUESTION, f"{PHRASE} {tail}")] for tail in ("so it fails.", "hence 52%.")]
    [q] = answer_signals(short, (), common=10, also=set())[(0, 1)].questions
    assert q.share >= ANSWER_SHARE and q.matched_words < MIN_MATCH_WORDS and not q.flagged


def test_the_question_copied_into_both_answers_is_not_flagged() -> None:
    long_question = " ".join([QUESTION, "Explain in your own words which properties of the photos make them harder",
                              "for a network of dense layers than the digits, and give both error figures."])
    a, b = f"{long_question}\n\n{OWN_A}", f"**{long_question}**\n\n{OWN_B}"
    both = [entry("alpha", ("mnist-gap", a), question=long_question),
            entry("beta", ("mnist-gap", b), question=long_question)]
    assert similar_pairs(both) == []
    # the same two answers to an unstated question (nothing is boilerplate) are flagged: the question made the match
    [pair] = similar_pairs([entry("alpha", ("mnist-gap", a), question=""),
                            entry("beta", ("mnist-gap", b), question="")])
    assert pair.flagged_on == ["answers"]
    # so is the starter's text, when a team copies the starter's markdown into its answer
    starter = ROOT / "challenges" / "cifar10-mlp" / "starter.ipynb"
    intro = next(t for t in boilerplate_answers(starter) if len(words_of(t)) >= MIN_MATCH_WORDS)
    copied = [entry(team, ("mnist-gap", f"{intro}\n\n{own}"), question="")
              for team, own in (("a", OWN_A), ("b", OWN_B))]
    assert similar_pairs(copied, answer_boilerplate={"cifar10-mlp": boilerplate_answers(starter)}) == []
    assert [p.flagged_on for p in similar_pairs(copied)] == [["answers"]]


def criterion(cid: str, answer: str | None) -> CriterionResult:
    return CriterionResult(id=cid, title=cid, status="awaiting" if answer else "fail", required=False, points=0,
                           max_points=2, message="", fix="", coach_graded=True, question=QUESTION, answer=answer)


def graded_notebook(name: str, code_criteria: list[CriterionResult]) -> NotebookResult:
    return NotebookResult(notebook=name, challenge="toy", profile="ci", verdict="awaiting", score=0, max_score=2,
                          criteria=code_criteria,
                          execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1,
                                                     sandboxed=True, probe_status="ok", cells=[]))


def test_placeholders_and_missing_answers_are_not_compared() -> None:
    nb = graded_notebook("toy.ipynb", [criterion("mnist-gap", PLACEHOLDER), criterion("food-image", None),
                                       criterion("hyperparameters", "  "), criterion("apple-findings", COPIED)])
    made = notebook_entry("alpha", nb, "x = 1\n", None)
    assert [(w.criterion, w.question, w.text) for w in made.answers] == [("apple-findings", QUESTION, COPIED)]
    # two teams that kept only the placeholder share nothing; two that kept it before their own words
    # share no k-gram through it
    placeholders = [[WrittenAnswer("mnist-gap", QUESTION, f"{PLACEHOLDER}\n\nThe MLP: {own}")]
                    for own in (OWN_A, OWN_B)]
    assert answer_signals(placeholders, (), common=10, also={(0, 1)})[(0, 1)].questions == ()
    starters = [entry(t, *[(w.criterion, w.text) for w in read_answers(
        nbformat.read(ROOT / "challenges" / "cifar10-mlp" / "starter.ipynb", as_version=4))]) for t in ("a", "b")]
    assert all(w.text == PLACEHOLDER for w in starters[0].answers)  # what read_answers finds in the starter
    kept = [notebook_entry(t, graded_notebook("toy.ipynb", [criterion(w.criterion, w.text) for w in e.answers]),
                           "", None) for t, e in zip("ab", starters, strict=True)]
    assert [k.answers for k in kept] == [(), ()] and similar_pairs(kept) == []


def test_the_size_floor_is_a_third_of_the_shortest_reference_answer() -> None:
    """MIN_MATCH_WORDS's stated source (answers' docstring): a third (copydetect's display threshold)
    of the shortest complete reference answer, in words as this signal counts them."""
    sizes = {(path.parent.name, a.criterion): len(words_of(a.text))
             for path in sorted((ROOT / "reference_solutions").glob("*/*.ipynb"))
             for a in read_answers(nbformat.read(path, as_version=4))}
    assert len(sizes) >= 6 and min(sizes.values()) == sizes[("cifar10-mlp", "food-image")] == 105
    assert max(sizes.values()) <= 141
    assert MIN_MATCH_WORDS == round(min(sizes.values()) / 3) and K_WORDS < MIN_MATCH_WORDS


def test_a_run_compares_written_answers_and_the_index_shows_the_passages_escaped(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    evil = "<script>alert(1)</script>"
    answers = {"red-team": f"{evil} {COPIED}", "blue-team": f"{COPIED} {OWN_B}", "green-team": OWN_A}
    results, notebooks = [], []
    for team, answer in answers.items():
        path = tmp_path / team / "toy.ipynb"
        path.parent.mkdir()
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({team!r})")]), path)
        nb = graded_notebook("toy.ipynb", [criterion("mnist-gap", answer)])
        results.append(SubmissionResult(submission=team, path=team, verdict="awaiting", score=0, max_score=2,
                                        notebooks=[nb], started="", finished="",
                                        environment=Environment(grader="0", python="3", platform="x",
                                                                device="cpu", sandbox="bwrap")))
        notebooks.append([path])
    [pair] = cohort_pairs(results, notebooks, list(answers), settings)
    assert (pair.a.team, pair.b.team, pair.flagged_on) == ("red-team", "blue-team", ["answers"])
    assert pair.code is None or not pair.code.flagged
    html = render_index([], [], pairs=[pair])
    assert "a reason to look: answers" in html and "Written answers (flagged)" in html
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<mark>") == 2 and "<mark>Our multilayer perceptron" in html
