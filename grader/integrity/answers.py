"""Written answers compared across teams for :mod:`grader.integrity.pairs`: the third signal, ``answers``.

For each coach-graded criterion (:mod:`grader.score.checks.answers`) that both notebooks of a pair
answered (not missing, not the starter's placeholder), the passages the two answers share, found
as the code's are: winnowing fingerprints (Schleimer, Wilkerson and Aiken, "Winnowing: local
algorithms for document fingerprinting", SIGMOD 2003) over normalised *word* k-grams. An answer is
cut into words (runs of letters and digits, Unicode; ``0.52`` and ``don't`` one word each),
lower-cased (``casefold``) with the punctuation inside a word dropped, so capitals, punctuation,
emphasis, line breaks and spacing hide nothing; every run of :data:`K_WORDS` words is a k-gram.
As copydetect does for code by default (noise and guarantee thresholds equal: a winnowing window of
one), every k-gram is kept: answers are short (the references' are 105 to 141 words), so keeping
them all costs little and finds every shared passage of :data:`K_WORDS` words or more.

Boilerplate does not count: the question's text (as the rubric states it) and the challenge's
starter notebook's markdown cells (its question cells and the answer cells' placeholder
``*YOUR ANSWER HERE*``, :func:`boilerplate_answers`): a k-gram found in them is left out, and a
boilerplate text shorter than :data:`K_WORDS` words (the placeholder) is cut out of the answer's
words before its k-grams are made. Nor do k-grams found in the answers of more than
:func:`grader.integrity.fingerprints.common_limit` notebooks of the cohort to the same question
(MOSS's ``-m``, as for code: a phrase in many answers is the course's wording, not copying).

An answer's share is the part of its remaining words (those its kept k-grams cover) that lies in
passages matching the other answer. A question is flagged with the code's calibration: the
shorter answer's share at least :data:`ANSWER_SHARE` (:data:`grader.integrity.fingerprints.CODE_SHARE`,
0.5) *and* at least :data:`MIN_MATCH_WORDS` matching words in each answer.

Why that size (as :data:`grader.integrity.fingerprints.MIN_MATCH_CHARS` for code): a share of a
short answer is little evidence. Two answers of 20 words that both say "the network has no notion
of neighbouring pixels" share half their words and prove nothing. The floor is copydetect's
``display_t`` = 0.33 of a *whole* answer: a third of the shortest complete reference answer of the
shipped challenges (cifar10-mlp's ``food-image``, 105 words as counted here; the references'
answers, cells tagged ``answer:*`` in ``reference_solutions/*/*.ipynb``, are 105 to 141 words):
35 words, about two sentences. A pair is flagged on a question only when what matches would be a
substantial part of a good answer, never on one shared phrase or sentence.

Pure but for :func:`boilerplate_answers` (reads the starter notebook): texts in, matches out.
:class:`AnswerIndex` indexes a challenge's answers once (the candidates: pairs whose shared k-grams
could reach the size; a pair flagged on another signal is measured on demand). Each answer's
k-grams are computed once per text and kept (:data:`ANSWER_CACHE`, bounded), as the code's are.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from grader.intake import ANSWER_WORD, PLACEHOLDER
from grader.integrity.fingerprints import CODE_SHARE, Segment

__all__ = ["ANSWER_SHARE", "K_WORDS", "MIN_MATCH_WORDS", "AnswerIndex", "AnswerMatch", "QuestionMatch", "WrittenAnswer",
           "answer_signals", "answered_both", "boilerplate_answers", "words_of"]

K_WORDS = 5  # words in a k-gram: shorter shared runs are noise
ANSWER_SHARE = CODE_SHARE  # the shorter answer's share in passages matching the other's
MIN_MATCH_WORDS = 35  # matching words in each answer, at least: a third of the shortest reference answer (above)
ANSWER_CACHE = 4096  # answers whose words and k-grams are kept (a few KB each)
_INNER = re.compile(r"[.,'’]")


@dataclass(frozen=True)
class WrittenAnswer:
    """A notebook's answer to one coach-graded criterion, as compared.

    Attributes:
        criterion: the criterion's id.
        question: the question's text (the rubric's), boilerplate.
        text: the answer (markdown, student text), neither missing nor the placeholder.
    """

    criterion: str
    question: str
    text: str


@dataclass(frozen=True)
class QuestionMatch:
    """The answers signal of a pair on one question.

    Attributes:
        criterion: the criterion's id.
        question: the question's text.
        share_a: share of ``a``'s answer (boilerplate left out) in passages matching ``b``'s, 0..1.
        share_b: the same for ``b``.
        words_a: the words of ``a``'s answer that count (those its kept k-grams cover).
        words_b: the same for ``b``.
        matched_words: the fewer of the two answers' words in matching passages.
        flagged: whether the question passes the rule (module docstring).
        a_segments: ``a``'s answer as written, split into matching and other runs (empty unless flagged).
        b_segments: the same for ``b``.
    """

    criterion: str
    question: str
    share_a: float
    share_b: float
    words_a: int
    words_b: int
    matched_words: int
    flagged: bool
    a_segments: tuple[Segment, ...] = ()
    b_segments: tuple[Segment, ...] = ()

    @property
    def share(self) -> float:
        """The shorter answer's share (the fewer words that count; of equal ones, the larger share)."""
        if self.words_a == self.words_b:
            return max(self.share_a, self.share_b)
        return self.share_a if self.words_a < self.words_b else self.share_b


