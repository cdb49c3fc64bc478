"""The coach's grading of written answers on the event server (issue 29): revision 0005's tables and
their store (grader.server.store.grades), the coach's pages question by question
(grader.server.web.routes.grading), the release to the teams, a team that sees only its own released
grades, a re-grade keeping or marking the grades, and the exports carrying the points while the
leaderboards stay on the automatic criteria. Each store and page test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event as sa_event

from grader.core import UsageError
from grader.core.settings import Settings
from grader.intake import answer_sha256
from grader.score import CriterionResult, RubricItem, SubmissionResult
from grader.server.store import (
    grades_of,
    grading_state,
    release,
    released_of,
    save_grade,
)
from grader.server.store.store import Store
from grader.server.store.teams import add_team
from grader.server.web.headers import PAGE_CSP
from tests.server.test_server_app import (  # noqa: F401  (event: a fixture)
    Event,
    event,
    finish,
    join,
    make_client,
    notebook_bytes,
    result,
    sign_in,
    upload,
)

if TYPE_CHECKING:
    from starlette.testclient import TestClient

QUESTIONS = """
[[criteria]]
id = "gap"
title = "Why the test error is so far from MNIST's"
check = "coach_graded"
points = 2
required = false
question = "What is your test error, and why is it so far from the MNIST result?"
fix = "Answer under the question."
params = { min_words = 3 }
comments = ["Give the figure, not only the reason.", "Look at the loss curves again."]
[[criteria.items]]
points = 1
text = "States the test error"
[[criteria.items]]
points = 1
text = "Explains the gap"

