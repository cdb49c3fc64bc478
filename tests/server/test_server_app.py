"""The event server's pages over a real app and a real Store on a temporary state folder."""

from __future__ import annotations

import io
import json
import os
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.core.settings import Settings
from grader.report.render import render_scorecard
from grader.score.measure import measure
from grader.score.scorecard import (
    CriterionResult,
    Environment,
    ExecutionSummary,
    ModelReport,
    NotebookResult,
    SubmissionResult,
)
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.boards import NO_SPLIT_NOTE, Graded, chosen, public_boards
from grader.server.web.headers import PAGE_CSP, SCORECARD_CSP
from grader.server.web.ladder import LadderRow, decimals, ladder, ladder_board, round_to
from grader.server.web.options import AppOptions

if TYPE_CHECKING:
    import httpx
    from starlette.testclient import TestClient

# ---------------------------------------------------------------- the Ladder, by hand


def test_ladder_moves_only_past_the_margin() -> None:
    # 0.805 does not beat 0.80 by more than 0.01; 0.812 does (shown 0.81); 0.835 does not beat 0.83 + 0.01
    assert ladder([0.80, 0.805, 0.812, 0.83, None, 0.835, 0.70, 0.904], eta=0.01) == [
        0.80, 0.80, 0.81, 0.83, 0.83, 0.83, 0.83, 0.90]
    assert ladder([None, None, 0.5]) == [None, None, 0.5]
    assert ladder([]) == []
    assert ladder([0.8137, 0.83], eta=0.005) == [0.815, 0.83]


def test_ladder_rounding_and_margin_checks() -> None:
    assert (decimals(0.01), decimals(0.005), decimals(0.1), decimals(1.0)) == (2, 3, 1, 0)
    assert round_to(0.8249, 0.01) == 0.82 and round_to(0.8251, 0.01) == 0.83
    with pytest.raises(ValueError, match="must be positive"):
        ladder([0.5], eta=0.0)


def test_ladder_board_ranks_ties_together_and_names_the_setter() -> None:
    rows = ladder_board({
        "gamma": [(5, None)],
        "beta": [(2, 0.812), (4, 0.815)],  # 0.815 does not move 0.81: submission 2 set the score
        "alpha": [(1, 0.70), (3, 0.806)],  # 0.806 beats 0.70 + 0.01: shown 0.81, set by 3
        "delta": [(6, 0.90)],
    })
    assert rows == [LadderRow(rank=1, team="delta", shown=0.90, submission_id=6, submissions=1),
                    LadderRow(rank=2, team="alpha", shown=0.81, submission_id=3, submissions=2),
                    LadderRow(rank=2, team="beta", shown=0.81, submission_id=2, submissions=2),
                    LadderRow(rank=None, team="gamma", shown=None, submission_id=None, submissions=1)]


# ---------------------------------------------------------------- results built by hand

N = 40


def result(name: str, k_public: int, k_private: int, *, challenge: str = "toy", split: bool = True) -> SubmissionResult:
    """A graded submission whose ``predict`` model got ``k_public`` of the 20 public and ``k_private`` of
    the 20 private hidden images right (public: the first 20)."""
    correct = [i < k_public for i in range(20)] + [i < k_private for i in range(20)]
    public = [i < 20 for i in range(N)]
    labels = ["red"] * N
    predictions = ["red" if c else "blue" for c in correct]
    model = ModelReport.of("predict", "predict", measure(labels, predictions, ["red", "green", "blue"]), 1.0,
                           correct=correct, public=public if split else None)
    nb = NotebookResult(
        notebook=f"{challenge}.ipynb", challenge=challenge, profile="ci", verdict="pass", score=3, max_score=3,
        criteria=[CriterionResult(id="accuracy", title="Accuracy on the hidden test set", status="pass",
                                  required=True, points=3, max_points=3, message="fine", fix="")],
        execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1.0, sandboxed=True,
                                   probe_status="ok", cells=[]),
        models=[model])
    return SubmissionResult(
        submission=name, path=f"/subs/{name}", verdict="pass", score=3, max_score=3, notebooks=[nb],
        started="2026-12-01T00:00:00+00:00", finished="2026-12-01T00:01:00+00:00",
        environment=Environment(grader="0.1.0", python="3.11", platform="linux", device="cpu", sandbox="bwrap"))