@dataclass(frozen=True)
class AnswerMatch:
    """The answers signal of a pair: ``compared`` the questions both notebooks answered, ``questions``
    those of them whose answers share a passage (in ``a``'s order)."""

    compared: int
    questions: tuple[QuestionMatch, ...] = ()

    @property
    def flagged(self) -> bool:
        """Whether any question is flagged."""
        return any(q.flagged for q in self.questions)

    @property
    def share(self) -> float:
        """The largest :attr:`QuestionMatch.share` of the flagged questions (0 when none is)."""
        return max((q.share for q in self.questions if q.flagged), default=0.0)


@dataclass(frozen=True)
class _Words:
    """An answer's words: ``norms`` normalised, ``spans`` their ``(start, end)`` in the raw text."""

    raw: str
    norms: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Print:
    """An answer's fingerprint: its words, and per kept k-gram its first word's index (``positions``)
    and its hash; ``cover`` the words the kept k-grams cover."""

    words: _Words
    positions: tuple[int, ...]
    hashes: tuple[int, ...]
    cover: int


def words_of(text: str) -> list[str]:
    """The normalised words of ``text``: runs of letters and digits (``0.52`` and ``don't`` one word
    each), case-folded, the punctuation inside a word dropped (``dont``)."""
    return [_INNER.sub("", m.group().casefold()) for m in ANSWER_WORD.finditer(text)]


@functools.lru_cache(maxsize=ANSWER_CACHE)
def _words(text: str, cut: tuple[tuple[str, ...], ...]) -> _Words:
    """``text``'s words, every run of words equal to one of ``cut`` (short boilerplate) left out."""
    found = [(_INNER.sub("", m.group().casefold()), m.span()) for m in ANSWER_WORD.finditer(text)]
    drop = [False] * len(found)
    for run in cut:
        n = len(run)
        for i in range(len(found) - n + 1):
            if all(found[i + j][0] == run[j] for j in range(n)):
                drop[i:i + n] = [True] * n
    kept = [f for f, d in zip(found, drop, strict=True) if not d]
    return _Words(raw=text, norms=tuple(w for w, _ in kept), spans=tuple(s for _, s in kept))


