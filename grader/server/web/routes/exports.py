"""The coach's exports of the cohort under ``/coach/export/``: ``gradebook.csv``, ``junit.xml`` and
Gradescope's ``results.json``, written by :mod:`grader.report.exports`' writers over each team's
chosen submission per challenge (:func:`cohort`). Every route refuses a team session and no
session with 403.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from grader.report import gradebook_csv, gradescope_results, junit_xml
from grader.score import SubmissionResult
from grader.server.web.boards import chosen
from grader.server.web.pages import Site

__all__ = ["add_export_routes", "cohort"]


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


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}



def add_export_routes(app: FastAPI, site: Site) -> None:
    """Add the ``/coach/export/`` downloads of ``site`` to ``app``."""
    event = site.event

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
