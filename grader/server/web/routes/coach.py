"""The coach's pages under ``/coach``: every team's submissions and scorecards, the queue and the
running jobs with Cancel and Re-grade, the leaderboards (public and private) with the Reveal
toggle, the pass rate per criterion, and the cohort's exports (``gradebook.csv``, ``junit.xml``,
Gradescope ``results.json``, written by :mod:`grader.report.render`'s writers). Every route refuses a
team session and no session with 403; every form checks the CSRF token.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from grader.report import gradebook_csv, gradescope_results, junit_xml
from grader.score import SubmissionResult
from grader.server.web.boards import chosen
from grader.server.web.headers import SCORECARD_CSP
from grader.server.web.ladder import decimals
from grader.server.web.pages import Refused, Site

if TYPE_CHECKING:
    from grader.core import Settings
    from grader.data import HiddenTestSet
    from grader.integrity import IntegrityEntry, SimilarPair

__all__ = ["add_coach_routes", "cohort", "similar"]

log = logging.getLogger(__name__)


def cohort(site: Site) -> list[SubmissionResult]:
    """The cohort for the exports: per challenge, each team's chosen submission
    (:func:`grader.server.web.boards.chosen`), named after the team, with that challenge's notebooks."""
    done = site.graded()
    out = []
    for challenge in site.event_row().challenges:
        for g in chosen(done, challenge, eta=site.options.eta):
            out.append(g.result.model_copy(update={
                "submission": g.team, "notebooks": [nb for nb in g.result.notebooks if nb.challenge == challenge]}))
    return out


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


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def add_coach_routes(app: FastAPI, site: Site) -> None:
    """Add the ``/coach`` pages of ``site`` to ``app``."""
    store, event, eta = site.store, site.event, site.options.eta

    @app.get("/coach")
    def coach(request: Request, all: int = 0) -> HTMLResponse:  # noqa: A002  (the query's name: ?all=1)
        site.coach_of(request)
        # newest first, 50 of them: 4,000 rows are 3 MB of HTML
        listed, active, counts = site.overview(every=bool(all))  # at most once a second
        rates = [(board.challenge, board.rates) for board in site.boards(private=True, counts=counts)[1]]
        return site.page(request, "coach.html.j2", team_count=site.team_count(), shown=len(listed),
                         total=counts[0], submissions=site.statuses(listed), active=site.statuses(active),
                         running=None if site.workers is None else site.workers.running(), rates=rates)

    @app.get("/coach/similar")
    def coach_similar(request: Request) -> HTMLResponse:
        site.coach_of(request)
        pairs, compared = similar(site)
        return site.page(request, "similar.html.j2", pairs=pairs, compared=compared)

    @app.get("/coach/leaderboard")
    def coach_leaderboard(request: Request) -> HTMLResponse:
        site.coach_of(request)
        boards = site.board_sections(private=True, coach_links=True, places=decimals(eta) - 2)
        return site.page(request, "leaderboard.html.j2", boards=boards, coach_links=True)

    @app.get("/coach/submissions/{submission_id}/scorecard")
    def coach_scorecard(request: Request, submission_id: int) -> HTMLResponse:
        site.coach_of(request)
        site.event_submission(submission_id)
        result = store.result(submission_id)
        if result is None:
            raise Refused(404, "This submission has no scorecard.")
        return HTMLResponse(result.scorecard_html, headers={"Content-Security-Policy": SCORECARD_CSP})

    async def coach_form(request: Request) -> dict[str, str]:
        await run_in_threadpool(site.coach_of, request)
        form = await request.form()
        site.check_csrf(request, form.get("csrf"))
        return {k: v for k, v in form.items() if isinstance(v, str)}

    @app.post("/coach/submissions/{submission_id}/cancel")
    async def cancel(request: Request, submission_id: int) -> Response:
        await coach_form(request)
        await run_in_threadpool(site.event_submission, submission_id)
        await run_in_threadpool(store.cancel, submission_id)
        site.forget_overview()
        return RedirectResponse("/coach", status_code=303)

    @app.post("/coach/submissions/{submission_id}/regrade")
    async def regrade(request: Request, submission_id: int) -> Response:
        await coach_form(request)
        await run_in_threadpool(site.event_submission, submission_id)
        await run_in_threadpool(store.regrade, submission_id)
        site.forget_overview()
        if site.workers is not None:
            site.workers.wake()
        return RedirectResponse("/coach", status_code=303)

    @app.post("/coach/reveal")
    async def reveal(request: Request) -> Response:
        form = await coach_form(request)
        await run_in_threadpool(store.set_revealed, event, form.get("revealed") == "1")
        site.forget_event()
        return RedirectResponse("/coach/leaderboard", status_code=303)

    @app.get("/coach/export/gradebook.csv")
    def export_gradebook(request: Request) -> Response:
        site.coach_of(request)
        return PlainTextResponse(gradebook_csv(cohort(site), leaderboard="all"), media_type="text/csv",
                                 headers=_attachment(f"{event}-gradebook.csv"))

    @app.get("/coach/export/junit.xml")
    def export_junit(request: Request) -> Response:
        site.coach_of(request)
        return Response(junit_xml(cohort(site)), media_type="application/xml",
                        headers=_attachment(f"{event}-junit.xml"))

    @app.get("/coach/export/results.json")
    def export_gradescope(request: Request) -> Response:
        site.coach_of(request)
        body = json.dumps([{"team": r.submission, "challenge": r.notebooks[0].challenge if r.notebooks else None,
                            **gradescope_results(r)} for r in cohort(site)], indent=2)
        return Response(body, media_type="application/json", headers=_attachment(f"{event}-results.json"))
