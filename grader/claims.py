"""What the notebook says about itself: accuracy figures it printed, compared with measurement.

A notebook can print anything; the grader never trusts it. It reads the printed accuracy claims
so that the scorecard can show a coach when the notebook's own figure and the grader's
measurement on the hidden test set are far apart (a leaky validation split, a forged print).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ClaimCheck", "accuracy_claims", "compare_claim"]

# "accuracy: 0.93", "Validation accuracy 93.1%", "test acc = .9", "Accuracy: 47/50 (94%)"
_CLAIM = re.compile(
    r"(?i)\bacc(?:uracy)?\b[^0-9\n%]{0,40}?(?:\d+\s*/\s*\d+\s*\()?"
    r"(?P<value>\d{1,3}(?:\.\d+)?|\.\d+)\s*(?P<pct>%)?"
)


def accuracy_claims(text: str) -> list[float]:
    """Accuracy figures printed in ``text``, in order, as shares in [0, 1].

    A figure followed by ``%`` or above 1 is read as a percentage; figures that cannot be an
    accuracy (above 100) are skipped. Method: one regular expression over each line that names
    accuracy ("acc" or "accuracy", any case).
    """
    claims = []
    for line in text.splitlines():
        for match in _CLAIM.finditer(line):
            value = float(match.group("value"))
            if match.group("pct") or value > 1:
                value /= 100
            if 0 <= value <= 1:
                claims.append(value)
    return claims


@dataclass(frozen=True)
class ClaimCheck:
    """The notebook's last printed accuracy beside the grader's measurement (shares, 0..1)."""

    claimed: float
    measured: float
    tolerance: float

    @property
    def gap(self) -> float:
        return self.claimed - self.measured

    @property
    def flagged(self) -> bool:
        """True when the claim exceeds the measurement by more than ``tolerance``."""
        return self.gap > self.tolerance


def compare_claim(text: str, measured: float | None, *, tolerance: float = 0.05) -> ClaimCheck | None:
    """Compare the last accuracy the notebook printed with ``measured``; None if either is missing."""
    claims = accuracy_claims(text)
    if not claims or measured is None:
        return None
    return ClaimCheck(claimed=claims[-1], measured=measured, tolerance=tolerance)
