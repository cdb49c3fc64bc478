"""A team's submission history: the rows of its page's "Your submissions" (:func:`team_history`), the
choice of its final submissions (Kaggle's "selected for final") and the downloads of what it sent
and of the run's log.

- ``POST /submissions/{id}/final``: make a graded submission the team's final one for its
  challenge (:func:`grader.server.store.finals.choose_final`); ``POST
  /submissions/{id}/final/clear``: back to the default, the best public score
  (:func:`grader.server.web.boards.chosen`). Both refused once the event has ended (409).
- ``GET /submissions/{id}/upload``: the bytes the team sent, as stored (content-addressed,
  :meth:`Store.upload_path`), under the name it sent them under.
- ``GET /submissions/{id}/log``: the run's log in plain text (:func:`grader.report.teamcard.run_log`):
  what the team's scorecard shows of each of its cells, nothing of the probe.

Each needs the team's session and answers 404 for another team's submission (:meth:`Site.own`);
every form checks the CSRF token and answers with a redirect to ``/`` (post/redirect/get).

The section of the team's page is drawn from :func:`team_history`, which the template calls
(a jinja2 global of the site's environment, set by :func:`add_history_routes`): the team page's
route hands it the submissions as their team sees them, and the history adds the team's own
numbers, re-grades and final submissions to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from grader.report import run_log
from grader.score import SubmissionResult
from grader.server.store import (
    FinalRefused,
    SubmissionRow,
    TeamRow,
    arrival_numbers,
    choose_final,
    clear_final,
    finals_of,
)
from grader.server.web.boards import chosen
from grader.server.web.flash import refusal_flash, wants_page
from grader.server.web.pages import FINAL_STATES, Refused, Site
from grader.server.work import load_printed

__all__ = ["HistoryRow", "TeamHistory", "add_history_routes", "team_history", "team_numbers"]

Shown = tuple[SubmissionRow, dict[str, Any]]


def team_numbers(subs: Sequence[SubmissionRow]) -> dict[int, int]:
    """Each of the team's own submissions among ``subs`` (one team's) numbered 1, 2, 3 ... in the
    order they arrived (Kaggle's and Gradescope's submission numbers): a coach's re-grade
    (``regrade_of`` set) and a practice check have no number, and cancelled ones keep theirs.
    Returns ``submission id -> number``."""
    return arrival_numbers((s.created, s.id) for s in subs if s.regrade_of is None and not s.practice)


@dataclass(frozen=True)
class HistoryRow:
    """One row of a team's history.

    Attributes:
        sub: the submission, its verdict and score as its team sees them.
        status: its progress (:meth:`Site.statuses`).
        number: its team's number; None for a coach's re-grade or a practice check.
        regrade_of: for a coach's re-grade, the team's number of the submission it re-graded
            (None when that one is no longer listed).
        final: ``chosen`` (the team made it its final submission), ``default`` (its final one
            by default: the best public score), or "".
        can_choose: it may be made the team's final one now (graded, not a practice check, not
            final already, the event not ended).
    """

    sub: SubmissionRow
    status: dict[str, Any]
    number: int | None
    regrade_of: int | None
    final: Literal["chosen", "default", ""]
    can_choose: bool


@dataclass(frozen=True)
class TeamHistory:
    """A team's history: its rows (newest first), whether its final choices may still change
    (``open``: the event has not ended) and whether the event has several challenges."""

    rows: tuple[HistoryRow, ...]
    open: bool
    several: bool


def _open(site: Site) -> bool:
    ends = site.event_row().ends_at
    return ends is None or datetime.now(UTC) < ends


def _finals(site: Site, team: TeamRow, subs: Sequence[SubmissionRow]) -> dict[str, tuple[int, Literal["chosen",
                                                                                                         "default"]]]:
    """The team's final submission per challenge: ``challenge -> (submission id, how)``, the team's
    choice where it made one, else :func:`chosen`'s default (computed over the team's own graded
    submissions ``subs``: a team's pick depends on its own scores only)."""
    own = site.graded_of(subs)
    choices = {c: sub_id for (name, c), sub_id in finals_of(site.store, site.event, team_id=team.id).items()
               if name == team.name}
    out: dict[str, tuple[int, Literal["chosen", "default"]]] = {}
    for challenge in site.event_row().challenges:
        picks = chosen(own, challenge, eta=site.options.eta, finals={(team.name, c): i for c, i in choices.items()})
        if picks:
            pick = picks[0].submission_id
            out[challenge] = (pick, "chosen" if choices.get(challenge) == pick else "default")
    return out


