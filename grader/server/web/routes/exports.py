"""The coach's exports of the cohort under ``/coach/export/``, written by :mod:`grader.report.exports`'
writers over each team's chosen submission per challenge (:func:`cohort`):

- ``gradebook.csv``: per team and notebook, with the submission's number and time;
- ``gradebook-canvas.csv`` and ``gradebook-moodle.csv``: per student (the members ``teams.csv``
  lists), in the layouts Canvas's and Moodle's gradebook imports document; 404 with what to do
  while no team lists members;
- ``junit.xml``: optional criteria missed as skipped, suite names unique;
- ``gradescope.zip``: one Gradescope ``results.json`` per submission; ``results.json`` (the
  earlier export) stays: the same results as one JSON list, each with its ``team`` and
  ``challenge``.

Each carries the coach's grades of the written answers, released or not (the exports are the
coach's): :func:`cohort` applies them.

Every route refuses a team session and no session with 403.
"""

from __future__ import annotations

import json
from datetime import UTC

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from grader.report import (
    CohortEntry,
    Student,
    canvas_gradebook_csv,
    gradebook_csv,
    gradescope_results,
    gradescope_zip,
    junit_xml,
    moodle_gradebook_csv,
)
from grader.server.store import finals_of, members_of, team_rows
from grader.server.web.boards import chosen
from grader.server.web.marks import Marks, marks_of
from grader.server.web.pages import Site
from grader.server.web.routes.history import team_numbers

__all__ = ["add_export_routes", "cohort", "students_by_team"]

NO_MEMBERS = ("No team of this event lists members, so there is no row per student. List them in teams.csv (one "
              "row per member: team,name,email,student_id) and give them to the event with: grader event members "
              "EVENT --teams teams.csv")


def cohort(site: Site, marks: Marks | None = None) -> list[CohortEntry]:
    """The cohort for the exports: per challenge (in the event's order), each team's chosen
    submission (:func:`grader.server.web.boards.chosen`), named after the team, with that challenge's
    notebooks, its number (the team's own, as its pages show it:
    :func:`grader.server.web.routes.history.team_numbers`; a coach's re-grade has the number of the
    submission it re-graded) and upload time (UTC); with ``marks``, every grade the coach saved of
    its written answers applied (:meth:`grader.server.web.marks.Marks.applied`), released or not."""
    done = site.graded()
    finals = finals_of(site.store, site.event)  # the teams' own choices (grader.server.store.finals)
    every = site.store.submissions(site.event)
    numbers: dict[int, int] = {}
    for team_id in {s.team_id for s in every}:
        numbers.update(team_numbers([s for s in every if s.team_id == team_id]))
    regraded = {s.id: s.regrade_of for s in every if s.regrade_of is not None}
    out = []
    for challenge in site.event_row().challenges:
        for g in chosen(done, challenge, eta=site.options.eta, finals=finals):
            graded = g.result if marks is None else marks.applied(g.submission_id, g.result)
            result = graded.model_copy(update={
                "submission": g.team, "notebooks": [nb for nb in graded.notebooks if nb.challenge == challenge]})
            number = numbers.get(g.submission_id, numbers.get(regraded.get(g.submission_id, 0), g.submission_id))
            out.append(CohortEntry(result, number=number,
                                   submitted=g.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return out


def students_by_team(site: Site) -> dict[str, list[Student]]:
    """The members of the event's teams (removed teams left out), team name -> members, in the
    order the teams were added and ``teams.csv`` listed the members; a team without members is
    absent."""
    members = members_of(site.store, site.event)
    return {t.name: [Student(m.name, m.email, m.student_id) for m in members[t.id]]
            for t in team_rows(site.store, site.event) if members.get(t.id)}


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def add_export_routes(app: FastAPI, site: Site) -> None:
    """Add the ``/coach/export/`` downloads of ``site`` to ``app``."""
    event = site.event

    @app.get("/coach/export/gradebook.csv")
    def export_gradebook(request: Request) -> Response:
        site.coach_of(request)
        return PlainTextResponse(gradebook_csv(cohort(site, marks_of(request)), leaderboard="all"),
                                 media_type="text/csv",
                                 headers=_attachment(f"{event}-gradebook.csv"))

    @app.get("/coach/export/gradebook-{lms}.csv")
    def export_lms_gradebook(request: Request, lms: str) -> Response:
        site.coach_of(request)
        writer = {"canvas": canvas_gradebook_csv, "moodle": moodle_gradebook_csv}.get(lms)
        if writer is None:
            return PlainTextResponse(f"No export gradebook-{lms}.csv: gradebook-canvas.csv or gradebook-moodle.csv",
                                     status_code=404)
        students = students_by_team(site)
        if not students:
            return PlainTextResponse(NO_MEMBERS, status_code=404)
        return PlainTextResponse(writer(cohort(site, marks_of(request)), students, leaderboard="all"),
                                 media_type="text/csv",
                                 headers=_attachment(f"{event}-gradebook-{lms}.csv"))

    @app.get("/coach/export/junit.xml")
    def export_junit(request: Request) -> Response:
        site.coach_of(request)
        return Response(junit_xml(cohort(site, marks_of(request))), media_type="application/xml",
                        headers=_attachment(f"{event}-junit.xml"))

    @app.get("/coach/export/gradescope.zip")
    def export_gradescope_zip(request: Request) -> Response:
        site.coach_of(request)
        return Response(gradescope_zip(cohort(site, marks_of(request))), media_type="application/zip",
                        headers=_attachment(f"{event}-gradescope.zip"))

    @app.get("/coach/export/results.json")
    def export_gradescope(request: Request) -> Response:
        site.coach_of(request)
        body = json.dumps([{"team": e.result.submission,
                            "challenge": e.result.notebooks[0].challenge if e.result.notebooks else None,
                            **gradescope_results(e)} for e in cohort(site, marks_of(request))], indent=2)
        return Response(body, media_type="application/json", headers=_attachment(f"{event}-results.json"))