def test_public_board_scores_the_public_part_and_chooses_the_setter() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    graded = [Graded("alpha", 1, t0, result("a1", 16, 4)),  # public 0.80
              Graded("alpha", 2, t0 + timedelta(minutes=1), result("a2", 16, 20)),  # public 0.80 again: no move
              Graded("beta", 3, t0 + timedelta(minutes=2), result("b1", 18, 2))]  # public 0.90
    board = public_boards(graded, ["toy"])[0]
    assert [(r.rank, r.team, r.shown, r.submission_id) for r in board.rows] == [
        (1, "beta", 0.9, 3), (2, "alpha", 0.8, 1)]
    assert board.note == ""
    assert [g.submission_id for g in chosen(graded, "toy")] == [1, 3]
    unsplit = [Graded("alpha", 1, t0, result("a1", 16, 4, split=False))]
    assert public_boards(unsplit, ["toy"])[0].note == NO_SPLIT_NOTE
    # a starter measured no model: nothing says the set has no split (the board does not claim it)
    starter = result("s1", 0, 0)
    starter = starter.model_copy(update={"notebooks": [starter.notebooks[0].model_copy(update={"models": []})]})
    assert public_boards([Graded("beta", 4, t0, starter)], ["toy"])[0].note == ""


# ---------------------------------------------------------------- the app


