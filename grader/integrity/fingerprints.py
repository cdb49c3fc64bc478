"""Code similarity for :mod:`grader.integrity.pairs`: copydetect's fingerprints over notebooks' code.

Winnowing fingerprints (Schleimer, Wilkerson and Aiken, "Winnowing: local
algorithms for document fingerprinting", SIGMOD 2003) as the ``copydetect`` package computes them:
its tokenizer replaces every variable, function and class name by one letter and drops comments
and whitespace (so renaming variables or reformatting hides nothing), then every k-gram of
:data:`NOISE_CHARS` characters of that text is hashed (copydetect's default noise and guarantee
thresholds of 25: a window of one, every k-gram kept). The k-grams of the challenge's starter
notebook and of the grader's injected parameters cell are boilerplate and do not count; nor do
k-grams found in more than :func:`common_limit` notebooks of the cohort (MOSS's ``-m`` option,
default 10: a passage in many programs is course material, not copying; here at least 10, and a
tenth of a large cohort).
A notebook's share is the part of its remaining code that lies in passages matching the other
notebook, copydetect's ``compare_files`` measure. A pair is flagged when either notebook's share
is at least :data:`CODE_SHARE` over at least :data:`MIN_MATCH_CHARS` matching characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["CODE_SHARE", "MIN_MATCH_CHARS", "NOISE_CHARS", "CodeMatch", "Segment", "code_signals", "common_limit"]

NOISE_CHARS = 25  # copydetect's noise threshold: shorter matches (tokenized characters) are noise
CODE_SHARE = 0.5  # a notebook's share of code in passages matching the other's
MIN_MATCH_CHARS = 200  # tokenized characters of matching code, at least (a few lines)


@dataclass(frozen=True)
class Segment:
    """A run of a notebook's code: ``text`` as written, ``matched`` whether it lies in a
    passage that matches the other notebook."""

    text: str
    matched: bool


@dataclass(frozen=True)
class CodeMatch:
    """The code signal of a pair.

    Attributes:
        share_a: share of ``a``'s code (boilerplate left out) in passages matching ``b``, 0..1.
        share_b: the same for ``b``.
        matched_chars: tokenized characters of ``a`` in matching passages.
        flagged: whether the pair passes the code rule (see the module docstring).
        a_segments: ``a``'s code, split into matching and other runs (empty unless flagged).
        b_segments: the same for ``b``.
    """

    share_a: float
    share_b: float
    matched_chars: int
    flagged: bool
    a_segments: tuple[Segment, ...] = ()
    b_segments: tuple[Segment, ...] = ()

    @property
    def share(self) -> float:
        """The larger of the two shares."""
        return max(self.share_a, self.share_b)


def common_limit(notebooks: int) -> int:
    """The number of notebooks of a cohort of ``notebooks`` a k-gram may be found in and still
    count: 10 (MOSS's default ``-m``), or a tenth of the cohort where that is more."""
    return max(10, notebooks // 10)


@dataclass(frozen=True)
class _Print:
    """A notebook's fingerprint: ``raw`` code, ``offsets`` copydetect's map from tokenized to
    raw positions, ``hashes`` of the k-grams kept (boilerplate out) at tokenized ``positions``,
    ``coverage`` tokenized characters those k-grams cover."""

    raw: str
    offsets: Any
    hashes: Any
    positions: Any
    coverage: int
    unique: Any = None  # ``hashes`` sorted, once each


def _member(values: Any, sorted_unique: Any) -> Any:
    """Which of ``values`` are in ``sorted_unique`` (a binary search: faster than ``np.isin``)."""
    if len(sorted_unique) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)
    return sorted_unique[at] == values


def _kgrams(code: str) -> tuple[str, Any, Any]:
    """copydetect's tokenized text, offsets and k-gram hashes of ``code`` (Python)."""
    from copydetect.utils import filter_code, hashed_kgrams

    filtered, offsets = filter_code(code, "notebook.py", "python")
    hashes = hashed_kgrams(filtered, NOISE_CHARS) if len(filtered) >= NOISE_CHARS else np.array([], np.int64)
    return filtered, offsets, np.asarray(hashes, dtype=np.int64)


def _covered(positions: Any, length: int) -> int:
    mask = np.zeros(length + NOISE_CHARS, dtype=bool)
    for shift in range(NOISE_CHARS):
        mask[positions + shift] = True
    return int(mask.sum())


def _fingerprint(code: str, drop: Any) -> _Print:
    filtered, offsets, hashes = _kgrams(code)
    keep = ~np.isin(hashes, drop)
    positions = np.nonzero(keep)[0]
    return _Print(raw=code, offsets=offsets, hashes=hashes[keep], positions=positions,
                  coverage=_covered(positions, len(filtered)), unique=np.unique(hashes[keep]))


def _slices(positions: Any) -> Any:
    """Tokenized ``[starts, ends]`` of the passages that k-grams at ``positions`` cover
    (copydetect's ``get_copied_slices``)."""
    from copydetect.utils import get_copied_slices

    return np.asarray(get_copied_slices(positions, NOISE_CHARS), dtype=np.int64)


def _segments(doc: _Print, slices: Any) -> tuple[Segment, ...]:
    """``doc``'s raw code cut at the passages ``slices`` (tokenized positions), mapped back to
    raw positions as copydetect's ``compare_files`` does."""
    if slices.shape[1] == 0:
        return (Segment(doc.raw, False),)
    raw = slices.copy()
    if len(doc.offsets) > 0:
        index = np.clip(np.searchsorted(doc.offsets[:, 0], slices), 0, doc.offsets.shape[0] - 1)
        raw = slices + doc.offsets[:, 1][index]
    out, at = [], 0
    for start, end in zip(raw[0].tolist(), raw[1].tolist(), strict=True):
        start, end = max(start, at), min(end, len(doc.raw))
        if start > at:
            out.append(Segment(doc.raw[at:start], False))
        if end > start:
            out.append(Segment(doc.raw[start:end], True))
        at = max(at, end)
    if at < len(doc.raw):
        out.append(Segment(doc.raw[at:], False))
    return tuple(out)


def code_signals(codes: Sequence[str], boilerplate: str, *, share: float, common: int,
                  also: set[tuple[int, int]]) -> dict[tuple[int, int], CodeMatch]:
    """The code signal of every pair ``(i, j)``, ``i < j``, that could reach ``share``, and of
    the pairs ``also`` names.

    Candidates come from one sparse product (positions of ``i`` whose k-gram ``j`` has, for
    every pair at once); a pair whose every such position could not cover ``share`` of either
    notebook is left out, the others are measured exactly.
    """
    from scipy import sparse

    drop = np.unique(_kgrams(boilerplate)[2]) if boilerplate.strip() else np.array([], np.int64)
    prints = [_fingerprint(code, drop) for code in codes]
    if len(prints) < 2:
        return {}
    vocab, inverse = np.unique(np.concatenate([p.hashes for p in prints]), return_inverse=True)
    rows = np.repeat(np.arange(len(prints)), [len(p.hashes) for p in prints])
    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, inverse)), shape=(len(prints), len(vocab)))
    present = (counts > 0).astype(np.float64)
    frequent = np.asarray(present.sum(axis=0)).ravel() > common
    if frequent.any():
        keep = sparse.diags((~frequent).astype(np.float64))
        counts, present = counts @ keep, present @ keep
        prints = [replace(p, hashes=p.hashes[kept], positions=p.positions[kept], unique=np.unique(p.hashes[kept]))
                  for p in prints for kept in [~_member(p.hashes, vocab[frequent])]]
    shared = (counts @ present.T).toarray()  # shared[i, j]: positions of i whose k-gram j has
    cover = np.array([max(p.coverage, 1) for p in prints], dtype=np.float64)
    reach = NOISE_CHARS * shared >= share * cover[:, None]
    out: dict[tuple[int, int], CodeMatch] = {}
    candidates = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(reach | reach.T, k=1)), strict=True)}
    for i, j in sorted(candidates | also):
        a, b = prints[i], prints[j]
        sa = _slices(a.positions[_member(a.hashes, b.unique)])
        sb = _slices(b.positions[_member(b.hashes, a.unique)])
        over_a, over_b = int((sa[1] - sa[0]).sum()), int((sb[1] - sb[0]).sum())
        share_a, share_b = over_a / max(a.coverage, 1), over_b / max(b.coverage, 1)
        flagged = max(share_a, share_b) >= share and min(over_a, over_b) >= MIN_MATCH_CHARS
        out[(i, j)] = CodeMatch(
            share_a=share_a, share_b=share_b, matched_chars=over_a, flagged=flagged,
            a_segments=_segments(a, sa) if flagged else (), b_segments=_segments(b, sb) if flagged else ())
    return out