[[criteria]]
id = "overfit"
title = "Overfitting in the loss curves"
check = "coach_graded"
points = 1
required = false
question = "Where do your loss curves show overfitting?"
fix = "Answer under the question."
params = { min_words = 3 }
"""
_ITEMS = {"gap": [RubricItem(points=1, text="States the test error"), RubricItem(points=1, text="Explains the gap")],
          "overfit": []}
_MAX = {"gap": 2.0, "overfit": 1.0}
HOSTILE = "It is 0.52. <script>alert('x')</script> and <img src=x onerror=alert(1)> [go](javascript:alert(1))"


def written(name: str, answers: dict[str, str | None], *, k_public: int = 18) -> SubmissionResult:
    """A graded submission (:func:`result`) with the answers to the two questions: a text (awaiting
    the coach) or None (no answer: failed)."""
    base = result(name, k_public, 8)
    nb = base.notebooks[0]
    rows = list(nb.criteria)
    for cid in ("gap", "overfit"):
        text = answers.get(cid)
        rows.append(CriterionResult(
            id=cid, title=cid, status="fail" if text is None else "awaiting", required=False, points=0,
            max_points=_MAX[cid], message="no cell tagged answer:" + cid if text is None else "awaiting the coach",
            fix="answer it", coach_graded=True, question=f"the question {cid}", rubric_items=_ITEMS[cid],
            answer=text, answer_sha256="" if text is None else answer_sha256(text)))
    total = nb.max_score + sum(_MAX.values())
    return base.model_copy(update={"notebooks": [nb.model_copy(update={"criteria": rows, "max_score": total})],
                                   "max_score": total})


def _with_questions(ev: Event) -> None:
    rubric = ev.settings.project_dir / "rubrics" / "toy.toml"
    rubric.write_text(rubric.read_text() + QUESTIONS)


def _submit(ev: Event, team: str, graded: SubmissionResult) -> int:
    client, csrf = join(ev, team)
    assert upload(client, csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    return finish(ev.store, graded)


def _save(client: TestClient, csrf: str, sub: int, criterion: str = "gap", **fields: Any) -> Any:
    data: dict[str, Any] = {"csrf": csrf} | fields
    return client.post(f"/coach/grading/toy/{criterion}/{sub}", data=data, headers={"Accept": "application/json"})


def _article(html: str, sub: int) -> str:
    found = re.search(rf'<article class="answer[^"]*" id="sub-{sub}".*?</article>', html, flags=re.S)
    assert found, html
    return found.group(0)


# ---------------------------------------------------------------- the store (both databases)


def test_grades_are_saved_replaced_and_released_in_the_store(tmp_path: Path, database_url: str | None) -> None:
    store = Store(tmp_path / "state", database_url)
    try:
        store.create_event("spring", challenges=["toy"], teams=["alpha"], title="Spring")
        store.create_event("autumn", challenges=["toy"], teams=["gamma"], title="Autumn")
        (alpha,) = store.teams("spring")
        (gamma,) = store.teams("autumn")
        upload_row = store.store_upload(io.BytesIO(b"{}"), filename="toy.ipynb", max_bytes=100)
        sub = store.submit("spring", alpha.id, challenge="toy", upload=upload_row)
        other = store.submit("autumn", gamma.id, challenge="toy", upload=upload_row)
        sha = answer_sha256("an answer")
        first = save_grade(store, "spring", sub.id, challenge="toy", criterion="gap", points=1, comment=" ok \r\n",
                           items=[2, 1, 2], answer_sha256=sha)
        assert (first.points, first.comment, first.items) == (1.0, "ok", (1, 2))
        save_grade(store, "spring", sub.id, challenge="toy", criterion="gap", points=2, comment="better",
                   answer_sha256=sha)  # the later grade replaces it: one row per submission and question
        save_grade(store, "spring", sub.id, challenge="toy", criterion="overfit", points=0.5, answer_sha256=sha)
        got = {g.criterion: g for g in grades_of(store, "spring")}
        assert (got["gap"].points, got["gap"].comment, got["gap"].items) == (2.0, "better", ())
        assert got["gap"].graded_at.tzinfo is not None and got["overfit"].points == 0.5
        assert grades_of(store, "spring", submissions=[other.id]) == [] and grades_of(store, "autumn") == []
        for bad in ({"points": -1.0}, {"points": float("nan")}, {"comment": "x" * 4001}, {"items": [0]},
                    {"answer_sha256": "nope"}):
            fields: dict[str, Any] = {"points": 1.0, "answer_sha256": sha} | bad
            with pytest.raises(UsageError):
                save_grade(store, "spring", sub.id, challenge="toy", criterion="gap", **fields)
        with pytest.raises(UsageError, match="no submission"):  # another event's submission
            save_grade(store, "spring", other.id, challenge="toy", criterion="gap", points=1, answer_sha256=sha)
        assert released_of(store, "spring") == {}
        assert release(store, "spring", "toy", "gap") is True
        when = released_of(store, "spring")[("toy", "gap")]
        assert release(store, "spring", "toy", "gap") is False  # released already: its first time kept
        assert released_of(store, "spring") == {("toy", "gap"): when} and released_of(store, "autumn") == {}
        assert release(store, "spring", "toy", "gap", released=False) is True
        assert release(store, "spring", "toy", "gap", released=False) is False and released_of(store, "spring") == {}
        again = store.regrade(sub.id)
        state = grading_state(store, "spring")
        assert state.regrade_of == {again.id: sub.id} and len(state.grades) == 2 and state.released == {}
    finally:
        store.close()


def test_a_database_of_revision_0004_is_upgraded_with_the_grading_tables(tmp_path: Path) -> None:
    """An event-day state folder (revision 0004) holding a graded submission opens: its submission
    kept, ``grades`` and ``grade_releases`` added, and a grade can be saved for it."""
    from alembic import command
    from alembic.config import Config

    from grader.server.store.db import MIGRATIONS

    state = tmp_path / "state"
    (state / "uploads").mkdir(parents=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{state / 'grader.db'}")
    command.upgrade(config, "0004")
    with sqlite3.connect(state / "grader.db") as db:
        db.execute("INSERT INTO events (id, name, title, revealed, coach_token_hash, session_secret, created) "
                   "VALUES (1, 'old', 'Old', 0, ?, 's', '2026-12-01 10:00:00')", ("c" * 64,))
        db.execute("INSERT INTO event_challenges VALUES (1, 1, 'toy', 0)")
        db.execute("INSERT INTO teams (id, event_id, name, token_hash) VALUES (1, 1, 'red', ?)", ("t" * 64,))
        db.execute("INSERT INTO uploads VALUES (?, 10, '2026-12-01 10:00:00')", ("a" * 64,))
        db.execute("INSERT INTO submissions (id, event_id, team_id, challenge, filename, upload_sha256, created, "
                   "state, attempts, progress, cancel_requested) VALUES (1, 1, 1, 'toy', 'toy.ipynb', ?, "
                   "'2026-12-01 10:00:00', 'done', 1, '', 0)", ("a" * 64,))
    store = Store(state)
    try:
        with sqlite3.connect(state / "grader.db") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0005",)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"grades", "grade_releases"} <= tables
        assert [s.id for s in store.submissions("old")] == [1]
        save_grade(store, "old", 1, challenge="toy", criterion="gap", points=1, answer_sha256="b" * 64)
        assert [g.points for g in grades_of(store, "old")] == [1.0]
    finally:
        store.close()


# ---------------------------------------------------------------- the coach's pages


def test_the_question_page_lists_each_final_answer_escaped_with_its_rubric_and_keys(event: Event) -> None:  # noqa: F811
    _with_questions(event)
    alpha = _submit(event, "alpha", written("alpha", {"gap": HOSTILE, "overfit": "From epoch five on."}))
    beta = _submit(event, "beta", written("beta", {"gap": None, "overfit": "Nowhere at all."}))
    coach, _ = join(event, "coach")
    listing = coach.get("/coach/grading")
    assert listing.status_code == 200 and "Why the test error is so far from MNIST&#39;s" in listing.text
    row = re.search(r'<tr id="q-toy-gap">.*?</tr>', listing.text, flags=re.S)
    assert row and 'data-count="awaiting">1<' in row.group(0) and 'data-count="missing">1<' in row.group(0)
    assert 'action="/coach/grading/toy/gap/release"' in row.group(0) and "data-confirm=" in row.group(0)
    assert 'href="/coach/grading"' in coach.get("/coach").text  # the coach's menu and console lead there

    page = coach.get("/coach/grading/toy/gap")
    assert page.status_code == 200 and page.headers["content-security-policy"] == PAGE_CSP
    html = page.text
    assert '<script src="/static/grading.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and ' style="' not in html and " onclick" not in html
    mine = _article(html, alpha)
    # student text: raw HTML off, shown as text; a javascript: link stays text
    assert "<script>alert" not in mine and "&lt;script&gt;alert('x')&lt;/script&gt;" in mine
    assert "<img" not in mine and "&lt;img src=x onerror=alert(1)&gt;" in mine and 'href="javascript' not in mine
    assert mine.count('type="checkbox" name="items"') == 2 and "States the test error" in mine
    assert f'name="answer_sha256" value="{answer_sha256(HOSTILE)}"' in mine
    assert "Give the figure, not only the reason." in mine  # a reusable comment, one click away
    assert "no cell tagged answer:gap" in _article(html, beta) and "grade-form" not in _article(html, beta)
    script = coach.get("/static/grading.js").text
    assert all(key in script for key in ('"keydown"', '"j"', '"k"', '"n"', '"p"', '"Enter"', "Accept"))
    for client in (event.client, join(event, "alpha")[0]):  # no session, a team's
        assert client.get("/coach/grading/toy/gap").status_code == 403
        assert client.get("/coach/grading").status_code == 403
    assert coach.get("/coach/grading/toy/nope").status_code == 404


def test_a_grade_is_saved_at_once_checked_against_the_answer_and_kept(event: Event) -> None:  # noqa: F811
    _with_questions(event)
    alpha = _submit(event, "alpha", written("alpha", {"gap": "The error is 0.48, ten times MNIST's."}))
    beta = _submit(event, "beta", written("beta", {"gap": "Colour photos are harder than digits, really."}))
    coach, csrf = join(event, "coach")
    sha = answer_sha256("The error is 0.48, ten times MNIST's.")
    saved = _save(coach, csrf, alpha, items=["1", "2"], comment="Good.", answer_sha256=sha)
    assert saved.status_code == 200, saved.text
    assert saved.json() | {"said": ""} == {"ok": True, "submission": alpha, "team": "alpha", "status": "graded",
                                           "points": 2.0, "max_points": 2.0, "items": [1, 2], "comment": "Good.",
                                           "said": ""}  # the points: the checked items' sum
    assert _save(coach, csrf, alpha, points="1,5", items=["1"], answer_sha256=sha).json()["points"] == 1.5
    (row,) = grades_of(event.store, "spring")
    assert (row.points, row.items, row.comment, row.answer_sha256) == (1.5, (1,), "", sha)
    # refused: out of range, not a number, an item that does not exist, an answer changed since the page
    for fields, status, words in (({"points": "3"}, 400, "out of range"), ({"points": "two"}, 400, "not a number"),
                                  ({"items": ["3"]}, 400, "rubric item 3"),
                                  ({"points": "1", "answer_sha256": "f" * 64}, 409, "no longer the one")):
        answer = _save(coach, csrf, alpha, **fields)
        assert answer.status_code == status and words in answer.json()["error"], (fields, answer.text)
    assert _save(coach, csrf, beta, criterion="overfit", points="1").status_code == 400  # no answer to grade
    assert _save(coach, csrf, 999, points="1").status_code == 404
    assert [g.points for g in grades_of(event.store, "spring")] == [1.5]
    # without the script: a form POST, answered 303 to the next answer; a reusable comment's button adds it
    plain = coach.post(f"/coach/grading/toy/gap/{beta}", data={"csrf": csrf, "points": "1", "reuse": "2",
                                                                "comment": "Short.", "next": str(alpha)},
                       follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/coach/grading/toy/gap#sub-{alpha}"
    assert {g.submission_id: g.comment for g in grades_of(event.store, "spring")}[beta] == (
        "Short.\nLook at the loss curves again.")
    page = coach.get("/coach/grading/toy/gap").text
    assert "Saved beta: 1 of 2 points." in page and "badge graded\">graded 1.5/2" in _article(page, alpha)
    assert "Short.\nLook at the loss curves again.</textarea>" in _article(page, beta)
    # a team's session or a form without the token saves nothing
    team, team_csrf = join(event, "alpha")
    assert _save(team, team_csrf, alpha, points="0", answer_sha256=sha).status_code == 403
    assert coach.post(f"/coach/grading/toy/gap/{alpha}", data={"points": "0"}).status_code == 403
    assert _save(coach, team_csrf, alpha, points="0").status_code == 403
    assert [g.points for g in grades_of(event.store, "spring") if g.submission_id == alpha] == [1.5]


def test_a_team_sees_only_its_own_released_grades(event: Event) -> None:  # noqa: F811
    _with_questions(event)
    answer = "The error is 0.48 because photos vary."
    alpha = _submit(event, "alpha", written("alpha", {"gap": answer, "overfit": "After epoch three, val rises."}))
    beta = _submit(event, "beta", written("beta", {"gap": "Beta's own secret answer text here."}))
    coach, csrf = join(event, "coach")
    assert _save(coach, csrf, alpha, points="2", comment="GAP-COMMENT-A").status_code == 200
    assert _save(coach, csrf, alpha, criterion="overfit", points="1", comment="OVERFIT-COMMENT").status_code == 200
    assert _save(coach, csrf, beta, points="1", comment="GAP-COMMENT-B").status_code == 200
    team, team_csrf = join(event, "alpha")

    def card() -> str:
        page = team.get(f"/submissions/{alpha}/scorecard")
        assert page.status_code == 200
        return page.text

    before = card()
    assert "awaiting the coach" in before and "GAP-COMMENT-A" not in before and "OVERFIT-COMMENT" not in before
    assert "GAP-COMMENT-A" not in team.get("/").text
    # released: alpha sees that question's points and comment, nothing of the other, nothing of beta's
    assert coach.post("/coach/grading/toy/gap/release", data={"csrf": csrf, "released": "1"},
                      follow_redirects=False).status_code == 303
    after = card()
    assert "GAP-COMMENT-A" in after and "OVERFIT-COMMENT" not in after and "GAP-COMMENT-B" not in after
    assert "Beta&#39;s own secret" not in after and "Beta's own secret" not in after
    home = team.get("/").text
    assert "Coach, gap: 2/2 &ldquo;GAP-COMMENT-A&rdquo;" in home
    assert "OVERFIT-COMMENT" not in home and "GAP-COMMENT-B" not in home
    # another team's submission, the coach's pages and the grading POST stay closed to a team
    assert team.get(f"/submissions/{beta}/scorecard").status_code == 404
    for path in ("/coach/grading", "/coach/grading/toy/gap", f"/coach/submissions/{beta}/scorecard",
                 "/coach/export/gradebook.csv"):
        assert team.get(path).status_code == 403, path
    assert team.post("/coach/grading/toy/gap/release", data={"csrf": team_csrf, "released": "0"}).status_code == 403
    assert _save(team, team_csrf, beta, points="0").status_code == 403
    assert beta in {g.submission_id for g in grades_of(event.store, "spring")}
    # withdrawn: hidden again
    assert coach.post("/coach/grading/toy/gap/release", data={"csrf": csrf, "released": "0"},
                      follow_redirects=False).status_code == 303
    assert "GAP-COMMENT-A" not in card()


def test_a_regrade_keeps_the_grades_of_an_unchanged_answer_and_marks_a_changed_one(event: Event) -> None:  # noqa: F811
    _with_questions(event)
    same, old, new = "Same words as before, unchanged.", "The first answer text.", "A rewritten answer text."
    alpha = _submit(event, "alpha", written("alpha", {"gap": same}))
    beta = _submit(event, "beta", written("beta", {"gap": old}))
    coach, csrf = join(event, "coach")
    assert _save(coach, csrf, alpha, points="2", comment="Kept.").status_code == 200
    assert _save(coach, csrf, beta, points="1", comment="Then.").status_code == 200
    for sub in (alpha, beta):
        assert coach.post(f"/coach/submissions/{sub}/regrade", data={"csrf": csrf}).status_code == 200
    # the re-grades score higher on the public part: each becomes its team's final submission
    again_alpha = finish(event.store, written("alpha", {"gap": same}, k_public=20))
    again_beta = finish(event.store, written("beta", {"gap": new}, k_public=20))
    page = coach.get("/coach/grading/toy/gap").text
    kept, changed = _article(page, again_alpha), _article(page, again_beta)
    assert "graded 2/2" in kept and "Kept.</textarea>" in kept
    assert "answer changed" in changed and "The answer changed since you graded it (1 points then" in changed
    assert "Then." in changed and "graded 1/2" not in changed
    listing = coach.get("/coach/grading").text
    row = re.search(r'<tr id="q-toy-gap">.*?</tr>', listing, flags=re.S)
    assert row and 'data-count="graded">1<' in row.group(0) and 'data-count="awaiting">1<' in row.group(0)
    # the new answer graded: saved on the re-grade itself
    assert _save(coach, csrf, again_beta, points="2").status_code == 200
    assert "graded 2/2" in _article(coach.get("/coach/grading/toy/gap").text, again_beta)


def test_exports_carry_the_points_and_the_leaderboards_stay_automatic(event: Event) -> None:  # noqa: F811
    _with_questions(event)
    alpha = _submit(event, "alpha", written("alpha", {"gap": "Forty-eight percent wrong.", "overfit": "At six."}))
    _submit(event, "beta", written("beta", {"gap": "Photos are harder than digits."}))
    coach, csrf = join(event, "coach")
    boards_before = coach.get("/coach/leaderboard").text
    beta_team = join(event, "beta")[0]
    team_board_before = beta_team.get("/leaderboard").text

    def gradebook() -> dict[str, dict[str, str]]:
        sheet = coach.get("/coach/export/gradebook.csv").text
        return {r["submission"]: r for r in csv.DictReader(io.StringIO(sheet))}

    assert gradebook()["alpha"]["toy:gap"] == "awaiting" and gradebook()["beta"]["toy:overfit"] == "0"
    assert _save(coach, csrf, alpha, items=["1", "2"], comment="Well argued.").status_code == 200
    rows = gradebook()
    assert rows["alpha"]["toy:gap"] == "2" and rows["alpha"]["score"] == "5" and rows["beta"]["toy:gap"] == "awaiting"
    junit = coach.get("/coach/export/junit.xml").text
    assert 'name="gap (2 of 2 points)"' in junit and 'value="Well argued."' in junit
    with zipfile.ZipFile(io.BytesIO(coach.get("/coach/export/gradescope.zip").content)) as z:
        results = json.loads(z.read("alpha/toy/results.json"))
    test = next(t for t in results["tests"] if "Why the test error" in t["name"] or t["name"].endswith(": gap"))
    assert (test["score"], test["visibility"], test["status"]) == (2.0, "after_published", "passed")
    assert "Coach: Well argued." in test["output"]
    # the coach's own scorecard carries it; the boards do not move
    assert "Well argued." in coach.get(f"/coach/submissions/{alpha}/scorecard").text
    assert coach.post("/coach/grading/toy/gap/release", data={"csrf": csrf}).status_code == 200
    assert coach.get("/coach/leaderboard").text == boards_before
    assert beta_team.get("/leaderboard").text == team_board_before


def test_the_question_page_reads_the_same_queries_for_more_teams(event: Event) -> None:  # noqa: F811
    """The per-question page's queries do not grow with the teams (none per team): counted for 2
    teams and for 6, each page read once before (the final submissions are kept until a result is
    added), then with every value kept for a second forgotten, so that the two counts compare."""
    _with_questions(event)
    coach, csrf = join(event, "coach")
    engine = event.store._engine
    marks = event.client.app.state.marks  # type: ignore[attr-defined]
    statements: list[str] = []

    def counted(*args: Any) -> None:
        statements.append(str(args[2]))

    def cost() -> int:
        coach.get("/coach/grading/toy/gap")
        for forget in (marks.forget, marks.site.forget_event, marks.site.forget_announcements,
                       marks.site.forget_teams, marks._pages.clear):  # the answers drawn again too
            forget()
        statements.clear()
        sa_event.listen(engine, "before_cursor_execute", counted)
        try:
            assert coach.get("/coach/grading/toy/gap").status_code == 200
        finally:
            sa_event.remove(engine, "before_cursor_execute", counted)
        return len(statements)

    subs = [_submit(event, team, written(team, {"gap": f"Answer of team {team} in words."}))
            for team in ("alpha", "beta")]
    _save(coach, csrf, subs[0], points="1")
    few = cost()
    for i in range(4):
        name = f"team{i}"
        event.tokens[name] = add_team(event.store, "spring", name).token
        _save(coach, csrf, _submit(event, name, written(name, {"gap": f"Answer of {name} in words."})), points="1")
    many = cost()
    assert many == few, statements


# ---------------------------------------------------------------- in a browser

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/server-shots")  # as tests/server/test_server_browser.py saves its pages


@pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("GRADER_REQUIRE_BROWSER") != "1",
                    reason=f"{CHROMIUM} is missing (set GRADER_REQUIRE_BROWSER=1 to fail instead)")
def test_the_coach_grades_by_keyboard_in_chromium(tmp_path: Path, make_toy: Callable[..., Settings]) -> None:
    """In Chromium (the page's CSP on, no script error): digits toggle the rubric items and set the
    points, Enter saves without a reload and moves to the next answer, j/k move, c and Ctrl+Enter
    save a comment, a reusable comment goes into the comment without saving; the question released
    after its confirmation, the team reads its points and comment on a phone. The pages are saved
    under ``/tmp/server-shots/``."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from grader.server.web.app import create_app
    from grader.server.web.options import AppOptions
    from tests.support.net import free_port

    settings = make_toy()
    rubric = settings.project_dir / "rubrics" / "toy.toml"
    rubric.write_text(rubric.read_text() + QUESTIONS)
    store = Store(tmp_path / "state")
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta"], title="Spring hack day")
    teams = {t.name: t.id for t in store.teams("spring")}
    subs = {}
    for team, text in (("alpha", "The error is 0.48; digits are simpler."), ("beta", "Photos vary in pose a lot.")):
        sent = store.store_upload(io.BytesIO(notebook_bytes()), filename="toy.ipynb", max_bytes=100_000)
        store.submit("spring", teams[team], challenge="toy", upload=sent)
        subs[team] = finish(store, written(team, {"gap": text}))
    app = create_app(store, settings, workers=None, options=AppOptions(event="spring", join_delay_s=0.0))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            errors: list[str] = []
            try:
                coach = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
                coach.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                coach.on("pageerror", lambda e: errors.append(str(e)))
                coach.goto(f"{url}/coach/join/{created.coach_token}")
                coach.click("#join")
                coach.wait_for_url(f"{url}/coach")
                coach.click("text=Grading")  # the coach's menu
                coach.click("text=Why the test error is so far from MNIST")
                coach.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
                first, second = f"#sub-{subs['alpha']}", f"#sub-{subs['beta']}"
                assert "current" in (coach.get_attribute(first, "class") or "")
                coach.keyboard.press("2")
                assert coach.input_value(f"{first} input[name=points]") == "1"
                coach.keyboard.press("1")
                assert coach.input_value(f"{first} input[name=points]") == "2"
                coach.keyboard.press("Enter")
                coach.wait_for_selector(f"{first} .badge.graded")
                assert "current" in (coach.get_attribute(second, "class") or "")
                coach.keyboard.press("k")
                assert "current" in (coach.get_attribute(first, "class") or "")
                coach.keyboard.press("j")
                coach.click(f"{second} button.reuse >> nth=1")  # into the comment, not sent
                assert coach.input_value(f"{second} textarea") == "Look at the loss curves again."
                coach.keyboard.press("Escape")
                coach.keyboard.press("1")
                coach.keyboard.press("c")
                coach.keyboard.type(" Fine.")
                coach.keyboard.press("Control+Enter")
                coach.wait_for_selector(f"{second} .badge.graded")
                assert coach.evaluate("window.loadedOnce") is True
                got = {g.submission_id: (g.points, g.items, g.comment) for g in grades_of(store, "spring")}
                assert got == {subs["alpha"]: (2.0, (1, 2), ""),
                               subs["beta"]: (1.0, (1,), "Look at the loss curves again. Fine.")}
                SHOTS.mkdir(parents=True, exist_ok=True)
                coach.screenshot(path=str(SHOTS / "grading-question.png"), full_page=True)
                coach.set_viewport_size({"width": 390, "height": 800})
                assert coach.evaluate("document.documentElement.scrollWidth") <= 390
                coach.screenshot(path=str(SHOTS / "grading-question-phone.png"), full_page=True)
                coach.goto(f"{url}/coach/grading")
                coach.once("dialog", lambda dialog: dialog.accept())  # Release asks first (static/console.js)
                coach.click("#q-toy-gap button:has-text('Release')")
                coach.wait_for_selector("text=each team now sees its points and comment")
                coach.screenshot(path=str(SHOTS / "grading-list-phone.png"), full_page=True)
                phone = browser.new_context(viewport={"width": 390, "height": 800}).new_page()
                phone.goto(f"{url}/join/{created.team_tokens['beta']}")
                phone.click("#join")
                phone.wait_for_url(f"{url}/")
                assert "Look at the loss curves again. Fine." in phone.inner_text("#history")
                phone.goto(f"{url}/submissions/{subs['beta']}/scorecard")
                assert "Look at the loss curves again. Fine." in phone.content()
                assert errors == []
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