def make_client(app: Any) -> TestClient:
    """Starlette's TestClient over ``app`` (its import warns that httpx2 is not installed: silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app)


@dataclass
class Event:
    store: Store
    client: TestClient
    tokens: dict[str, str]
    coach: str
    settings: Settings


def notebook_bytes() -> bytes:
    nb = new_notebook(cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
                             new_code_cell("print(1)")], metadata={"grader": {"challenge": "toy"}})
    return str(nbformat.writes(nb)).encode()


@pytest.fixture
def event(tmp_path: Path, make_toy: Callable[..., Settings], database_url: str | None) -> Iterator[Event]:
    """An event on SQLite and on PostgreSQL (``database_url``, tests/support/pg.py): each test twice."""
    settings = make_toy()
    (settings.project_dir / "challenges" / "toy" / "README.md").write_text("# Toy colours\n\n<b>red</b>, green, blue\n")
    (settings.project_dir / "challenges" / "toy" / "starter.ipynb").write_bytes(notebook_bytes())
    store = Store(tmp_path / "state", database_url)
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta"], cap_per_day=2,
                                 title="Spring hack day")
    app = create_app(store, settings, workers=None,
                     options=AppOptions(max_upload_bytes=50_000, join_delay_s=0.2, poll_s=0.01))
    with make_client(app) as client:
        yield Event(store, client, created.team_tokens, created.coach_token, settings)
    store.close()


def sign_in(client: TestClient, link: str) -> httpx.Response:
    """Open join link ``link`` and press its button (the join page's form, POSTed to the link);
    the answer after its redirects."""
    page = client.get(link)
    assert page.status_code == 200 and 'name="join_csrf"' in page.text, page.text
    fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', page.text))
    answer: httpx.Response = client.post(link, data=fields)
    return answer


def join(ev: Event, who: str) -> tuple[TestClient, str]:
    """A client signed in as team ``who`` (or the coach) and its CSRF token."""
    client = make_client(ev.client.app)
    page = sign_in(client, f"/coach/join/{ev.coach}" if who == "coach" else f"/join/{ev.tokens[who]}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return client, found.group(1)


def upload(client: TestClient, csrf: str | None, files: Sequence[tuple[str, bytes]],
           challenge: str = "toy") -> httpx.Response:
    data = {"challenge": challenge} | ({"csrf": csrf} if csrf is not None else {})
    response: httpx.Response = client.post("/submit", data=data, files=[("files", (n, b)) for n, b in files],
                                           follow_redirects=False)
    return response


def finish(store: Store, graded: SubmissionResult) -> int:
    """Grade the oldest queued submission with ``graded`` as a worker would; return its id."""
    job = store.claim("test-worker", lease_s=60)
    assert job is not None
    assert store.finish(job.id, "test-worker", result_json=graded.model_dump_json(),
                        scorecard_html=render_scorecard(graded), verdict=graded.verdict, score=graded.score,
                        max_score=graded.max_score)
    return job.id


def test_every_team_route_refuses_without_a_session(event: Event) -> None:
    for path in ("/", "/leaderboard", "/submissions/1/scorecard", "/submissions/1/status", "/submissions/1/events",
                 "/challenges/toy/starter.ipynb", "/challenges/toy/public-data.zip"):
        page = event.client.get(path)
        assert page.status_code == 403, path
        assert "You are not signed in as a team: open your team&#39;s join link." in page.text, path
    assert upload(event.client, "x", [("toy.ipynb", notebook_bytes())]).status_code == 403
    assert event.store.submissions("spring") == []


def test_a_wrong_join_link_is_refused_slowly(event: Event) -> None:
    for path in ("/join/not-a-token", "/coach/join/not-a-token", f"/coach/join/{event.tokens['alpha']}"):
        started = time.monotonic()
        page = event.client.get(path)
        assert time.monotonic() - started >= 0.2  # AppOptions.join_delay_s
        assert page.status_code == 403
        assert "This join link is not valid" in page.text
        assert "grader_session" not in page.headers.get("set-cookie", "")


def test_join_sets_an_httponly_lax_cookie_and_security_headers(event: Event) -> None:
    client = make_client(event.client.app)
    link = f"/join/{event.tokens['alpha']}"
    form = client.get(link)
    assert form.status_code == 200 and "grader_session" not in form.headers.get("set-cookie", "")
    fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', form.text))
    page = client.post(link, data=fields, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/"
    cookie = page.headers["set-cookie"].lower()
    assert "grader_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    home = client.get("/")
    assert home.status_code == 200
    assert "Spring hack day: team alpha" in home.text
    assert "2 submissions left today" in home.text
    assert "&lt;b&gt;red&lt;/b&gt;" in home.text  # the brief is escaped, never rendered as HTML
    assert "<h1>Toy colours</h1>" in home.text
    readme = event.settings.project_dir / "challenges" / "toy" / "README.md"
    readme.write_text("# Toy colours, corrected\n\nred, green, blue and *grey*\n")  # the coach edits it mid-event
    again = client.get("/").text
    assert "<h1>Toy colours, corrected</h1>" in again and "<em>grey</em>" in again  # rendered once per version
    # the toy challenge's limits (tests/support/toy.py: 60 s a cell, 120 s in all) under the served profile
    assert "<strong>Time limits</strong> (full profile): each cell 1 min, the whole notebook 2 min." in home.text
    assert re.search(r"<strong>Installed for your notebook</strong> \(offline[^)]*\): Python 3\.[^<]*, numpy 2\.",
                     home.text)
    assert home.headers["content-security-policy"] == PAGE_CSP
    assert home.headers["x-frame-options"] == "DENY"
    assert home.headers["referrer-policy"] == "no-referrer"
    assert home.headers["x-content-type-options"] == "nosniff"
    starter = client.get("/challenges/toy/starter.ipynb")
    assert starter.status_code == 200 and json.loads(starter.content)["cells"]
    assert client.get("/challenges/gear-cnn/starter.ipynb").status_code == 404


def test_the_public_data_download_leaves_the_hidden_test_set_out(event: Event) -> None:
    client, _ = join(event, "alpha")
    page = client.get("/challenges/toy/public-data.zip")
    assert page.status_code == 200 and page.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(page.content)) as archive:
        names = {Path(n).name for n in archive.namelist()}
    assert {"red2.png", "green5.png"} <= names
    assert not names & {"red0.png", "red1.png", "green0.png", "blue1.png"}  # the toy hidden split


def test_coach_routes_refuse_a_team_session_and_nobody(event: Event) -> None:
    team, csrf = join(event, "alpha")
    for client in (team, event.client):
        for path in ("/coach", "/coach/leaderboard", "/coach/export/gradebook.csv", "/coach/export/junit.xml",
                     "/coach/export/results.json", "/coach/submissions/1/scorecard"):
            page = client.get(path)
            assert page.status_code == 403, path
            assert "Coach pages need the coach&#39;s join link." in page.text
        assert client.post("/coach/reveal", data={"csrf": csrf, "revealed": "1"}).status_code == 403
    assert event.store.event("spring").revealed is False


def test_forms_without_the_csrf_token_are_refused(event: Event) -> None:
    team, csrf = join(event, "alpha")
    for token in (None, "forged"):
        page = upload(team, token, [("toy.ipynb", notebook_bytes())])
        assert page.status_code == 403
        assert "This form did not come from this site or has expired" in page.text
    assert event.store.submissions("spring") == []
    coach, coach_csrf = join(event, "coach")
    assert coach.post("/coach/reveal", data={"revealed": "1"}).status_code == 403
    assert coach.post("/coach/reveal", data={"revealed": "1", "csrf": csrf}).status_code == 403  # another session's
    assert event.store.event("spring").revealed is False
    assert coach.post("/coach/reveal", data={"revealed": "1", "csrf": coach_csrf}).status_code == 200
    assert event.store.event("spring").revealed is True


def test_uploads_are_checked_at_once_with_clear_messages(event: Event) -> None:
    team, csrf = join(event, "alpha")
    page = upload(team, csrf, [("toy.ipynb", b"{not json")])  # the intake's diagnosis, as grader check gives it
    assert page.status_code == 400
    assert "toy.ipynb is not a notebook: not valid JSON (line 1, column 2)" in page.text
    assert "`python -m json.tool toy.ipynb` names the error" in page.text  # the team's name for it
    page = upload(team, csrf, [("toy.ipynb", b'{"metadata": {}}')])
    assert page.status_code == 400 and ("toy.ipynb is not a notebook: valid JSON with a notebook&#39;s "
                                        "&#39;metadata&#39; but no &#39;cells&#39; list") in page.text
    page = upload(team, csrf, [("toy.ipynb", notebook_bytes())], challenge="gear-cnn")
    assert page.status_code == 400 and "&#39;gear-cnn&#39; is not a challenge of this event; choose one of toy" \
        in page.text
    page = upload(team, csrf, [("toy.ipynb", notebook_bytes()), ("notes.txt", b"hi")])
    assert page.status_code == 400 and "Not images: notes.txt" in page.text
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/x.ipynb", notebook_bytes())
    page = upload(team, csrf, [("team.zip", evil.getvalue())])
    assert page.status_code == 400
    assert "team.zip: entry &#39;../../etc/x.ipynb&#39; points outside the zip&#39;s folder" in page.text
    page = upload(team, csrf, [("toy.ipynb", notebook_bytes() + b" " * 60_000)])
    assert page.status_code == 413 and "over the limit of 0.0 MB" in page.text
    page = upload(team, csrf, [])
    assert page.status_code == 400 and "No file was chosen" in page.text
    assert event.store.submissions("spring") == []


def test_a_notebook_with_images_is_stored_as_one_zip(event: Event) -> None:
    team, csrf = join(event, "alpha")
    page = upload(team, csrf, [("toy.ipynb", notebook_bytes()), ("cat.png", b"\x89PNG fake"),
                               ("dog.jpg", b"\xff\xd8 fake")])
    assert page.status_code == 303, page.text
    (sub,) = event.store.submissions("spring")
    assert (sub.filename, sub.state, sub.team_name) == ("toy.zip", "queued", "alpha")
    with zipfile.ZipFile(event.store.upload_path(sub.upload_sha256)) as archive:
        assert sorted(archive.namelist()) == ["new_images/cat.png", "new_images/dog.jpg", "toy.ipynb"]
    home = team.get("/")
    assert "Submission 1 (toy.zip) is queued." in home.text
    assert "place 1 in the queue" in home.text and "1 submission left today" in home.text
    status = team.get(f"/submissions/{sub.id}/status").json()
    assert (status["state"], status["queue_position"], status["final"]) == ("queued", 1, False)


def test_the_cap_refuses_with_its_message(event: Event) -> None:
    team, csrf = join(event, "alpha")
    for _ in range(2):
        assert upload(team, csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    page = upload(team, csrf, [("toy.ipynb", notebook_bytes())])
    assert page.status_code == 429
    assert "alpha has used its 2 submissions for today (UTC)" in page.text
    assert "0 submissions left today" in page.text
    assert len(event.store.submissions("spring")) == 2


def test_a_team_sees_only_its_own_scorecard(event: Event) -> None:
    alpha, _ = join(event, "alpha")
    beta, beta_csrf = join(event, "beta")
    assert upload(beta, beta_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    sub_id = finish(event.store, result("beta", 18, 10))
    for path in ("scorecard", "status", "events"):
        page = alpha.get(f"/submissions/{sub_id}/{path}")
        assert page.status_code == 404 and "No such submission." in page.text, path
    assert alpha.get("/submissions/999/scorecard").status_code == 404
    own = beta.get(f"/submissions/{sub_id}/scorecard")
    assert own.status_code == 200
    assert own.headers["content-security-policy"] == SCORECARD_CSP
    assert "<script" not in own.text
    assert "this submission set your team's score to <strong>90%</strong>" in own.text  # the board's step
    assert "90.0%" not in own.text and "0.900" not in own.text and "images" not in own.text
    assert "Recall (per-class accuracy)" not in own.text and "Confusion matrix" not in own.text
    assert "private part:" not in own.text
    coach, _ = join(event, "coach")
    full = coach.get(f"/coach/submissions/{sub_id}/scorecard")
    assert full.status_code == 200 and "Recall (per-class accuracy)" in full.text
    assert full.headers["content-security-policy"] == SCORECARD_CSP
    stream = beta.get(f"/submissions/{sub_id}/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.startswith("event: progress\ndata: ") and "event: done\ndata: " in stream.text
    home = beta.get("/")
    assert f'href="/submissions/{sub_id}/scorecard"' in home.text


def test_the_private_board_is_hidden_until_the_coach_reveals_it(event: Event) -> None:
    alpha, alpha_csrf = join(event, "alpha")
    beta, beta_csrf = join(event, "beta")
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    finish(event.store, result("alpha", 18, 8))  # public 0.90, private 0.40
    assert upload(beta, beta_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    finish(event.store, result("beta", 16, 19))  # public 0.80, private 0.95
    board = alpha.get("/leaderboard")
    assert board.status_code == 200
    assert "Final ranking" not in board.text and 'id="private-hidden"' in board.text
    public = board.text[board.text.index('id="public"'):]
    assert public.index("alpha") < public.index("beta") and "90%" in public and "80%" in public
    coach, coach_csrf = join(event, "coach")
    assert "Final ranking" in coach.get("/coach/leaderboard").text
    assert coach.post("/coach/reveal", data={"csrf": coach_csrf, "revealed": "1"}).status_code == 200
    board = alpha.get("/leaderboard")
    private = board.text[board.text.index('id="private"'):board.text.index('id="public"')]
    assert "Accuracy (private)" in private
    assert private.index("beta") < private.index("alpha") and "95.0%" in private and "40.0%" in private
    assert "/coach/submissions/" not in private  # no links to the coach's scorecards


def test_coach_page_lists_the_newest_submissions_and_links_to_all(event: Event,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """60 submissions: the coach's page lists the newest 50 (with their queue places, one query),
    ``?all=1`` all 60; the leaderboard page (rendered once per set of results) follows a new result."""
    from grader.server.web.pages import COACH_PAGE_ROWS, OVERVIEW_TTL_S

    store = event.store
    up = store.store_upload(io.BytesIO(notebook_bytes()), filename="toy.ipynb", max_bytes=1 << 20)
    alpha, beta = store.teams("spring")
    store.set_cap("spring", None)  # no cap here
    ids = [store.submit("spring", (alpha, beta)[i % 2].id, challenge="toy", upload=up).id for i in range(60)]
    coach, _ = join(event, "coach")
    page = coach.get("/coach").text
    assert COACH_PAGE_ROWS == 50 and "The newest 50 of 60 submissions" in page and "Show all 60 submissions" in page
    listed = [int(x) for x in re.findall(r'<tr class="sub" data-id="(\d+)"', page)]
    # the queue table (all 60, oldest first) and then the newest 50
    assert listed[60:] == ids[::-1][:50] and sorted(listed[:60]) == ids
    assert "(place 60 in the queue)" in page and "(place 1 in the queue)" in page
    every = coach.get("/coach?all=1").text
    assert "All submissions" in every and len(re.findall(r'<tr class="sub"', every)) == 120
    # kept for OVERVIEW_TTL_S (one second): a submission made elsewhere (another server) shows after it
    assert OVERVIEW_TTL_S == 1.0
    monkeypatch.setattr("grader.server.web.pages.OVERVIEW_TTL_S", 3600.0)  # not yet, however slow this machine
    store.submit("spring", alpha.id, challenge="toy", upload=up)
    assert "The newest 50 of 60 submissions" in coach.get("/coach").text
    monkeypatch.setattr("grader.server.web.pages.OVERVIEW_TTL_S", 0.0)  # its time is up
    assert "The newest 50 of 61 submissions" in coach.get("/coach").text
    board = coach.get("/coach/leaderboard").text
    assert "No graded submissions yet." in board
    finish(store, result("alpha", 18, 8))
    board = coach.get("/coach/leaderboard").text
    assert "No graded submissions yet." not in board and "alpha" in board


def test_coach_sees_the_cohort_exports_and_can_cancel_and_regrade(event: Event) -> None:
    alpha, alpha_csrf = join(event, "alpha")
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    done_id = finish(event.store, result("alpha", 18, 8))
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    queued = next(s for s in event.store.submissions("spring") if s.state == "queued")
    coach, csrf = join(event, "coach")
    page = coach.get("/coach")
    assert page.status_code == 200 and "Accuracy on the hidden test set" in page.text and "No workers" in page.text
    assert f'action="/coach/submissions/{queued.id}/cancel"' in page.text
    assert coach.post(f"/coach/submissions/{queued.id}/cancel", data={}).status_code == 403
    assert coach.post(f"/coach/submissions/{queued.id}/cancel", data={"csrf": csrf}).status_code == 200
    assert event.store.submission(queued.id).state == "cancelled"  # type: ignore[union-attr]
    assert coach.post(f"/coach/submissions/{done_id}/regrade", data={"csrf": csrf}).status_code == 200
    assert [s.state for s in event.store.submissions("spring")][0] == "queued"
    assert coach.post("/coach/submissions/999/regrade", data={"csrf": csrf}).status_code == 404
    gradebook = coach.get("/coach/export/gradebook.csv")
    assert gradebook.status_code == 200 and gradebook.headers["content-type"].startswith("text/csv")
    assert "alpha" in gradebook.text.splitlines()[1]
    suites = ET.fromstring(coach.get("/coach/export/junit.xml").text)
    assert [s.get("name") for s in suites] == ["alpha"]
    gradescope = coach.get("/coach/export/results.json").json()
    assert [(g["team"], g["challenge"], g["score"]) for g in gradescope] == [("alpha", "toy", 3)]


def test_the_team_scorecard_shows_no_figure_of_the_hidden_test_set() -> None:
    """Before the Reveal a team's scorecard holds no figure of the hidden test set (the board's step is
    put in when it is served: tests/report/test_teamcard.py); the coach's has them all."""
    graded = result("alpha", 18, 8)
    team = render_scorecard(graded, audience="team")
    full = render_scorecard(graded)
    assert "accuracy 90.0%" not in team and "40.0%" not in team and "Recall (per-class accuracy)" not in team
    assert "private part: 40.0%" in full and "Recall (per-class accuracy)" in full
    with pytest.raises(ValueError, match="unknown scorecard audience 'student'; choose full or team"):
        render_scorecard(graded, audience="student")  # type: ignore[arg-type]


