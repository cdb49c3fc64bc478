"""Cohort integrity (issue 19): copied code, shared mistakes on the hidden test set, copied written answers.

Three signals over the notebooks of one challenge in a cohort (a ``grader check`` run, or an
event of the event server), each pair of notebooks compared on all three. They are evidence for the
coach, a reason to look, never a verdict: nothing here changes a score.

- **Code similarity** (:mod:`grader.integrity.fingerprints`): winnowing fingerprints as copydetect computes
  them over the notebooks' code cells, names, comments and layout not counting, the challenge's
  starter and the grader's injected cells as boilerplate; flagged from :data:`CODE_SHARE` of
  either notebook's code.
- **Shared mistakes** (:mod:`grader.integrity.mistakes`): the hidden test images both models got wrong with
  the same wrong class, against the number two independent models would share under a stated
  model (each image's difficulty and likely wrong answer from the rest of the cohort), with the
  tail probability of that many; flagged below :func:`mistakes_p_limit`.
- **Written answers** (:mod:`grader.integrity.answers`, issue 29): per coach-graded question both
  notebooks answered, winnowing over normalised word 5-grams, the question and the starter's cells
  as boilerplate; flagged with the code's calibration (half the shorter answer, at least
  :data:`MIN_MATCH_WORDS` matching words).

The API: :class:`IntegrityEntry` per notebook (team, challenge, code text, per-image predicted
class and hidden labels, written answers), :func:`similar_pairs` over any entries (the event server's coach
page), :func:`cohort_pairs` over a ``grader check`` run (thumbnails drawn).

Pure but for :func:`notebook_code` (reads a notebook), :func:`cohort_pairs` (reads the notebooks
and the hidden test set of a run) and :func:`with_thumbnails` (reads images).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.core import Settings
from grader.intake import INJECTED_TAG, PARAMETERS_TAG, is_placeholder, read_notebook
from grader.integrity.answers import (
    MIN_MATCH_WORDS,
    AnswerIndex,
    AnswerMatch,
    QuestionMatch,
    WrittenAnswer,
    boilerplate_answers,
)
from grader.integrity.fingerprints import CODE_SHARE, CodeMatch, Segment, code_signals, common_limit
from grader.integrity.mistakes import (
    MAX_SHOWN_IMAGES,
    SharedImage,
    SharedMistakes,
    mistakes_on,
    mistakes_p_limit,
)
from grader.score import NotebookResult, SubmissionResult, decode_predicted

if TYPE_CHECKING:
    from grader.data import HiddenTestSet

__all__ = [
    "CODE_SHARE",
    "MIN_MATCH_WORDS",
    "AnswerMatch",
    "CodeMatch",
    "IntegrityEntry",
    "QuestionMatch",
    "Segment",
    "SharedImage",
    "SharedMistakes",
    "SimilarPair",
    "THUMBNAIL_CACHE",
    "WrittenAnswer",
    "boilerplate_answers",
    "boilerplate_code",
    "code_of_cells",
    "cohort_pairs",
    "common_limit",
    "load_dependencies",
    "mistakes_p_limit",
    "notebook_code",
    "notebook_entry",
    "similar_pairs",
    "with_thumbnails",
]

log = logging.getLogger(__name__)

_PARAMETERS = ("DATA_DIR", "DEVICE", "PROFILE", "NEW_IMAGES_DIR", "MODEL_DIR")
THUMBNAIL_CACHE = 1024  # thumbnails kept (a 64 px PNG data URI: about 10 KB)


@dataclass(frozen=True)
class IntegrityEntry:
    """One notebook of a cohort, as the integrity signals read it.

    Attributes:
        team: the submission's name.
        notebook: the notebook's file name.
        challenge: the challenge id; only notebooks of one challenge are compared.
        code: the notebook's code cells as one text (:func:`code_of_cells`).
        predicted: per hidden test image, in the hidden test set's order, the index of the class
            the ``predict`` model answered in ``classes`` (``-1``: an answer that is no class);
            empty when the notebook has none.
        labels: per hidden test image, in the same order, the index of its true class; two
            entries are compared on mistakes only when their ``labels`` are equal (the same
            hidden test set).
        classes: the class names the indices refer to.
        folder: the submission's output folder (for links), may be empty.
        answers: its written answers to the rubric's coach-graded criteria, neither missing nor
            the starter's placeholder (student text), in the rubric's order.
    """

    team: str
    notebook: str
    challenge: str
    code: str
    predicted: tuple[int, ...] = ()
    labels: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    folder: str = ""
    answers: tuple[WrittenAnswer, ...] = ()


@dataclass(frozen=True)
class SimilarPair:
    """Two notebooks of one challenge with the three signals; listed when any is flagged.
    ``answers`` is None when the two answered no question in common."""

    challenge: str
    a: IntegrityEntry
    b: IntegrityEntry
    code: CodeMatch | None
    mistakes: SharedMistakes | None
    answers: AnswerMatch | None = None

    @property
    def flagged_on(self) -> list[str]:
        """The signals that flagged the pair: ``code``, ``mistakes``, ``answers``."""
        signals: tuple[tuple[str, CodeMatch | SharedMistakes | AnswerMatch | None], ...] = (
            ("code", self.code), ("mistakes", self.mistakes), ("answers", self.answers))
        return [name for name, signal in signals if signal is not None and signal.flagged]


def code_of_cells(cells: Sequence[Mapping[str, Any]]) -> str:
    """The code cells of a notebook (nbformat 4 cells) as one text, each headed by a comment
    with the student's cell number (1-based, markdown counted, the injected cell not); cells
    the grader injected and the cell tagged ``parameters`` (whose values the grader replaces)
    are left out. Comments count for nothing in the comparison."""
    parts, number = [], 0
    for cell in cells:
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        number += 1
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("cell_type") == "code" and str(cell.get("source", "")).strip():
            parts.append(f"# cell {number}\n{str(cell.get('source', '')).rstrip()}\n")
    return "\n".join(parts)


def notebook_code(path: Path) -> str:
    """:func:`code_of_cells` of the notebook at ``path``; ``""`` for a file that is not a
    readable notebook (that is the scorecard's business, not this one's)."""
    from grader.intake import MalformedNotebook

    try:
        return code_of_cells(read_notebook(path).cells)
    except MalformedNotebook:
        return ""


def boilerplate_code(starter: Path | None) -> str:
    """The boilerplate of a challenge: its starter notebook's code and the grader's injected
    parameters cell (as :func:`grader.intake.notebook.inject_parameters` writes it)."""
    injected = "# Parameters injected by the grader\n" + "\n".join(f"{name} = ''" for name in _PARAMETERS)
    return "\n".join([notebook_code(starter) if starter is not None and starter.is_file() else "", injected])


def similar_pairs(entries: Sequence[IntegrityEntry], *, boilerplate: Mapping[str, str] | None = None,
                  code_share: float = CODE_SHARE,
                  answer_boilerplate: Mapping[str, Sequence[str]] | None = None) -> list[SimilarPair]:
    """Compare every two notebooks of the same challenge on the three signals.

    Args:
        entries: the cohort's notebooks (any challenges; compared within each).
        boilerplate: per challenge id, code that does not count (:func:`boilerplate_code`).
        code_share: the share of matching code that flags a pair.
        answer_boilerplate: per challenge id, texts that do not count in written answers beside
            each question's own text (:func:`boilerplate_answers`: the starter's markdown cells).

    Returns:
        the pairs flagged on any signal, each with all three, by challenge, then the strongest
        evidence first (smallest tail probability, then largest share of code, then of an answer).
    """
    out: list[SimilarPair] = []
    by_challenge: dict[str, list[IntegrityEntry]] = {}
    for entry in entries:
        by_challenge.setdefault(entry.challenge, []).append(entry)
    for challenge, group in sorted(by_challenge.items()):
        mistakes = _mistake_signals(group)
        flagged = {pair for pair, m in mistakes.items() if m.flagged}
        index = AnswerIndex([e.answers for e in group], (answer_boilerplate or {}).get(challenge, ()),
                            common=common_limit(len(group)))
        answers = {pair: index.match(*pair) for pair in index.candidates()}
        flagged |= {pair for pair, found in answers.items() if found is not None and found.flagged}
        code = code_signals([e.code for e in group], (boilerplate or {}).get(challenge, ""),
                             share=code_share, common=common_limit(len(group)), also=flagged)
        flagged |= {pair for pair, c in code.items() if c.flagged}
        for i, j in sorted(flagged):
            c, m = code.get((i, j)), mistakes.get((i, j))
            w = answers[(i, j)] if (i, j) in answers else index.match(i, j)
            if m is not None and m.shared:
                m = replace(m, images=_shared_images(group[i], group[j]))
            out.append(SimilarPair(challenge=challenge, a=group[i], b=group[j], code=c, mistakes=m, answers=w))
    out.sort(key=lambda p: (p.challenge, p.mistakes.p_value if p.mistakes else 1.0,
                            -(p.code.share if p.code else 0.0), -(p.answers.share if p.answers else 0.0),
                            p.a.team, p.b.team))
    return out


def with_thumbnails(pair: SimilarPair, images_dir: Path, files: Sequence[str], *, size: int = 64) -> SimilarPair:
    """``pair`` with the thumbnails of its shared mistakes drawn from the hidden test set
    (``images_dir / files[index]``, :class:`grader.data.store.HiddenTestSet`), ``size`` px on a side at
    most; an image that cannot be read keeps an empty thumbnail. Each image's thumbnail is drawn
    once per process (:data:`THUMBNAIL_CACHE` kept): a hidden test set's files are written once and
    never change in place."""
    if pair.mistakes is None or not pair.mistakes.images:
        return pair
    drawn = [replace(im, thumbnail=_thumbnail(images_dir / files[im.index], size) if 0 <= im.index < len(files) else "")
             for im in pair.mistakes.images]
    return replace(pair, mistakes=replace(pair.mistakes, images=tuple(drawn)))


@functools.lru_cache(maxsize=THUMBNAIL_CACHE)
def _thumbnail(path: Path, size: int) -> str:
    """The PNG ``data:`` URI of the image at ``path``, ``size`` px on a side at most; ``""`` when it
    cannot be read."""
    from grader.data import decode, thumbnail_uri

    decoded = decode(path)
    return thumbnail_uri(decoded.image, size=size) if decoded.image else ""


def load_dependencies() -> None:
    """Import what :func:`similar_pairs` computes with (copydetect and Pygments' Python lexer, SciPy's
    sparse matrices and statistics: about 1.6 s on the benchmark machine, once per process), so
    that a server's first comparison does not wait for them; the event server calls it in its
    start-up thread (:func:`grader.server.serve.serve`)."""
    import scipy.sparse  # noqa: F401
    import scipy.stats  # noqa: F401
    from copydetect.utils import filter_code

    filter_code("x = 1\n", "warm.py", "python")  # Pygments finds and loads its Python lexer on first use


def cohort_pairs(results: Sequence[SubmissionResult], notebooks: Sequence[Sequence[Path]],
                 folders: Sequence[str], settings: Settings) -> list[SimilarPair]:
    """The similar pairs of a ``grader check`` run, thumbnails drawn.

    Args:
        results: the graded submissions.
        notebooks: per result, the paths of its notebooks as graded (a notebook result is
            matched to the path of the same file name).
        folders: per result, its output folder.
        settings: where the challenges, the data and the cached hidden test sets are.

    Returns:
        :func:`similar_pairs` over every notebook with a challenge; results scored on the
        practice split are compared on code only. A challenge whose hidden test set cannot be
        read is compared on code only (logged).

    Raises:
        ValueError: ``notebooks`` or ``folders`` differs in length from ``results``.
    """
    if not len(results) == len(notebooks) == len(folders):
        raise ValueError(f"{len(results)} results, {len(notebooks)} notebook lists, {len(folders)} folders")
    entries, boilerplate, hidden = _cohort_entries(results, notebooks, folders, settings)
    pairs = similar_pairs(entries, boilerplate={c: code for c, (code, _) in boilerplate.items()},
                          answer_boilerplate={c: texts for c, (_, texts) in boilerplate.items()})
    out = []
    for pair in pairs:
        test_set = hidden.get(pair.challenge)
        out.append(with_thumbnails(pair, test_set.images_dir, test_set.files) if test_set is not None else pair)
    return out


def _cohort_entries(results: Sequence[SubmissionResult], notebooks: Sequence[Sequence[Path]],
                    folders: Sequence[str], settings: Settings,
                    ) -> tuple[list[IntegrityEntry], dict[str, tuple[str, tuple[str, ...]]],
                               dict[str, HiddenTestSet | None]]:
    """The entries of :func:`cohort_pairs`, each challenge's boilerplate (of code, of written answers)
    and hidden test set."""
    from grader.core import GraderError, load_challenge
    from grader.data import ensure_hidden_test_set

    hidden: dict[str, HiddenTestSet | None] = {}
    boilerplate: dict[str, tuple[str, tuple[str, ...]]] = {}
    entries: list[IntegrityEntry] = []
    for result, paths, folder in zip(results, notebooks, folders, strict=True):
        by_name = {path.name: path for path in paths}
        for nb in result.notebooks:
            if nb.challenge is None or nb.notebook not in by_name:
                continue
            if nb.challenge not in hidden:
                try:
                    challenge = load_challenge(settings.project_dir, nb.challenge)
                    starter = challenge.folder / "starter.ipynb"
                    boilerplate[nb.challenge] = (boilerplate_code(starter), boilerplate_answers(starter))
                    # practice results carry no hidden-set predictions: code only, nothing to load
                    hidden[nb.challenge] = None if result.practice else ensure_hidden_test_set(settings, challenge)
                except GraderError as err:
                    log.warning("%s: comparing on code only: %s", nb.challenge, err)
                    hidden[nb.challenge] = None
            entries.append(notebook_entry(result.submission, nb, notebook_code(by_name[nb.notebook]),
                                          None if result.practice else hidden[nb.challenge], folder=folder))
    return entries, boilerplate, hidden


def notebook_entry(team: str, nb: NotebookResult, code: str, test_set: HiddenTestSet | None, *,
                   folder: str = "") -> IntegrityEntry:
    """The :class:`IntegrityEntry` of a graded notebook: its code, and its ``predict`` model's
    per-image answers (:attr:`grader.score.scorecard.ModelReport.predicted`) with the true classes of
    ``test_set``, the hidden test set it was scored on (None, or a set of another length: code
    only, as for a practice result); and its written answers, as ``result.json`` keeps them
    (:attr:`grader.score.scorecard.CriterionResult.answer` of its coach-graded criteria: those
    missing, empty or still the starter's placeholder left out)."""
    model = next((m for m in nb.models if m.role == "predict"), None)
    predicted: tuple[int, ...] = ()
    labels: tuple[int, ...] = ()
    if (model is not None and model.predicted and test_set is not None
            and len(model.predicted) == len(test_set.labels)):
        index = {name: i for i, name in enumerate(model.classes)}
        labels = tuple(index.get(label, -1) for label in test_set.labels)
        predicted = tuple(decode_predicted(model.predicted))
    answers = tuple(WrittenAnswer(criterion=c.id, question=c.question, text=c.answer) for c in nb.criteria
                    if c.coach_graded and c.answer is not None and c.answer.strip() and not is_placeholder(c.answer))
    return IntegrityEntry(team=team, notebook=nb.notebook, challenge=nb.challenge or "", code=code,
                          predicted=predicted, labels=labels,
                          classes=tuple(model.classes) if model is not None else (), folder=folder,
                          answers=answers)


def _mistake_signals(group: Sequence[IntegrityEntry]) -> dict[tuple[int, int], SharedMistakes]:
    """The mistakes signal of every pair of ``group`` scored on the same hidden test set
    (equal ``labels``), keyed by positions in ``group``; images not yet listed."""
    by_set: dict[tuple[int, ...], list[int]] = {}
    for index, entry in enumerate(group):
        if entry.labels and len(entry.predicted) == len(entry.labels):
            by_set.setdefault(entry.labels, []).append(index)
    limit = mistakes_p_limit(sum(len(v) * (len(v) - 1) // 2 for v in by_set.values()))
    out: dict[tuple[int, int], SharedMistakes] = {}
    for labels, members in by_set.items():
        if len(members) >= 2:
            predicted = np.array([group[i].predicted for i in members], dtype=np.int64)
            for (a, b), found in mistakes_on(predicted, np.asarray(labels, dtype=np.int64), limit).items():
                out[(members[a], members[b])] = found
    return out


def _shared_images(a: IntegrityEntry, b: IntegrityEntry) -> tuple[SharedImage, ...]:
    """The hidden images ``a`` and ``b`` both got wrong with the same class, in hidden-set order."""
    def name(index: int) -> str:
        return a.classes[index] if 0 <= index < len(a.classes) else "(no class)"

    found = [SharedImage(index=i, label=name(y), predicted=name(pa))
             for i, (pa, pb, y) in enumerate(zip(a.predicted, b.predicted, a.labels, strict=True))
             if pa == pb and pa != y]
    return tuple(found[:MAX_SHOWN_IMAGES])
