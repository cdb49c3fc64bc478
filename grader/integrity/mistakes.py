"""Shared mistakes for :mod:`grader.integrity.pairs`: wrong answers two models share, against chance.

Two models scored on the same hidden images: ``shared`` is the number of images both got wrong
*with the same wrong class*.

Stated model (the null hypothesis: the two models err independently, image by image). Model
``a`` errs on image ``i`` with probability ``p_a,i = min(1, e_a * d_i / mean(d))``: its own error
rate ``e_a`` spread over the images by their difficulty ``d_i``, the error rate on image ``i`` of
the *other* models of the cohort (the pair left out; models with identical predictions on
:data:`SAME_MODEL_AGREEMENT` of the images count as one; shrunk towards the cohort's mean error
rate by half a pseudo-model). It picks its wrong class ``c`` with the share ``pi_i(c)`` of the
other models' wrong answers on that image, to which half a pseudo-answer is added from the
cohort's confusion rates for the image's true class (half a pseudo-count per class): hard images
have a likely wrong answer. Both pick the same one with ``k_i = sum_c pi_i(c)^2``. The expected
number is ``E = sum_i p_a,i * p_b,i * k_i``.

The tail probability ``P(X >= shared)`` of the count, a sum of independent trials with those
chances, is the Poisson-binomial tail: exact (:func:`_upper_tail`) where its Poisson bound is
below :data:`EXACT_BELOW`, else that bound (``scipy.stats.poisson`` with mean ``E``; for counts of
at least ``E + 1`` the Poisson-binomial tail is at most the binomial's with the mean chance,
Hoeffding 1956, and that at most the Poisson's, Anderson and Samuels 1967). A pair is flagged when
that probability is below :func:`mistakes_p_limit` (``1e-6``, Bonferroni-adjusted for the pairs of
a large cohort), at least :data:`MIN_SHARED` mistakes are shared and the difficulty rests on at
least :data:`MIN_OTHER_MODELS` other models.

The method is the answer-copying index of test security: matching wrong answers against per-item
match probabilities from the group's answers (Frary, Tideman and Watts, "Indices of cheating on
multiple-choice tests", J. Educational Statistics 2(4), 1977; van der Linden and Sotaridona's
generalized binomial test, J. Educational and Behavioral Statistics 31(3), 2006); for classifiers,
the expected overlap of errors of independent models given their accuracies is the baseline of
Geirhos et al.'s error consistency ("Beyond accuracy", NeurIPS 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MAX_SHOWN_IMAGES", "MIN_OTHER_MODELS", "MIN_SHARED", "SharedImage", "SharedMistakes",
           "mistakes_on", "mistakes_p_limit"]

SAME_MODEL_AGREEMENT = 0.99  # predictions this alike: one model, for the images' difficulty
MIN_SHARED = 3  # fewer shared mistakes are never flagged
MIN_OTHER_MODELS = 2.0  # other models (duplicates counted once) needed to tell how hard each image is
EXACT_BELOW = 0.05  # the Poisson bound under which the exact Poisson-binomial tail is computed
MAX_SHOWN_IMAGES = 24  # thumbnails per pair
_PRIOR_MODELS = 0.5  # pseudo-models at the cohort's mean error rate, in each image's difficulty
_PRIOR_CLASS = 0.5  # pseudo-count per wrong class, in the confusion rates
_PRIOR_ANSWER = 0.5  # pseudo-answers from the confusion rates, in an image's wrong answers


@dataclass(frozen=True)
class SharedImage:
    """A hidden test image both models got wrong with the same class: its position in the
    hidden test set, its true class, the class both answered and (once drawn) its thumbnail
    as a PNG ``data:`` URI."""

    index: int
    label: str
    predicted: str
    thumbnail: str = ""


@dataclass(frozen=True)
class SharedMistakes:
    """The shared-mistakes signal of a pair (model in the module docstring).

    Attributes:
        n: hidden test images both were scored on.
        wrong_a: images ``a`` got wrong.
        wrong_b: images ``b`` got wrong.
        shared: images both got wrong with the same wrong class.
        expected: the number two independent models would share (the stated model).
        p_value: ``P(X >= shared)``, ``X ~ Poisson(expected)``.
        flagged: at least :data:`MIN_SHARED` shared and ``p_value`` below ``limit``.
        limit: the cohort's limit (:func:`mistakes_p_limit`).
        other_models: the models of the cohort the images' difficulty was estimated from (the
            pair left out, duplicates counted once); under :data:`MIN_OTHER_MODELS` the pair is
            never flagged (how hard each image is cannot be told).
        images: the shared mistakes, at most :data:`MAX_SHOWN_IMAGES`, in hidden-set order.
    """

    n: int
    wrong_a: int
    wrong_b: int
    shared: int
    expected: float
    p_value: float
    flagged: bool
    limit: float = 1e-6
    other_models: float = 0.0
    images: tuple[SharedImage, ...] = ()


def mistakes_p_limit(pairs: int) -> float:
    """The tail probability under which a pair is flagged on mistakes: ``1e-6``, or
    ``0.001 / pairs`` where that is smaller (a Bonferroni bound of 0.001 on any false flag in
    a cohort of ``pairs`` compared pairs)."""
    return min(1e-6, 0.001 / max(pairs, 1))


def mistakes_on(predicted: Any, labels: Any, limit: float) -> dict[tuple[int, int], SharedMistakes]:
    """The stated model (module docstring) over ``predicted`` (models x images, class indices,
    ``-1`` no class) against ``labels`` (images)."""
    from scipy import sparse, stats

    m, n = predicted.shape
    k = int(max(labels.max(), predicted.max())) + 1
    answer = np.where(predicted < 0, k, predicted)  # "no class" is a wrong class of its own
    width = k + 1
    wrong = answer != labels[None, :]
    rows, cols = np.nonzero(wrong)
    ones = np.ones(len(rows))
    hit = sparse.csr_matrix((ones, (rows, cols * width + answer[rows, cols])), shape=(m, n * width))
    shared = np.rint((hit @ hit.T).toarray()).astype(np.int64)
    every = sparse.csr_matrix((np.ones(m * n), (np.repeat(np.arange(m), n), (np.arange(n) * width)[None, :].repeat(
        m, axis=0).ravel() + answer.ravel())), shape=(m, n * width))
    agree = (every @ every.T).toarray() / n
    weight = 1.0 / (agree >= SAME_MODEL_AGREEMENT).sum(axis=1)  # a model and its duplicates count once
    errs = wrong.astype(np.float64)
    rate = errs.mean(axis=1)
    mean_rate = float((weight * rate).sum() / weight.sum())
    difficulty = weight @ errs
    # the wrong class: per image, the wrong answers of the other models, with one pseudo-answer
    # drawn from the cohort's confusion rates for the image's true class (half a count per class)
    conf = np.full((k, width), _PRIOR_CLASS)
    np.add.at(conf, (labels[cols], answer[rows, cols]), weight[rows])
    conf[np.arange(k), np.arange(k)] = 0.0  # the true class is no wrong answer
    by_class = conf / conf.sum(axis=1, keepdims=True)
    answers = np.zeros((n, width))
    np.add.at(answers, (cols, answer[rows, cols]), weight[rows])
    u = answers + _PRIOR_ANSWER * by_class[labels]
    u_sq, u_total = (u ** 2).sum(axis=1), u.sum(axis=1)
    u_own = u[np.arange(n)[None, :], answer] * errs  # each model's own wrong answer's count
    rows_of: list[tuple[int, Any, Any, Any, Any, Any]] = []  # per model a: b, shared, expected, p_value, others
    exact_rows: list[tuple[int, Any]] = []  # (a, positions in b) whose tail is computed exactly
    exact_chance: list[Any] = []
    for a in range(m - 1):
        b = np.arange(a + 1, m)
        wa, wb = weight[a], weight[b][:, None]
        others = weight.sum() - weight[a] - weight[b]
        d = (difficulty[None, :] - wa * errs[a][None, :] - wb * errs[b]
             + _PRIOR_MODELS * mean_rate) / (others + _PRIOR_MODELS)[:, None]
        mean_d = np.maximum(d.mean(axis=1, keepdims=True), 1e-12)
        p_a = np.minimum(1.0, d * rate[a] / mean_d)
        p_b = np.minimum(1.0, d * rate[b][:, None] / mean_d)
        # sum_c pi_i(c)^2 with the pair's own answers taken out of the counts u (expanded square)
        both = errs[a][None, :] * errs[b] * (answer[a][None, :] == answer[b])
        square = (u_sq[None, :] - 2 * wa * u_own[a][None, :] - 2 * wb * u_own[b] + wa ** 2 * errs[a][None, :]
                  + wb ** 2 * errs[b] + 2 * wa * wb * both)
        total = u_total[None, :] - wa * errs[a][None, :] - wb * errs[b]
        same = np.clip(square / np.maximum(total, 1e-12) ** 2, 0.0, 1.0)
        chance = p_a * p_b * same  # (pairs, images): both wrong the same way, by chance
        expected = chance.sum(axis=1)
        s = shared[a, b]
        p_value = np.where(s > 0, stats.poisson.sf(s - 1, expected), 1.0)
        exact = np.nonzero((p_value < EXACT_BELOW) & (s >= MIN_SHARED))[0]
        if len(exact):
            exact_rows.append((a, exact))
            exact_chance.append(chance[exact])
        rows_of.append((a, b, s, expected, p_value, others))
    if exact_rows:  # one recursion over every pair's row at once: each row's arithmetic is its own
        tails = _upper_tail(np.vstack(exact_chance),
                            np.concatenate([rows_of[a][2][exact] for a, exact in exact_rows]))
        at = 0
        for a, exact in exact_rows:
            rows_of[a][4][exact] = tails[at:at + len(exact)]
            at += len(exact)
    out: dict[tuple[int, int], SharedMistakes] = {}
    for a, b, s, expected, p_value, others in rows_of:
        for index, other in enumerate(b.tolist()):
            out[(a, other)] = SharedMistakes(
                n=n, wrong_a=int(wrong[a].sum()), wrong_b=int(wrong[other].sum()), shared=int(s[index]),
                expected=float(expected[index]), p_value=float(p_value[index]),
                flagged=bool(s[index] >= MIN_SHARED and p_value[index] < limit
                             and others[index] >= MIN_OTHER_MODELS - 1e-9),
                limit=limit, other_models=float(others[index]))
    return out


def _upper_tail(chance: Any, at_least: Any) -> Any:
    """Per row, ``P(X >= at_least)`` for ``X`` the number of successes of independent trials
    with the row's probabilities ``chance`` (rows x trials): the Poisson-binomial tail, by the
    direct convolution recursion over the trials (Hong, "On computing the distribution function
    for the Poisson binomial distribution", Computational Statistics & Data Analysis 59, 2013),
    the mass reaching ``at_least`` kept apart so that a tail of 1e-30 is exact, not ``1 - cdf``."""
    rows, top = len(at_least), int(at_least.max())
    pmf = np.zeros((rows, top + 1))
    pmf[:, 0] = 1.0
    tail = np.zeros(rows)
    index = np.arange(rows)
    for q in chance.T:
        pmf[:, 1:] = pmf[:, 1:] * (1.0 - q)[:, None] + pmf[:, :-1] * q[:, None]
        pmf[:, 0] *= 1.0 - q
        tail += pmf[index, at_least]
        pmf[index, at_least] = 0.0
    return tail