def test_the_coach_sees_similar_pairs_and_teams_do_not(event: Event) -> None:
    """Two teams whose kept code is the same notebook's: flagged on code on /coach/similar, with
    both codes side by side; a team session is refused."""
    from grader.integrity.pairs import notebook_code
    from grader.server.work.worker import CODE_FOLDER

    code = notebook_code(Path(__file__).resolve().parents[2] / "reference_solutions" / "gear-cnn" / "pytorch.ipynb")
    assert len(code) > 2000
    ids = []
    for name in ("alpha", "beta"):
        client, csrf = join(event, name)
        assert upload(client, csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
        ids.append(finish(event.store, result(name, 18, 8)))
    for i in ids:
        (event.store.state_dir / CODE_FOLDER).mkdir(exist_ok=True)
        (event.store.state_dir / CODE_FOLDER / f"{i}.json").write_text(json.dumps({"toy.ipynb": code}))
    alpha, _ = join(event, "alpha")
    assert alpha.get("/coach/similar").status_code == 403
    coach, _ = join(event, "coach")
    page = coach.get("/coach/similar")
    assert page.status_code == 200, page.text
    assert "Similar pairs" in page.text and "a reason to look: code" in page.text
    assert "2 notebook(s) compared" in page.text and page.text.count("<mark>") >= 2
    assert "no score was changed" in page.text
    if os.environ.get("GRADER_SHOTS"):  # for a look in a browser: the page with its style sheet inlined
        css = (Path(__file__).resolve().parents[2] / "grader" / "server" / "web" / "static" / "style.css").read_text()
        Path(os.environ["GRADER_SHOTS"]).write_text(page.text.replace("</head>", f"<style>{css}</style></head>"))
