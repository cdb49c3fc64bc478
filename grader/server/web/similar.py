"""The coach's similar pairs of an event (:func:`similar`): each team's chosen submission per
challenge compared on its code, on the hidden test images it got wrong and on its written answers
(kept in its result's JSON; :mod:`grader.integrity.pairs`), for ``/coach/similar``.

Kept per set of results (issue 28: 4.4 s a view on a real event): the pairs are computed once for
each set of chosen submissions (per challenge, each team's chosen submission id) and kept with that
set beside the event's store, so a repeat view costs one read of the results and a new result (or
a team's other final choice) computes them again. What does not change while the server runs is
kept for the process: each challenge's hidden test set (listing CIFAR-10's 60,000 files), its
starter's code, and (in :mod:`grader.integrity`) each notebook's k-grams and fingerprint, by its
text, and each drawn thumbnail. Computing again after one new result tokenizes that one notebook
only: 0.12 to 0.27 s a view for 60 teams on gear-cnn (``benchmarks/server.py``, phase 6, on the
2-core development VM; benchmarks/RESULTS.md), where every view took 1.5 to 2.4 s before.
``grader serve`` computes the pairs of the results so far at start, in a child process
(:func:`similar_in_child`, then :func:`keep_similar` here), so the coach's first view is kept too
and the server's pages do not wait for that computation (issue 28: computed in the server's own
interpreter it held the GIL for seconds: the coach's leaderboard went from 79 to 733 ms at p95).
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from grader.server.store import finals_of
from grader.server.web.boards import Graded, chosen
from grader.server.web.options import AppOptions
from grader.server.web.pages import Site

if TYPE_CHECKING:
    from pathlib import Path

    from grader.core import Settings
    from grader.data import HiddenTestSet
    from grader.integrity import IntegrityEntry, SimilarPair
    from grader.server.store import Store

__all__ = ["KeptPairs", "keep_similar", "precompute_similar", "similar", "similar_in_child"]

log = logging.getLogger(__name__)

# the set of chosen submissions: per challenge of the event, (team, submission id) of each team's choice
ChosenKey = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


@dataclass(frozen=True)
class KeptPairs:
    """The pairs of one event over one set of chosen submissions (``key``) and how many notebooks
    were compared (picklable: :func:`similar_in_child` sends one back to the server, with the
    notebooks' tokenized code, ``tokens``: :func:`grader.integrity.tokenized`)."""

    event: str
    key: ChosenKey
    pairs: list[SimilarPair]
    compared: int
    tokens: dict[str, tuple[str, Any]] = field(default_factory=dict)


# per store (dropped with it): the last pairs computed, and the lock one computation holds (ten
# coach tabs asking at once compute once)
_KEPT: weakref.WeakKeyDictionary[Store, KeptPairs] = weakref.WeakKeyDictionary()
_COMPUTING: weakref.WeakKeyDictionary[Store, threading.Lock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


@functools.lru_cache(maxsize=64)
def _hidden_test_set(settings: Settings, challenge_id: str) -> HiddenTestSet:
    """The hidden test set of ``challenge_id``, listed once per server process (the datasets do not
    change while it serves; listing CIFAR-10's 60,000 files on every page would).

    Raises:
        GraderError: as :func:`grader.data.hidden.ensure_hidden_test_set` (not cached: the next page tries again).
    """
    from grader.core import load_challenge
    from grader.data import ensure_hidden_test_set

    return ensure_hidden_test_set(settings, load_challenge(settings.project_dir, challenge_id))


@functools.lru_cache(maxsize=64)
def _boilerplate(settings: Settings, challenge_id: str) -> str:
    """:func:`grader.integrity.pairs.boilerplate_code` of ``challenge_id``'s starter notebook, read once
    per process (the project's files do not change while it serves).

    Raises:
        ChallengeError: no such challenge (not cached).
    """
    from grader.core import load_challenge
    from grader.integrity import boilerplate_code

    return boilerplate_code(load_challenge(settings.project_dir, challenge_id).folder / "starter.ipynb")


@functools.lru_cache(maxsize=64)
def _answer_boilerplate(settings: Settings, challenge_id: str) -> tuple[str, ...]:
    """:func:`grader.integrity.answers.boilerplate_answers` of ``challenge_id``'s starter notebook (its
    markdown cells), read once per process as :func:`_boilerplate` is.

    Raises:
        ChallengeError: no such challenge (not cached).
    """
    from grader.core import load_challenge
    from grader.integrity import boilerplate_answers

    return boilerplate_answers(load_challenge(settings.project_dir, challenge_id).folder / "starter.ipynb")


def similar(site: Site) -> tuple[list[SimilarPair], int]:
    """The similar pairs of the event (:func:`grader.integrity.pairs.similar_pairs`) over each team's
    chosen submission per challenge, with the code :func:`grader.server.work.worker.save_code` kept
    and the shared wrong images drawn from the hidden test set; and how many notebooks were
    compared. A challenge whose hidden test set cannot be read is compared on code only.

    Computed once per set of chosen submissions (module docstring): the same set answers at the
    cost of reading the results; another set (a new result, a team removed or choosing another
    final submission) computes the pairs again.

    Raises:
        DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        ChallengeError: a challenge of the event is not in the project.
    """
    picks, key = _picks(site)
    kept = _KEPT.get(site.store)
    if kept is not None and kept.event == site.event and kept.key == key:
        return kept.pairs, kept.compared
    with _GUARD:
        computing = _COMPUTING.setdefault(site.store, threading.Lock())
    with computing:
        kept = _KEPT.get(site.store)
        if kept is None or kept.event != site.event or kept.key != key:
            pairs, entries = _compute(site, picks)
            kept = KeptPairs(event=site.event, key=key, pairs=pairs, compared=len(entries))
            _KEPT[site.store] = kept
    return kept.pairs, kept.compared


def _picks(site: Site) -> tuple[dict[str, list[Graded]], ChosenKey]:
    """Per challenge of the event, each team's chosen submission; and the set's key."""
    done = site.graded()
    finals = finals_of(site.store, site.event)  # the teams' own choices (grader.server.store.finals)
    picks = {c: chosen(done, c, eta=site.options.eta, finals=finals) for c in site.event_row().challenges}
    key: ChosenKey = tuple((c, tuple((g.team, g.submission_id) for g in gs)) for c, gs in picks.items())
    return picks, key


def _compute(site: Site, picks: dict[str, list[Graded]]) -> tuple[list[SimilarPair], list[IntegrityEntry]]:
    """:func:`similar`'s pairs over ``picks`` (per challenge, the chosen submissions), computed, and
    the notebooks compared."""
    from grader.core import GraderError
    from grader.integrity import notebook_entry, similar_pairs, with_thumbnails
    from grader.server.work import load_code

    entries: list[IntegrityEntry] = []
    boilerplate: dict[str, str] = {}
    answer_boilerplate: dict[str, tuple[str, ...]] = {}
    hidden: dict[str, HiddenTestSet | None] = {}
    for challenge_id, gs in picks.items():
        boilerplate[challenge_id] = _boilerplate(site.settings, challenge_id)
        answer_boilerplate[challenge_id] = _answer_boilerplate(site.settings, challenge_id)
        try:
            hidden[challenge_id] = _hidden_test_set(site.settings, challenge_id)
        except GraderError as err:
            log.warning("%s: similar pairs on code only: %s", challenge_id, err)
            hidden[challenge_id] = None
        for g in gs:
            code = load_code(site.store.state_dir, g.submission_id)
            entries.extend(notebook_entry(g.team, nb, code.get(nb.notebook, ""), hidden[challenge_id],
                                          folder=str(g.submission_id))
                           for nb in g.result.notebooks if nb.challenge == challenge_id)
    pairs = []
    for pair in similar_pairs(entries, boilerplate=boilerplate, answer_boilerplate=answer_boilerplate):
        test_set = hidden.get(pair.challenge)
        pairs.append(with_thumbnails(pair, test_set.images_dir, test_set.files) if test_set is not None else pair)
    return pairs, entries


def precompute_similar(store: Store, settings: Settings, *, event: str, options: AppOptions) -> int:
    """:func:`similar` of ``event`` over its results so far, computed now and kept beside ``store`` for
    the coach's first ``/coach/similar`` (``grader serve``'s start-up thread calls it; ``options`` as
    the app's, whose Ladder margin chooses the submissions); returns how many pairs were flagged.

    Raises:
        DatabaseUnavailable: the database cannot be reached (:mod:`grader.server.store.db`).
        ChallengeError: a challenge of the event is not in the project.
    """
    return len(similar(Site(store=store, settings=settings, event=event, options=options, workers=None))[0])


def similar_in_child(state_dir: Path, database_url: str, settings: Settings, *, event: str,
                     options: AppOptions) -> KeptPairs:
    """:func:`similar`'s pairs of ``event`` over its results so far, computed on a store of its own
    (``state_dir``, ``database_url``: the server's) and returned, not kept: ``grader serve`` runs it
    in a child process at start and hands the result to :func:`keep_similar` (module docstring).

    Raises:
        ConfigError: the store cannot be opened.
        DatabaseUnavailable: the database cannot be reached.
        ChallengeError: a challenge of the event is not in the project.
    """
    from grader.integrity import tokenized
    from grader.server.store import Store

    store = Store(state_dir, database_url)
    try:
        site = Site(store=store, settings=settings, event=event, options=options, workers=None)
        picks, key = _picks(site)
        pairs, entries = _compute(site, picks)
        return KeptPairs(event=event, key=key, pairs=pairs, compared=len(entries),
                         tokens=tokenized([e.code for e in entries]))
    finally:
        store.close()


def keep_similar(store: Store, kept: KeptPairs) -> None:
    """Keep ``kept`` (from :func:`similar_in_child`) beside ``store`` for the coach's next view,
    unless pairs are kept there already (computed by a view meanwhile: as new or newer). A view
    whose set of chosen submissions differs from ``kept.key`` computes its own, as always: the
    notebooks' tokenized code (``kept.tokens``) is handed to :mod:`grader.integrity` for it, so that
    it tokenizes only the notebooks that are new since (the first view after a new result: 1.3 to
    1.7 s for 60 teams when the server tokenized them all again)."""
    from grader.integrity import seed_tokenized

    seed_tokenized(kept.tokens)
    with _GUARD:
        _KEPT.setdefault(store, replace(kept, tokens={}))
