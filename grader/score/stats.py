"""How sure a figure on the hidden test set is: confidence intervals and paired comparisons.

Every proportion the grader measures (accuracy, per-class recall and precision, added-class
recall) is a share of ``k`` successes in ``n`` images, so it comes with the 95% Wilson score
interval (Wilson 1927, "Probable inference, the law of succession, and statistical inference",
JASA 22:209-212), computed by SciPy (``scipy.stats.binomtest(k, n).proportion_ci(
method="wilson")``). Two submissions scored on the same hidden images are compared with
McNemar's exact test on the images where one is right and the other wrong (McNemar 1947), as
``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)`` computes it: a binomial
test of the discordant pairs at 0.5.

Pure functions; SciPy and statsmodels are imported when first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CONFIDENCE", "TOO_FEW_WIDTH", "Interval", "mcnemar_exact", "wilson_interval"]

CONFIDENCE = 0.95

# a class whose recall interval is wider than this has too few images to tell whether it is
# below the bar (8 images at recall 0.62: 0.31-0.86, width 0.56; 40 at 0.62: width 0.29)
TOO_FEW_WIDTH = 0.4


@dataclass(frozen=True)
class Interval:
    """A share with its confidence interval.

    Attributes:
        value: the point estimate ``k / n`` (0..1).
        low: lower end of the interval (0..1).
        high: upper end of the interval (0..1).
        k: successes (correct images).
        n: trials (images).
        confidence: the interval's confidence level (0.95).
    """

    value: float
    low: float
    high: float
    k: int
    n: int
    confidence: float = CONFIDENCE

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def contains(self, threshold: float) -> bool:
        """Whether ``threshold`` lies inside the interval (ends included)."""
        return self.low <= threshold <= self.high


def wilson_interval(k: int, n: int, *, confidence: float = CONFIDENCE) -> Interval:
    """The Wilson score interval of ``k`` successes in ``n`` trials.

    Args:
        k: successes, 0 <= k <= n.
        n: trials, n >= 1.
        confidence: the confidence level, 0 < confidence < 1.

    Returns:
        the interval; 0.90 at n = 100 gives 0.826-0.945, at n = 1,000 0.880-0.917.

    Raises:
        ValueError: ``n`` < 1 or ``k`` outside 0..n.

    Method: ``scipy.stats.binomtest(k, n).proportion_ci(confidence_level, method="wilson")``
    (SciPy's documented Wilson interval without continuity correction).
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(value=k / n, low=float(ci.low), high=float(ci.high), k=k, n=n,
                    confidence=confidence)


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float:
    """The two-sided p-value of McNemar's exact test between two classifiers scored on the
    same images.

    Args:
        a_correct: per image, whether classifier A was right, length N.
        b_correct: per image, whether classifier B was right, the same N images in order.

    Returns:
        the p-value (0..1]; 1.0 when they never disagree.

    Raises:
        ValueError: the two vectors differ in length.

    Method: ``statsmodels.stats.contingency_tables.mcnemar([[both, a_only], [b_only,
    neither]], exact=True).pvalue``.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(f"the vectors differ in length: {len(a_correct)} and {len(b_correct)}")
    a_only = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if a and not b)
    b_only = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if b and not a)
    if a_only + b_only == 0:
        return 1.0
    from statsmodels.stats.contingency_tables import mcnemar

    both = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if a and b)
    neither = len(a_correct) - both - a_only - b_only
    return float(mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue)