@functools.lru_cache(maxsize=64)
def _boilerplate(texts: tuple[str, ...]) -> tuple[frozenset[int], tuple[tuple[str, ...], ...]]:
    """The k-gram hashes of ``texts`` and, of those shorter than :data:`K_WORDS` words, their words."""
    hashes: set[int] = set()
    short: list[tuple[str, ...]] = []
    for text in texts:
        words = tuple(words_of(text))
        if len(words) >= K_WORDS:
            hashes.update(hash(words[i:i + K_WORDS]) for i in range(len(words) - K_WORDS + 1))
        elif words:
            short.append(words)
    return frozenset(hashes), tuple(sorted(set(short), key=len, reverse=True))


@functools.lru_cache(maxsize=ANSWER_CACHE)
def _fingerprint(text: str, boilerplate: tuple[str, ...]) -> _Print:
    """``text``'s fingerprint with the k-grams of ``boilerplate`` left out (module docstring)."""
    drop, cut = _boilerplate(boilerplate)
    words = _words(text, cut)
    positions, hashes = [], []
    for i in range(len(words.norms) - K_WORDS + 1):
        h = hash(words.norms[i:i + K_WORDS])  # of a tuple of str: stable within the process, all that is needed
        if h not in drop:
            positions.append(i)
            hashes.append(h)
    return _Print(words=words, positions=tuple(positions), hashes=tuple(hashes), cover=_covered(positions))


def _covered(positions: Iterable[int]) -> int:
    return len({p + j for p in positions for j in range(K_WORDS)})


def _runs(positions: Iterable[int]) -> list[tuple[int, int]]:
    """The ``[first, last]`` word indexes of the passages k-grams at ``positions`` cover."""
    out: list[tuple[int, int]] = []
    for p in sorted(set(positions)):
        if out and p <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], p + K_WORDS - 1))
        else:
            out.append((p, p + K_WORDS - 1))
    return out


def _segments(words: _Words, runs: Sequence[tuple[int, int]]) -> tuple[Segment, ...]:
    """The answer as written, cut at the passages ``runs`` (word indexes) cover."""
    out, at = [], 0
    for first, last in runs:
        start, end = words.spans[first][0], words.spans[last][1]
        if start > at:
            out.append(Segment(words.raw[at:start], False))
        out.append(Segment(words.raw[start:end], True))
        at = end
    if at < len(words.raw):
        out.append(Segment(words.raw[at:], False))
    return tuple(out)


def _question(criterion: str, question: str, a: _Print, b: _Print, common: frozenset[int]) -> QuestionMatch | None:
    """The match of two answers' fingerprints, ``common`` k-grams not counted; None when they share none."""
    in_b, in_a = set(b.hashes) - common, set(a.hashes) - common
    at_a = [p for p, h in zip(a.positions, a.hashes, strict=True) if h in in_b]
    if not at_a:
        return None
    at_b = [p for p, h in zip(b.positions, b.hashes, strict=True) if h in in_a]
    over_a, over_b = _covered(at_a), _covered(at_b)
    found = QuestionMatch(criterion=criterion, question=question, share_a=over_a / max(a.cover, 1),
                          share_b=over_b / max(b.cover, 1), words_a=a.cover, words_b=b.cover,
                          matched_words=min(over_a, over_b), flagged=False)
    if found.share >= ANSWER_SHARE and found.matched_words >= MIN_MATCH_WORDS:
        return replace(found, flagged=True, a_segments=_segments(a.words, _runs(at_a)),
                       b_segments=_segments(b.words, _runs(at_b)))
    return found


def answered_both(a: Sequence[WrittenAnswer], b: Sequence[WrittenAnswer]) -> list[str]:
    """The criteria both ``a`` and ``b`` answered, in ``a``'s order."""
    theirs = {w.criterion for w in b}
    return [w.criterion for w in a if w.criterion in theirs]


