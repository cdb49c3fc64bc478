"""A team's submission history (grader.server.web.routes.history): its own numbers, the coach's re-grades
labelled and not counted, the final submission it chooses (the private board and the exports score it),
the downloads of what it sent and of the run's log; and its scorecard as a page of its own (a way back,
its number and file in the title, a phone's viewport)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from grader.score.scorecard import CellRow, SubmissionResult
from grader.server.store import models as m
from grader.server.store.finals import FinalRefused, choose_final, clear_final, finals_of
from grader.server.store.rows import SubmissionRow
from grader.server.web.boards import Graded, chosen
from grader.server.web.routes.history import team_numbers
from tests.server.test_server_app import (  # noqa: F401  (event: a fixture)
    Event,
    event,
    finish,
    join,
    notebook_bytes,
    result,
    upload,
)

PROBE_MARKER = "probe-output-7f3a"  # what only the probe produced: never in a team's log


def _row(id_: int, minutes: int, *, regrade_of: int | None = None, practice: bool = False) -> SubmissionRow:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    return SubmissionRow(id=id_, event="spring", team_id=1, team_name="alpha", challenge="toy", filename="toy.ipynb",
                         upload_sha256="0" * 64, created=t0 + timedelta(minutes=minutes), state="done", attempts=1,
                         progress="", progress_at=None, started_at=None, finished_at=None, error=None,
                         cancel_requested=False, verdict="pass", score=3, max_score=3, regrade_of=regrade_of,
                         practice=practice)


def test_team_numbers_count_the_teams_own_submissions_only() -> None:
    subs = [_row(40, 3), _row(12, 0), _row(30, 2, regrade_of=12), _row(25, 1, practice=True), _row(41, 4)]
    assert team_numbers(subs) == {12: 1, 40: 2, 41: 3}


def test_chosen_takes_the_teams_final_choice_over_the_best_public_score() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    graded = [Graded("alpha", 1, t0, result("a1", 18, 8)),  # public 0.90: the default
              Graded("alpha", 2, t0 + timedelta(minutes=1), result("a2", 16, 19)),
              Graded("beta", 3, t0 + timedelta(minutes=2), result("b1", 12, 12))]
    assert [g.submission_id for g in chosen(graded, "toy")] == [1, 3]
    assert [g.submission_id for g in chosen(graded, "toy", finals={("alpha", "toy"): 2})] == [2, 3]
    # a choice that is no graded submission of the team for the challenge falls back to the default
    assert [g.submission_id for g in chosen(graded, "toy", finals={("alpha", "toy"): 3,
                                                                   ("beta", "other"): 1})] == [1, 3]


def _submit(ev: Event, team: str, graded: SubmissionResult, *, name: str = "toy.ipynb", data: bytes = b"") -> int:
    client, csrf = join(ev, team)
    assert upload(client, csrf, [(name, data or notebook_bytes())]).status_code == 303
    return finish(ev.store, graded)


def _history_rows(html: str) -> list[str]:
    section = html[html.index('id="history"'):]
    return re.findall(r'<tr class="sub[^"]*" data-id="\d+".*?</tr>', section, flags=re.S)


def test_numbers_regrades_and_the_final_choice_change_the_private_board_and_exports(event: Event) -> None:  # noqa: F811
    beta_ids = [_submit(event, "beta", result("beta", 12, 12)) for _ in range(2)]  # ids before alpha's
    first = _submit(event, "alpha", result("alpha", 18, 8))  # public 0.90, private 0.40: the default final
    second = _submit(event, "alpha", result("alpha", 16, 19))  # public 0.80, private 0.95
    assert beta_ids == [1, 2] and (first, second) == (3, 4)
    coach, coach_csrf = join(event, "coach")
    assert coach.post(f"/coach/submissions/{first}/regrade", data={"csrf": coach_csrf}).status_code == 200
    regrade = finish(event.store, result("alpha", 18, 8))

    alpha, csrf = join(event, "alpha")
    home = alpha.get("/").text
    rows = _history_rows(home)
    assert len(rows) == 3
    # newest first: the re-grade (no number of the team's, labelled), then 2, then 1 (not the ids 4 and 3)
    assert f'data-id="{regrade}"' in rows[0] and 'class="badge regrade">coach<' in rows[0]
    assert "re-graded by the coach (your submission 1): not counted as yours" in rows[0]
    assert re.search(r'data-label="Submission">2<', rows[1]) and re.search(r'data-label="Submission">1<', rows[2])
    assert "2 submissions of your team; the coach's re-grades are not counted" in home
    assert "0 submissions left today" in home  # the cap of 2 used by the team's own two, not by the re-grade
    # the default final: the best public score (the first), each other graded row may be made final
    assert "default: best public score" in rows[2] and "Make final" in rows[1] and "Make final" in rows[0]

    def private_alpha() -> str:
        board = str(coach.get("/coach/leaderboard").text)
        private = board[board.index('id="private"'):board.index('id="public"')]
        return private[private.index("alpha"):][:400]

    def exported() -> str:
        sheet = coach.get("/coach/export/gradebook.csv").text
        return next(r for r in csv.DictReader(io.StringIO(sheet)) if r["submission"] == "alpha")["submission_number"]

    assert "40.0%" in private_alpha() and exported() in {str(first), "1"}
    page = alpha.post(f"/submissions/{second}/final", data={"csrf": csrf}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/#history"
    assert finals_of(event.store, "spring") == {("alpha", "toy"): second}
    alpha_id, beta_id = (next(t.id for t in event.store.teams("spring") if t.name == n) for n in ("alpha", "beta"))
    assert finals_of(event.store, "spring", team_id=alpha_id) == {("alpha", "toy"): second}  # a team's page: its own
    assert finals_of(event.store, "spring", team_id=beta_id) == {}
    home = alpha.get("/").text
    assert "Submission 2 (toy.ipynb) is your final submission for toy." in home
    rows = _history_rows(home)
    assert "your choice" in rows[1] and "use the default" in rows[1] and "&#9733; Final" not in rows[2]
    assert "95.0%" in private_alpha() and exported() in {str(second), "2"}
    # changed, and changed back: one choice per team and challenge, the later one
    for sub in (first, second):
        assert alpha.post(f"/submissions/{sub}/final", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        assert finals_of(event.store, "spring") == {("alpha", "toy"): sub}
    # back to the default
    assert alpha.post(f"/submissions/{second}/final/clear", data={"csrf": csrf},
                      follow_redirects=False).status_code == 303
    assert finals_of(event.store, "spring") == {}
    assert "40.0%" in private_alpha()


def test_another_team_cannot_choose_or_download_and_forms_need_csrf(event: Event) -> None:  # noqa: F811
    sub = _submit(event, "alpha", result("alpha", 18, 8))
    beta, beta_csrf = join(event, "beta")
    for path in ("upload", "log"):
        page = beta.get(f"/submissions/{sub}/{path}")
        assert page.status_code == 404 and "No such submission." in page.text, path
    for path in ("final", "final/clear"):
        assert beta.post(f"/submissions/{sub}/{path}", data={"csrf": beta_csrf}).status_code == 404, path
    assert beta.get("/submissions/999/upload").status_code == 404
    alpha, _ = join(event, "alpha")
    assert alpha.post(f"/submissions/{sub}/final", data={}).status_code == 403
    assert alpha.post(f"/submissions/{sub}/final", data={"csrf": beta_csrf}).status_code == 403
    assert event.client.get(f"/submissions/{sub}/upload").status_code == 403  # no session
    assert finals_of(event.store, "spring") == {}


def test_a_choice_is_refused_once_the_event_has_ended(event: Event) -> None:  # noqa: F811
    sub = _submit(event, "alpha", result("alpha", 18, 8))
    alpha, csrf = join(event, "alpha")
    (team,) = [t for t in event.store.teams("spring") if t.name == "alpha"]
    with pytest.raises(FinalRefused, match="only a graded submission"):
        queued = _queued(event)
        choose_final(event.store, "spring", team.id, queued)
    with event.store._write() as s:
        s.execute(update(m.Event).where(m.Event.name == "spring").values(
            ends_at=datetime.now(UTC) - timedelta(minutes=1)))
    with pytest.raises(FinalRefused, match="final submissions can no longer be changed"):
        choose_final(event.store, "spring", team.id, sub)
    with pytest.raises(FinalRefused):
        clear_final(event.store, "spring", team.id, "toy")
    page = alpha.post(f"/submissions/{sub}/final", data={"csrf": csrf})
    assert page.status_code == 409 and "final submissions can no longer be changed" in page.text
    # a browser lands on its history, the refusal shown there once (a reload is a GET)
    browser = alpha.post(f"/submissions/{sub}/final", data={"csrf": csrf}, headers={"Accept": "text/html"},
                         follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/#history"
    home = alpha.get("/").text
    assert "final submissions can no longer be changed" in home
    assert "final submissions can no longer be changed" not in alpha.get("/").text
    assert finals_of(event.store, "spring") == {}


def _queued(ev: Event) -> int:
    client, csrf = join(ev, "alpha")
    assert upload(client, csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    return next(s.id for s in ev.store.submissions("spring") if s.state == "queued")


def test_downloads_return_the_bytes_sent_and_a_log_without_the_probe(event: Event) -> None:  # noqa: F811
    graded = result("alpha", 18, 8)
    nb = graded.notebooks[0]
    execution = nb.execution.model_copy(update={"probe_status": PROBE_MARKER, "probe_s": 12.345, "cells": [
        CellRow(index=0, status="ok", seconds=0.2, source="DATA_DIR = None", error=None, number=1),
        CellRow(index=1, status="ok", seconds=0.0, source="DATA_DIR = '/data'", error=None, injected=True),
        CellRow(index=2, status="error", seconds=1.5, source="model.fit(x)\nprint('done')",
                error="NameError: name 'model' is not defined", number=2)]})
    graded = graded.model_copy(update={"notebooks": [nb.model_copy(update={"execution": execution})]})
    data = notebook_bytes()  # its cells' ids are random: each call's bytes differ
    sub = _submit(event, "alpha", graded, data=data)
    alpha, csrf = join(event, "alpha")
    sent = alpha.get(f"/submissions/{sub}/upload")
    assert sent.status_code == 200 and sent.content == data
    assert 'filename="toy.ipynb"' in sent.headers["content-disposition"]
    # a notebook with its images is stored as one zip: the download is that zip, byte for byte
    assert upload(alpha, csrf, [("toy.ipynb", notebook_bytes()), ("cat.png", b"\x89PNG fake")]).status_code == 303
    zipped = next(s for s in event.store.submissions("spring") if s.state == "queued")
    got = alpha.get(f"/submissions/{zipped.id}/upload")
    assert got.content == event.store.upload_path(zipped.upload_sha256).read_bytes()
    assert got.headers["content-type"] == "application/zip"
    assert alpha.get(f"/submissions/{zipped.id}/log").status_code == 404  # not graded yet
    log = alpha.get(f"/submissions/{sub}/log")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert "attachment" in log.headers["content-disposition"]
    text = log.text
    assert text.startswith("Submission 1 (toy.ipynb), team alpha, challenge toy")
    assert "[cell 2] error, 1.5 s: model.fit(x)" in text and "NameError: name 'model' is not defined" in text
    assert "[injected by the grader" in text
    assert PROBE_MARKER not in text and "12.3" not in text and "probe" not in text.lower()


def test_the_team_scorecard_is_a_page_of_its_own(event: Event) -> None:  # noqa: F811
    first = _submit(event, "alpha", result("alpha", 18, 8), name="first try.ipynb")
    second = _submit(event, "alpha", result("alpha", 16, 19))
    alpha, _ = join(event, "alpha")
    page = alpha.get(f"/submissions/{second}/scorecard").text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert re.search(r"<title>Submission 2 \(toy\.ipynb\) · Scorecard: alpha</title>", page)
    assert '<h1><span class="which">Submission 2 (toy.ipynb)</span>' in page
    assert '<nav class="back"><a href="/">' in page and "<script" not in page
    assert "<title>Submission 1 (first try.ipynb)" in alpha.get(f"/submissions/{first}/scorecard").text
    coach, coach_csrf = join(event, "coach")
    assert coach.post(f"/coach/submissions/{first}/regrade", data={"csrf": coach_csrf}).status_code == 200
    regrade = finish(event.store, result("alpha", 18, 8))
    assert "<title>Re-grade by the coach of submission 1 (first try.ipynb)" in alpha.get(
        f"/submissions/{regrade}/scorecard").text
    # the coach's scorecard (full) has no link back to a team's page
    assert '<nav class="back">' not in coach.get(f"/coach/submissions/{second}/scorecard").text
    # after the Reveal the team's card has the figures, and no word of figures to come
    assert "when the coach reveals" in page
    assert coach.post("/coach/reveal", data={"csrf": coach_csrf, "revealed": "1"}).status_code == 200
    revealed = alpha.get(f"/submissions/{second}/scorecard").text
    for words in ("when the event ends", "when the coach reveals", "appear here when"):
        assert words not in revealed, words
    assert "Confusion matrix" in revealed and "Recall (per-class accuracy)" in revealed
    assert '<nav class="back"><a href="/">' in revealed


def test_a_static_file_keeps_the_session(event: Event) -> None:  # noqa: F811
    """A page reloaded by the live script revalidates its stylesheet: that request reads no session, and
    must not clear the session's cookie (it did: the team was signed out by its own page's reload)."""
    alpha, csrf = join(event, "alpha")
    style = alpha.get("/static/style.css")
    assert style.status_code == 200 and "grader_session" not in style.headers.get("set-cookie", "")
    assert "team alpha" in alpha.get("/").text
