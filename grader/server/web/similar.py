"""The coach's similar pairs of an event (:func:`similar`): each team's chosen submission per
challenge compared on its code and on the hidden test images it got wrong
(:mod:`grader.integrity.pairs`), for ``/coach/similar``.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from grader.server.web.boards import chosen
from grader.server.web.pages import Site

if TYPE_CHECKING:
    from grader.core import Settings
    from grader.data import HiddenTestSet
    from grader.integrity import IntegrityEntry, SimilarPair

__all__ = ["similar"]

log = logging.getLogger(__name__)


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


def similar(site: Site) -> tuple[list[SimilarPair], int]:
    """The similar pairs of the event (:func:`grader.integrity.pairs.similar_pairs`) over each team's
    chosen submission per challenge, with the code :func:`grader.server.work.worker.save_code` kept
    and the shared wrong images drawn from the hidden test set; and how many notebooks were
    compared. A challenge whose hidden test set cannot be read is compared on code only."""
    from grader.core import GraderError, load_challenge
    from grader.integrity import boilerplate_code, notebook_entry, similar_pairs, with_thumbnails
    from grader.server.work import load_code

    done = site.graded()
    entries: list[IntegrityEntry] = []
    boilerplate: dict[str, str] = {}
    hidden: dict[str, HiddenTestSet | None] = {}
    for challenge_id in site.event_row().challenges:
        challenge = load_challenge(site.settings.project_dir, challenge_id)
        boilerplate[challenge_id] = boilerplate_code(challenge.folder / "starter.ipynb")
        try:
            hidden[challenge_id] = _hidden_test_set(site.settings, challenge_id)
        except GraderError as err:
            log.warning("%s: similar pairs on code only: %s", challenge_id, err)
            hidden[challenge_id] = None
        for g in chosen(done, challenge_id, eta=site.options.eta):
            code = load_code(site.store.state_dir, g.submission_id)
            entries.extend(notebook_entry(g.team, nb, code.get(nb.notebook, ""), hidden[challenge_id],
                                          folder=str(g.submission_id))
                           for nb in g.result.notebooks if nb.challenge == challenge_id)
    pairs = []
    for pair in similar_pairs(entries, boilerplate=boilerplate):
        test_set = hidden.get(pair.challenge)
        pairs.append(with_thumbnails(pair, test_set.images_dir, test_set.files) if test_set is not None else pair)
    return pairs, len(entries)