class AnswerIndex:
    """The written answers of one challenge's notebooks, indexed once for :func:`answer_signals`:
    each answer's fingerprint, the k-grams too common to count, and per pair the questions whose
    answers share a k-gram.

    Args:
        answers: per notebook, its written answers (one per criterion at most).
        boilerplate: texts that do not count beside each question's own (:func:`boilerplate_answers`).
        common: a k-gram in the answers of more notebooks than this to one question does not count.
    """

    def __init__(self, answers: Sequence[Sequence[WrittenAnswer]], boilerplate: Sequence[str], *,
                 common: int) -> None:
        self._answers = answers
        self._prints = [{w.criterion: _fingerprint(w.text, (w.question, PLACEHOLDER, *boilerplate)) for w in written}
                        for written in answers]
        self._questions = {w.criterion: w.question for written in answers for w in written}
        # per pair and question, the k-gram positions of each answer whose k-gram the other has
        self._shared: dict[tuple[int, int], dict[str, list[int]]] = {}
        self._dropped: dict[str, frozenset[int]] = {}
        for criterion in self._questions:
            holders: dict[int, list[tuple[int, int]]] = {}
            for index, printed in enumerate(self._prints):
                if criterion in printed:
                    for h, count in Counter(printed[criterion].hashes).items():
                        holders.setdefault(h, []).append((index, count))
            self._dropped[criterion] = frozenset(h for h, who in holders.items() if len(who) > common)
            for who in holders.values():
                if 2 <= len(who) <= common:
                    for x, (i, ci) in enumerate(who):
                        for j, cj in who[x + 1:]:
                            at = self._shared.setdefault((i, j), {}).setdefault(criterion, [0, 0])
                            at[0] += ci
                            at[1] += cj

    def candidates(self) -> set[tuple[int, int]]:
        """The pairs ``(i, j)``, ``i < j``, that could be flagged: a question's matched words are at
        most :data:`K_WORDS` per shared k-gram position, so the others cannot reach the size."""
        return {pair for pair, found in self._shared.items()
                if any(K_WORDS * min(counts) >= MIN_MATCH_WORDS for counts in found.values())}

    def match(self, i: int, j: int) -> AnswerMatch | None:
        """The answers signal of notebooks ``i`` and ``j``; None when they answered no question in common."""
        both = answered_both(self._answers[i], self._answers[j])
        if not both:
            return None
        shared = self._shared.get((min(i, j), max(i, j)), {})
        found = [_question(c, self._questions[c], self._prints[i][c], self._prints[j][c], self._dropped[c])
                 for c in both if c in shared]
        return AnswerMatch(compared=len(both), questions=tuple(q for q in found if q is not None))


def answer_signals(answers: Sequence[Sequence[WrittenAnswer]], boilerplate: Sequence[str], *, common: int,
                   also: set[tuple[int, int]]) -> dict[tuple[int, int], AnswerMatch]:
    """The answers signal of every pair ``(i, j)``, ``i < j``, that could be flagged
    (:meth:`AnswerIndex.candidates`) and of the pairs ``also`` names, where both answered a question.

    Args:
        answers: per notebook of one challenge, its written answers (one per criterion at most).
        boilerplate: texts that do not count beside each question's own (:func:`boilerplate_answers`).
        common: a k-gram in the answers of more notebooks than this to one question does not count.
        also: pairs to measure even when they could not be flagged.

    Returns:
        per pair, its :class:`AnswerMatch` (each question both answered compared; those sharing a
        passage listed).
    """
    index = AnswerIndex(answers, boilerplate, common=common)
    found = {pair: index.match(*pair) for pair in sorted(index.candidates() | also)}
    return {pair: match for pair, match in found.items() if match is not None}


def boilerplate_answers(starter: Path | None) -> tuple[str, ...]:
    """The written answers' boilerplate of a challenge: its starter notebook's markdown cells (the
    questions as the starter asks them, the answer cells' placeholder); ``()`` for no starter or
    one that is not a readable notebook."""
    from grader.intake import MalformedNotebook, read_notebook

    if starter is None or not starter.is_file():
        return ()
    try:
        cells = read_notebook(starter).cells
    except MalformedNotebook:
        return ()
    return tuple(str(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown")