def team_history(site: Site, team: TeamRow, shown: Sequence[Shown]) -> TeamHistory:
    """The history of ``team`` over ``shown`` (its submissions, newest first, as its team sees
    them: ``as_team_sees`` in :mod:`grader.server.web.routes.team`)."""
    subs = [s for s, _ in shown]
    numbers = team_numbers(subs)
    finals = _finals(site, team, subs) if any(s.state == "done" for s in subs) else {}
    is_open = _open(site)
    rows = []
    for sub, status in shown:
        final = finals.get(sub.challenge)
        how: Literal["chosen", "default", ""] = final[1] if final is not None and final[0] == sub.id else ""
        rows.append(HistoryRow(
            sub=sub, status=status, number=numbers.get(sub.id),
            regrade_of=numbers.get(sub.regrade_of) if sub.regrade_of is not None else None, final=how,
            can_choose=is_open and sub.state == "done" and not sub.practice and how != "chosen"))
    return TeamHistory(rows=tuple(rows), open=is_open, several=len(site.event_row().challenges) > 1)


def _header(sub: SubmissionRow, number: int | None, numbers: dict[int, int]) -> list[str]:
    if sub.practice:
        which = "Practice check"
    elif sub.regrade_of is not None:
        of = numbers.get(sub.regrade_of)
        which = "Re-grade by the coach" + (f" of submission {of}" if of is not None else "")
    else:
        which = f"Submission {number}"
    return [f"{which} ({sub.filename}), team {sub.team_name}, challenge {sub.challenge}",
            f"Uploaded {sub.created.astimezone(UTC):%Y-%m-%d %H:%M} UTC; state {sub.state}."]


def add_history_routes(app: FastAPI, site: Site) -> None:
    """Add the history's routes of ``site`` to ``app``, and :func:`team_history` to its templates
    (``team_history(team, submissions)``)."""
    store = site.store
    site.env.globals["team_history"] = lambda team, shown: team_history(site, team, shown)

    async def own_form(request: Request, submission_id: int) -> SubmissionRow:
        form = await request.form()
        site.check_csrf(request, form.get("csrf"))
        return await run_in_threadpool(site.own, request, submission_id)

    def numbered(sub: SubmissionRow) -> tuple[int | None, dict[int, int]]:
        numbers = team_numbers(store.submissions(site.event, team_id=sub.team_id))
        return numbers.get(sub.id), numbers

    def refused(request: Request, status: int, message: str, challenge: str) -> Response:
        """A refused choice: for a browser (:func:`grader.server.web.flash.wants_page`) a 303 to the
        history with the message shown there once (a reload is a GET), else ``status``."""
        if not wants_page(request):
            raise Refused(status, message)
        request.session["flash"] = refusal_flash(challenge, message)
        return RedirectResponse("/#history", status_code=303)

    @app.post("/submissions/{submission_id}/final")
    async def make_final(request: Request, submission_id: int) -> Response:
        sub = await own_form(request, submission_id)
        try:
            await run_in_threadpool(choose_final, store, site.event, sub.team_id, sub.id)
        except FinalRefused as err:
            return refused(request, 409, f"Not chosen: {err.message}.", sub.challenge)
        number, _ = await run_in_threadpool(numbered, sub)
        which = f"Submission {number}" if number is not None else "The coach's re-grade"
        request.session["flash"] = f"{which} ({sub.filename}) is your final submission for {sub.challenge}."
        return RedirectResponse("/#history", status_code=303)

    @app.post("/submissions/{submission_id}/final/clear")
    async def clear(request: Request, submission_id: int) -> Response:
        sub = await own_form(request, submission_id)
        try:
            await run_in_threadpool(clear_final, store, site.event, sub.team_id, sub.challenge)
        except FinalRefused as err:
            return refused(request, 409, f"Not changed: {err.message}.", sub.challenge)
        request.session["flash"] = (f"Your final submission for {sub.challenge} is your best public score again "
                                    "(the default).")
        return RedirectResponse("/#history", status_code=303)

    @app.get("/submissions/{submission_id}/upload")
    def download_upload(request: Request, submission_id: int) -> Response:
        sub = site.own(request, submission_id)
        path = store.upload_path(sub.upload_sha256)
        if not path.is_file():
            raise Refused(404, "This upload is no longer stored.")
        media = "application/zip" if sub.filename.lower().endswith(".zip") else "application/octet-stream"
        return FileResponse(path, filename=sub.filename, media_type=media, headers={"Cache-Control": "private"})

    @app.get("/submissions/{submission_id}/log")
    def download_log(request: Request, submission_id: int) -> Response:
        sub = site.own(request, submission_id)
        if sub.state not in FINAL_STATES:
            raise Refused(404, "This submission has no log yet: it is still being graded.")
        number, numbers = numbered(sub)
        stored = store.result(sub.id)
        result = None if stored is None else SubmissionResult.model_validate_json(stored.result_json)
        text = run_log(result, revealed=site.event_row().revealed, header=_header(sub, number, numbers),
                       state=sub.state, error=sub.error, printed=load_printed(store.state_dir, sub.id))
        stem = sub.filename.rsplit(".", 1)[0] or "submission"
        name = f"{stem}-{number}-log.txt" if number is not None else f"{stem}-{sub.id}-log.txt"
        return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{_ascii(name)}"',
                                                "Cache-Control": "private"})


def _ascii(name: str) -> str:
    """``name`` with what a quoted ``filename`` parameter cannot hold (RFC 6266) replaced by ``_``."""
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
