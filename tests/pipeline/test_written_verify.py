"""``grader verify-references`` with written answers: a reference passes with its answers awaiting the
coach; a starter must leave them missing or as the placeholder."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.pipeline.verify import Expectation, Verification
from tests.score.test_written import result_with


@pytest.mark.parametrize(("role", "status", "required", "ok"), [
    ("reference", "awaiting", True, True),    # verdict awaiting: the coach has it
    ("reference", "awaiting", False, True),   # verdict pass
    ("reference", "fail", False, False),      # an optional answer missing in a reference is not as expected
    ("starter", "fail", True, True),          # a required answer missing fails it, as a starter should
    ("starter", "fail", False, False),        # its automatic criteria pass: a starter must fail
    ("starter", "awaiting", True, False),     # a starter's answer must be missing or the placeholder
])
def test_references_await_the_coach_and_starters_miss_their_answers(role: str, status: str, required: bool,
                                                                    ok: bool) -> None:
    target = Expectation("cifar", role, "pytorch", Path("x.ipynb"))  # type: ignore[arg-type]
    assert Verification(target, result_with(status, required=required)).ok is ok


def test_a_starter_that_fails_with_its_answer_missing_is_as_expected() -> None:
    failing = result_with("fail", required=False)
    notebooks = [nb.model_copy(update={"criteria": [nb.criteria[0].model_copy(update={"status": "fail"}),
                                                    nb.criteria[1]], "verdict": "fail"}) for nb in failing.notebooks]
    starter = failing.model_copy(update={"notebooks": notebooks, "verdict": "fail"})
    assert Verification(Expectation("cifar", "starter", "starter", Path("s.ipynb")), starter).ok
