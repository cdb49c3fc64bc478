"""Accuracy claims read from printed output, and the gap to the measured figure."""

from __future__ import annotations

import pytest

from grader.claims import accuracy_claims, compare_claim


@pytest.mark.parametrize(("line", "expected"), [
    ("validation accuracy of the best CNN: 0.946", [0.946]),
    ("Validation set: Average loss: 0.31, Accuracy: 331/360 (92%)", [0.92]),
    ("epoch 3/5: train loss 1.2, validation accuracy 0.751 (40 s)", [0.751]),
    ("Test acc = .9", [0.9]),
    ("Accuracy 93.5 %", [0.935]),
    ("accuracy 0.99\naccuracy 0.5", [0.99, 0.5]),
    ("loss 0.3, no such figure here", []),
    ("accuracy: 250", []),
])
def test_claims(line: str, expected: list[float]) -> None:
    assert accuracy_claims(line) == pytest.approx(expected)


def test_gap_is_flagged_only_when_the_claim_is_higher() -> None:
    check = compare_claim("epoch 9 accuracy 0.80\nfinal accuracy: 0.99", 0.85)
    assert check is not None and check.claimed == 0.99 and check.flagged
    modest = compare_claim("accuracy 0.83", 0.85)
    assert modest is not None and not modest.flagged
    assert compare_claim("nothing claimed", 0.85) is None
    assert compare_claim("accuracy 0.9", None) is None
