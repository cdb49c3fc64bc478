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

Why a size as well as a share (issue 28): a share of little code is little evidence. Two short
notebooks sharing one 8-line helper (262 matching characters, 52% of the shorter) reached the share
alone. The tools' documented figures are floors for *one* matching passage, not for a pair:
copydetect 0.5.0's ``noise_t`` and ``guarantee_t`` of 25 tokenized characters (``defaults.py``:
``NOISE_THRESHOLD = GUARANTEE_THRESHOLD = 25``, about one line) and JPlag's minimum token match for
Python of 12 tokens (``PythonLanguage.minimumTokenMatch``; 9 for Java), about one short function,
the size of that helper. Neither ships a floor on a pair's total; copydetect's report shows a pair
from ``display_t`` = 0.33 of a file (``DISPLAY_THRESHOLD``). The floor here takes that third of a
*whole solution*: :data:`MIN_MATCH_CHARS` is a third of the smallest complete reference solution
of the project's challenges (gear-classical's scikit-learn notebook, 1,083 tokenized characters,
about 75 lines: 361, rounded to 360), so a pair is flagged only when what matches would be a
substantial part of a solution of any challenge, and never on one shared helper alone.

The k-grams of a notebook's code and its fingerprint are computed once per text and kept
(:data:`KGRAM_CACHE` of each, bounded): the coach's page compares the same chosen notebooks again
each time a result arrives, and copydetect's tokenizer (Pygments) costs about 25 ms for an 8 KB
notebook. The tokenized texts can be carried to another process (:func:`tokenized`,
:func:`seed_tokenized`): ``grader serve`` computes its first pairs in a child process and hands the
server its tokenized texts with them, so the first page after a new result tokenizes that notebook
only. The k-gram hashes are not carried: they are Python's ``hash`` of ``str`` (copydetect's
``hashed_kgrams``), salted per process (``PYTHONHASHSEED``), so each process computes its own.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["CODE_SHARE", "MIN_MATCH_CHARS", "NOISE_CHARS", "CodeMatch", "Segment", "code_signals", "common_limit",
           "seed_tokenized", "tokenized"]

NOISE_CHARS = 25  # copydetect's noise threshold: shorter matches (tokenized characters) are noise
CODE_SHARE = 0.5  # a notebook's share of code in passages matching the other's
MIN_MATCH_CHARS = 360  # tokenized characters of matching code, at least: a third of the smallest solution (above)
KGRAM_CACHE = 2048  # notebooks whose k-grams and fingerprints are kept (about 80 KB each for an 8 KB notebook)


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


# tokenized texts handed over by another process (seed_tokenized), each used once by _tokenized
_SEEDED: dict[str, tuple[str, Any]] = {}
_SEEDED_LOCK = threading.Lock()


@functools.lru_cache(maxsize=KGRAM_CACHE)
def _tokenized(code: str) -> tuple[str, Any]:
    """copydetect's tokenized text of ``code`` (Python) and its offsets (its map from tokenized to
    raw positions, read-only); a text handed over by :func:`seed_tokenized` is not tokenized again."""
    with _SEEDED_LOCK:
        seeded = _SEEDED.pop(code, None)
    if seeded is not None:
        return seeded
    from copydetect.utils import filter_code

    filtered, offsets = filter_code(code, "notebook.py", "python")
    offsets = np.asarray(offsets)
    offsets.flags.writeable = False
    return filtered, offsets


