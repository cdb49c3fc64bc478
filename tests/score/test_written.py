"""Coach-graded criteria: the rubric's keys, the companion check's statuses and messages, the verdict
``awaiting``, and the coach's grades applied, carried over and held back until released."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from grader.core.errors import RubricError
from grader.intake import Answer, read_answers
from grader.score import Grade, apply_grades, carry_grades, hide_unreleased, load_rubric
from grader.score.checks import CheckResult, get_check
from grader.score.rubric import Criterion
from grader.score.scorecard import Environment, ExecutionSummary, NotebookResult, SubmissionResult
from grader.score.verdict import score_criteria, submission_reason, submission_verdict, verdict_reason
from tests.conftest import REPO
from tests.score.test_checks import evidence

QUESTION = dict(id="gap", title="Why the gap", check="coach_graded", points=2, fix="Answer it",
                question="Why is CIFAR-10 harder than MNIST?", params={"min_words": 5},
                items=[{"points": 1, "text": "gives the error"}, {"points": 1, "text": "says why"}])


def written(**changes: Any) -> Criterion:
    return Criterion.model_validate({**QUESTION, **changes})


@pytest.mark.parametrize(("changes", "words"), [
    ({"check": "notebook_runs", "params": {}}, "question, items only go on a coach-graded criterion"),
    ({"question": None}, 'needs question = "..."'),
    ({"items": [{"points": 2, "text": "a"}, {"points": 1, "text": "b"}]}, "add up to 3 points, more than its 2"),
    ({"items": [{"points": -1, "text": "a"}]}, "greater than or equal to 0"),
    ({"params": {"criterion": "other"}}, "remove criterion from params"),
    ({"params": {"min_words": 0}}, "greater than or equal to 1"),
    ({"comments": "one string"}, "valid list"),
])
def test_the_rubric_refuses_misplaced_or_missing_keys(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        written(**changes)


def test_a_rubric_file_with_a_bad_written_criterion_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "x.toml").write_text(
        'schema_version = 1\nchallenge = "x"\n[[criteria]]\nid = "runs"\ntitle = "t"\ncheck = "notebook_runs"\n'
        'points = 1\nfix = "f"\nquestion = "Why?"\n')
    with pytest.raises(RubricError, match="only go on a coach-graded criterion") as err:
        load_rubric(tmp_path, "x")
    assert "x.toml" in str(err.value)


def test_the_shipped_written_criteria_load() -> None:
    for path in sorted((REPO / "rubrics").glob("*.toml")):
        for raw in tomllib.loads(path.read_text())["criteria"]:
            if raw.get("check") == "coach_graded":
                c = Criterion.model_validate(raw)
                assert c.question and c.params_for(None).criterion == c.id  # type: ignore[attr-defined]


def check(cells: list[object], criterion: Criterion | None = None) -> CheckResult:
    c = criterion or written()
    ev = dataclasses.replace(evidence(), answers=read_answers(new_notebook(cells=cells)))
    return get_check(c.check).evaluate(ev, c.params_for(None))


def answer_cell(text: str) -> object:
    return new_markdown_cell(text, metadata={"tags": ["answer:gap"]})


def test_the_companion_check_says_which_answer_is_missing() -> None:
    missing = check([new_markdown_cell("## Question (food)")])
    assert missing.status == "fail"
    assert missing.message == "no cell tagged answer:gap and no cell after the heading ### Question (gap)"
    assert check([answer_cell("*YOUR ANSWER HERE*")]).message.startswith("still the placeholder")
    short = check([answer_cell("Photos are harder.")])
    assert short.status == "fail" and short.message.startswith("3 words; at least 5 asked")
    present = check([answer_cell("Photos vary in pose, colour and background; digits do not.")])
    assert present.status == "awaiting" and present.answer is not None and "awaiting the coach" in present.message
    lost = check([new_markdown_cell("### Question (gap)"), new_markdown_cell("Photos vary a lot more than digits.")])
    assert lost.status == "awaiting" and "the tag was lost" in lost.message


def test_a_written_answer_is_measured_even_when_the_run_failed() -> None:
    from tests.score.test_checks import facts

    c = written()
    ev = dataclasses.replace(evidence(execution=facts("cell_error")),
                             answers=read_answers(new_notebook(cells=[answer_cell("one two three four five six")])))
    assert get_check(c.check).evaluate(ev, c.params_for(None)).status == "awaiting"


def runs(required: bool = True) -> Criterion:
    return Criterion(id="runs", title="runs", check="notebook_runs", points=1, required=required, fix="run it")


AWAIT = CheckResult("awaiting", "awaiting the coach")


@pytest.mark.parametrize(("required", "auto", "status", "verdict", "score", "total"), [
    (True, "pass", "awaiting", "awaiting", 1, 3),   # a pass never hides an ungraded required criterion
    (True, "fail", "awaiting", "fail", 0, 3),
    (False, "pass", "awaiting", "pass", 1, 3),      # optional: never changes the verdict
    (True, "pass", "fail", "fail", 1, 3),
])
def test_verdicts_with_a_written_answer(required: bool, auto: str, status: str, verdict: str, score: float,
                                        total: float) -> None:
    rows, found, earned, possible = score_criteria(
        [runs(), written(required=required)], [CheckResult(auto, "x"), CheckResult(status, "y")])  # type: ignore[arg-type]
    assert (found, earned, possible) == (verdict, score, total)
    assert rows[1].coach_graded and rows[1].question.startswith("Why is CIFAR-10")
    assert [i.text for i in rows[1].rubric_items] == ["gives the error", "says why"]


def result_with(status: str = "awaiting", *, required: bool = True,
                text: str = "Photos vary far more.") -> SubmissionResult:
    answer = Answer("gap", text, "tag", 4)
    rows, verdict, score, total = score_criteria(
        [runs(), written(required=required)], [CheckResult("pass", "ran"), CheckResult(status, "w", answer=answer)])  # type: ignore[arg-type]
    nb = NotebookResult(notebook="nb.ipynb", challenge="cifar", profile="ci", verdict=verdict,
                        verdict_reason=verdict_reason(rows), score=score,
                        max_score=total, criteria=rows,
                        execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1,
                                                   sandboxed=True, probe_status="ok", cells=[]))
    return SubmissionResult(submission="team3", path="x", verdict=submission_verdict([nb], []),
                            verdict_reason=submission_reason([nb], []), score=score, max_score=total, notebooks=[nb],
                            started="t", finished="t",
                            environment=Environment(grader="g", python="3", platform="p", device="cpu", sandbox="none"))


def test_a_grade_turns_awaiting_into_graded_and_the_verdict_follows_half_the_points() -> None:
    waiting = result_with()
    assert waiting.verdict == "awaiting" and "awaiting the coach: gap" in waiting.verdict_reason
    graded, refused = apply_grades(waiting, {"gap": Grade(points=1.5, comment="Good", items=(1, 2))})
    row = graded.notebooks[0].criteria[1]
    assert refused == {} and (row.status, row.points, row.comment, row.items) == ("graded", 1.5, "Good", [1, 2])
    assert row.graded_sha256 == row.answer_sha256 != ""
    assert (graded.verdict, graded.score, graded.max_score) == ("pass", 2.5, 3)
    low, _ = apply_grades(waiting, {"gap": Grade(points=0.5)})
    assert low.verdict == "fail" and "gap (graded 0.5 of 2)" in low.verdict_reason
    by_items, _ = apply_grades(waiting, {"gap": Grade(points=None, items=(2,))})
    assert by_items.notebooks[0].criteria[1].points == 1


@pytest.mark.parametrize(("grades", "why"), [
    ({"gap": Grade(points=3)}, "points 3 out of range (0 to 2)"),
    ({"gap": Grade(points=1, items=(3,))}, "rubric item 3 does not exist"),
    ({"gap": Grade(points=1, answer_sha256="0" * 64)}, "answer changed"),
    ({"runs": Grade(points=1)}, "not a coach-graded criterion"),
    ({"nope": Grade(points=1)}, "unknown criterion"),
])
def test_a_grade_that_cannot_apply_is_refused_and_changes_nothing(grades: dict[str, Grade], why: str) -> None:
    waiting = result_with()
    graded, refused = apply_grades(waiting, grades)
    assert why in next(iter(refused.values())) and graded.notebooks == waiting.notebooks


def test_a_missing_answer_cannot_be_graded() -> None:
    _, refused = apply_grades(result_with("fail", text="*YOUR ANSWER HERE*"), {"gap": Grade(points=1)})
    assert refused["gap"].startswith("no answer to grade")


def test_a_regrade_keeps_the_grade_of_an_unchanged_answer_and_flags_a_changed_one() -> None:
    graded, _ = apply_grades(result_with(), {"gap": Grade(points=2, comment="Yes")})
    kept = carry_grades(graded, result_with())
    assert kept.notebooks[0].criteria[1].status == "graded" and kept.verdict == "pass" and kept.score == 3
    changed = carry_grades(graded, result_with(text="A different answer of several words now."))
    row = changed.notebooks[0].criteria[1]
    assert (row.status, row.answer_changed, changed.verdict) == ("awaiting", True, "awaiting")
    assert "the answer changed since the coach graded it" in row.message
    assert carry_grades(None, result_with()) == result_with()


def test_a_team_sees_a_grade_only_once_released() -> None:
    graded, _ = apply_grades(result_with(), {"gap": Grade(points=2, comment="Secret until released")})
    hidden = hide_unreleased(graded, {"other:gap"})
    row = hidden.notebooks[0].criteria[1]
    assert (row.status, row.points, row.comment, hidden.verdict) == ("awaiting", 0, "", "awaiting")
    shown = hide_unreleased(graded, {"cifar:gap"})
    assert shown.notebooks[0].criteria[1].comment == "Secret until released" and shown.verdict == "pass"
    assert hide_unreleased(graded, None) is graded