def tokenized(codes: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """Per text of ``codes``: copydetect's tokenized text and its offsets (an int array of shape
    ``(n, 2)``: tokenized and raw positions, copydetect's ``filter_code``), as this
    process has them (tokenized here if not yet), for :func:`seed_tokenized` in another process."""
    return {code: _tokenized(code) for code in codes}


def seed_tokenized(found: dict[str, tuple[str, Any]]) -> None:
    """Take tokenized texts another process made (:func:`tokenized`): each text's first comparison
    here skips copydetect's tokenizer (Pygments, about 25 ms for an 8 KB notebook). At most
    :data:`KGRAM_CACHE` are kept; a text already compared here keeps its own."""
    with _SEEDED_LOCK:
        for code, (text, offsets) in list(found.items())[:KGRAM_CACHE]:
            offsets = np.asarray(offsets)
            offsets.flags.writeable = False
            _SEEDED[code] = (text, offsets)


@functools.lru_cache(maxsize=KGRAM_CACHE)
def _kgrams(code: str) -> tuple[int, Any, Any]:
    """The length of copydetect's tokenized text of ``code`` (Python), its offsets (copydetect's
    map from tokenized to raw positions) and its k-gram hashes; kept for the :data:`KGRAM_CACHE`
    texts used last (the arrays are read-only: every caller shares them)."""
    from copydetect.utils import hashed_kgrams

    filtered, offsets = _tokenized(code)
    hashes = hashed_kgrams(filtered, NOISE_CHARS) if len(filtered) >= NOISE_CHARS else np.array([], np.int64)
    hashes = np.asarray(hashes, dtype=np.int64)
    hashes.flags.writeable = False
    return len(filtered), offsets, hashes


def _covered(positions: Any, length: int) -> int:
    mask = np.zeros(length + NOISE_CHARS, dtype=bool)
    for shift in range(NOISE_CHARS):
        mask[positions + shift] = True
    return int(mask.sum())


@functools.lru_cache(maxsize=64)
def _boilerplate_hashes(boilerplate: str) -> Any:
    """The k-gram hashes of ``boilerplate``, sorted, once each (read-only)."""
    drop = np.unique(_kgrams(boilerplate)[2]) if boilerplate.strip() else np.array([], np.int64)
    drop.flags.writeable = False
    return drop


@functools.lru_cache(maxsize=KGRAM_CACHE)
def _fingerprint(code: str, boilerplate: str) -> _Print:
    """``code``'s fingerprint, ``boilerplate``'s k-grams left out; kept as :func:`_kgrams` is."""
    length, offsets, hashes = _kgrams(code)
    keep = ~np.isin(hashes, _boilerplate_hashes(boilerplate))
    positions = np.nonzero(keep)[0]
    kept = hashes[keep]
    kept.flags.writeable = positions.flags.writeable = False
    return _Print(raw=code, offsets=offsets, hashes=kept, positions=positions, coverage=_covered(positions, length))


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

    prints = [_fingerprint(code, boilerplate) for code in codes]
    if len(prints) < 2:
        return {}
    vocab, inverse = np.unique(np.concatenate([p.hashes for p in prints]), return_inverse=True)
    ids = np.split(inverse.ravel(), np.cumsum([len(p.hashes) for p in prints])[:-1])  # each hash's place in vocab
    rows = np.repeat(np.arange(len(prints)), [len(p.hashes) for p in prints])
    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, inverse.ravel())), shape=(len(prints), len(vocab)))
    present = (counts > 0).astype(np.float64)
    frequent = np.asarray(present.sum(axis=0)).ravel() > common
    if frequent.any():
        keep = sparse.diags((~frequent).astype(np.float64))
        counts, present = counts @ keep, present @ keep
        kept = [~frequent[own] for own in ids]
        prints = [replace(p, hashes=p.hashes[k], positions=p.positions[k]) for p, k in zip(prints, kept, strict=True)]
        ids = [own[k] for own, k in zip(ids, kept, strict=True)]
    shared = (counts @ present.T).toarray()  # shared[i, j]: positions of i whose k-gram j has
    cover = np.array([max(p.coverage, 1) for p in prints], dtype=np.float64)
    reach = NOISE_CHARS * shared >= share * cover[:, None]
    out: dict[tuple[int, int], CodeMatch] = {}
    candidates = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(reach | reach.T, k=1)), strict=True)}
    in_a, in_b = np.zeros(len(vocab), dtype=bool), np.zeros(len(vocab), dtype=bool)  # k-grams of a, of b
    for i, j in sorted(candidates | also):
        a, b = prints[i], prints[j]
        in_a[ids[i]] = in_b[ids[j]] = True
        sa = _slices(a.positions[in_b[ids[i]]])
        sb = _slices(b.positions[in_a[ids[j]]])
        in_a[ids[i]] = in_b[ids[j]] = False
        over_a, over_b = int((sa[1] - sa[0]).sum()), int((sb[1] - sb[0]).sum())
        share_a, share_b = over_a / max(a.coverage, 1), over_b / max(b.coverage, 1)
        flagged = max(share_a, share_b) >= share and min(over_a, over_b) >= MIN_MATCH_CHARS
        out[(i, j)] = CodeMatch(
            share_a=share_a, share_b=share_b, matched_chars=over_a, flagged=flagged,
            a_segments=_segments(a, sa) if flagged else (), b_segments=_segments(b, sb) if flagged else ())
    return out
