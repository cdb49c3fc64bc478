"""The coach's console over a real app and a real Store (SQLite and PostgreSQL, as
test_server_app.py): the live coach's page (Server-Sent Events), the roster and its links, the
settings changed while the event runs, announcements, the countdown and the brief as HTML."""

from __future__ import annotations

import html
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.core import UsageError
from grader.core.settings import Settings
from grader.server.store import announcements_of, members_of, set_members
from grader.server.store.members import MemberRow
from grader.server.store.rows import CreatedEvent
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.headers import PAGE_CSP
from grader.server.web.options import AppOptions
from tests.server.test_server_app import (  # noqa: F401  (event: the app's fixture)
    Event,
    event,
    join,
    make_client,
    notebook_bytes,
    sign_in,
    upload,
)
from tests.support.net import free_port

CONSOLE_POSTS = ("/coach/teams", "/coach/teams/1/link", "/coach/teams/1/remove", "/coach/link", "/coach/settings",
                 "/coach/announcements", "/coach/announcements/1/delete")


def _overviews(body: str) -> list[dict[str, object]]:
    """The data of each ``overview`` event of a Server-Sent Events body."""
    return [json.loads(data) for data in re.findall(r"^event: overview\ndata: (.*)$", body, flags=re.M)]


def test_the_coach_stream_sends_when_a_submission_is_queued(event: Event, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr("grader.server.web.routes.coach.STREAM_S", 2.5)  # the stream ends: its body can be read
    monkeypatch.setattr("grader.server.web.pages.OVERVIEW_TTL_S", 0.0)  # each poll reads the database
    coach, _ = join(event, "coach")
    alpha, alpha_csrf = join(event, "alpha")
    page = coach.get("/coach")
    before = re.search(r'id="live" data-events="/coach/events" data-fragment="/coach/live" data-version="(\w+)"',
                       page.text)
    assert before, page.text
    sent: list[int] = []

    def queue_one() -> None:
        time.sleep(0.8)
        sent.append(upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code)

    uploader = threading.Thread(target=queue_one)
    uploader.start()
    stream = coach.get("/coach/events")
    uploader.join()
    assert sent == [303]
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.startswith("retry: 2000\n\n")
    events = _overviews(stream.text)
    assert len(events) >= 2, stream.text  # at once, then when the submission was queued; nothing in between
    assert (events[0]["submissions"], events[0]["queued"]) == (0, 0)
    assert events[0]["version"] == before.group(1)
    assert (events[-1]["submissions"], events[-1]["queued"]) == (1, 1)
    assert len({str(e["version"]) for e in events}) == len(events)  # each one a change
    live = coach.get("/coach/live")  # what the page's script puts in place: the queued row, no page around it
    assert live.status_code == 200 and "<html" not in live.text
    assert len(re.findall(r'<tr class="sub" data-id="\d+"', live.text)) == 2  # the queue's table and the newest
    assert "<strong>1</strong> queued" in live.text


def test_a_team_and_nobody_cannot_reach_the_console_and_every_form_checks_csrf(event: Event) -> None:  # noqa: F811
    team, team_csrf = join(event, "alpha")
    for client in (team, event.client):
        for path in ("/coach/roster", "/coach/settings", "/coach/live", "/coach/events"):
            page = client.get(path)
            assert page.status_code == 403 and "Coach pages need the coach&#39;s join link." in page.text, path
        for path in CONSOLE_POSTS:
            page = client.post(path, data={"csrf": team_csrf, "name": "x", "text": "x", "cap_per_day": "9"})
            assert page.status_code == 403, path
    coach, coach_csrf = join(event, "coach")
    for path in CONSOLE_POSTS:
        for token in ({}, {"csrf": team_csrf}):  # none, and another session's
            page = coach.post(path, data=token | {"name": "x", "text": "x", "cap_per_day": "9"})
            assert page.status_code == 403 and "This form did not come from this site" in page.text, path
    store = event.store
    assert [t.name for t in store.teams("spring")] == ["alpha", "beta"]
    assert store.event("spring").cap_per_day == 2
    assert announcements_of(store, "spring") == [] and "None posted." in coach.get("/coach/settings").text
    assert team.get("/").status_code == 200  # alpha's link and session still work


def test_a_changed_cap_is_enforced_on_the_next_upload(event: Event) -> None:  # noqa: F811
    coach, coach_csrf = join(event, "coach")
    alpha, alpha_csrf = join(event, "alpha")
    settings = {"csrf": coach_csrf, "cap_per_day": "1", "practice_per_day": "3", "ends_at": ""}
    page = coach.post("/coach/settings", data=settings)
    assert page.status_code == 200 and "Saved: 1 submissions a day" in page.text
    assert 'name="cap_per_day" min="1" step="1" inputmode="numeric" value="1"' in page.text
    assert "1 submission left today" in alpha.get("/").text
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    refused = upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())])
    assert refused.status_code == 429 and "has used its 1 submissions for today" in refused.text
    assert coach.post("/coach/settings", data=settings | {"cap_per_day": ""}).status_code == 200  # no cap
    assert "No daily limit on submissions." in alpha.get("/").text
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    assert len(event.store.submissions("spring")) == 2


def test_a_cap_changed_on_another_server_is_enforced_within_a_second(event: Event,  # noqa: F811
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    alpha, alpha_csrf = join(event, "alpha")
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303  # facts read: cap 2
    other = Store(event.store.state_dir, event.store.database_url)  # another server on the same database
    try:
        other.set_cap("spring", 1)
        monkeypatch.setattr("grader.server.store.events.FACTS_TTL_S", 3600.0)  # not yet: this server keeps cap 2
        assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
        monkeypatch.setattr("grader.server.store.events.FACTS_TTL_S", 0.0)  # its second is up
        refused = upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())])
        assert refused.status_code == 429 and "has used its 1 submissions for today" in refused.text
        soon = datetime.now(UTC) + timedelta(seconds=1.5)
        other.set_cap("spring", None)
        other.set_end("spring", soon)
        time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
        ended = upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())])
        assert ended.status_code == 400 and "submissions are closed" in ended.text
    finally:
        other.close()


def test_settings_are_validated_with_clear_messages_and_nothing_changed(event: Event) -> None:  # noqa: F811
    coach, csrf = join(event, "coach")
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for fields, said in (({"cap_per_day": "0"}, "the daily cap must be at least 1 submission (or none), not 0"),
                         ({"cap_per_day": "two"}, "submissions a day: &#39;two&#39; is not a whole number"),
                         ({"practice_per_day": "-1"}, "practice checks a day: &#39;-1&#39; is not a whole number"),
                         ({"ends_at": past}, "is not in the future: give a later time, or none for no set end"),
                         ({"ends_at": "tomorrow"}, "is not a time of the form 2026-12-07T18:00 (UTC)")):
        page = coach.post("/coach/settings", data={"csrf": csrf, "cap_per_day": "2", "practice_per_day": "3",
                                                   "ends_at": ""} | fields)
        assert page.status_code == 200 and str(page.url).endswith("/coach/settings?refused=1"), fields
        assert said in page.text and 'role="alert"' in page.text, fields
        assert said not in coach.get("/coach/settings").text  # shown once: a reload shows the form alone
    row = event.store.event("spring")
    assert (row.cap_per_day, row.practice_per_day, row.ends_at) == (2, 3, None)
    with pytest.raises(UsageError, match="no time zone"):
        event.store.set_end("spring", datetime(2099, 1, 1))
    with pytest.raises(UsageError, match="no setting colour"):
        event.store.set_settings("spring", {"colour": 1})


def test_the_countdown_shows_the_end_on_every_page(event: Event) -> None:  # noqa: F811
    coach, csrf = join(event, "coach")
    alpha, _ = join(event, "alpha")
    assert 'id="countdown"' not in alpha.get("/").text  # no set end: no countdown
    end = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    page = coach.post("/coach/settings", data={"csrf": csrf, "cap_per_day": "2", "practice_per_day": "3",
                                               "ends_at": end.strftime("%Y-%m-%dT%H:%M")})
    assert "Saved:" in page.text and f"ends {end:%Y-%m-%d %H:%M} UTC" in page.text
    iso = end.strftime("%Y-%m-%dT%H:%M:00Z")
    for client, path in ((alpha, "/"), (alpha, "/leaderboard"), (coach, "/coach"), (coach, "/coach/roster")):
        shown = client.get(path)
        assert (f'<span class="countdown" id="countdown" data-ends="{iso}"><time datetime="{iso}">'
                f"ends {end:%Y-%m-%d %H:%M} UTC</time></span>") in shown.text, path
        assert '<script src="/static/console.js" defer></script>' in shown.text
        assert shown.headers["content-security-policy"] == PAGE_CSP
    assert event.store.event("spring").ends_at == end
    # saved again with the end as the form shows it (to the minute): the end is left as it is
    assert "Saved:" in coach.post("/coach/settings", data={"csrf": csrf, "cap_per_day": "3", "practice_per_day": "",
                                                           "ends_at": end.strftime("%Y-%m-%dT%H:%M")}).text
    row = event.store.event("spring")
    assert (row.cap_per_day, row.practice_per_day, row.ends_at) == (3, None, end)


def test_an_announcement_is_shown_escaped_on_every_team_page_until_deleted(event: Event) -> None:  # noqa: F811
    coach, csrf = join(event, "coach")
    alpha, _ = join(event, "alpha")
    beta, _ = join(event, "beta")
    text = "<script>alert(1)</script> Lunch at 12:30 & the room is B2"
    page = coach.post("/coach/announcements", data={"csrf": csrf, "text": text})
    assert page.status_code == 200 and "Announced: every team sees it" in page.text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; Lunch at 12:30 &amp; the room is B2"
    for client, path in ((alpha, "/"), (beta, "/"), (alpha, "/leaderboard")):
        shown = client.get(path).text
        assert escaped in shown and "<script>alert" not in shown, path
        assert 'aria-label="Announcements from the coach"' in shown
    assert escaped not in event.client.get("/join/not-a-token").text  # not for browsers nobody signed in
    assert coach.post("/coach/announcements", data={"csrf": csrf, "text": "   "}).url.query == b"refused=1"
    found = re.search(r'action="/coach/announcements/(\d+)/delete"', coach.get("/coach/settings").text)
    assert found
    gone = coach.post(f"/coach/announcements/{found.group(1)}/delete", data={"csrf": csrf})
    assert "Announcement deleted." in gone.text
    assert escaped not in alpha.get("/").text and "Announcements from the coach" not in alpha.get("/").text


def test_the_brief_is_rendered_as_html_with_raw_html_off(event: Event) -> None:  # noqa: F811
    readme = event.settings.project_dir / "challenges" / "toy" / "README.md"
    readme.write_text("# Toy colours\n\n## Your task\n\n<script>alert(1)</script>\n\nTell **red** from blue. "
                      "[bad](javascript:alert(1)) [docs](https://example.org/docs) ![a square](sq.png)\n")
    alpha, _ = join(event, "alpha")
    page = alpha.get("/").text
    brief = page[page.index('<div class="brief">'):]
    assert "<h1>Toy colours</h1>" in brief and "<h2>Your task</h2>" in brief and "<strong>red</strong>" in brief
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in brief and "<script>alert" not in page
    assert "javascript:" not in brief.split("[bad]")[0] and 'href="javascript' not in page
    # the same renderer as the teams' written answers (grader.report.markdown): links marked nofollow
    assert '<a href="https://example.org/docs" rel="nofollow noopener noreferrer">docs</a>' in brief
    assert '<a href="sq.png" rel="nofollow noopener noreferrer">image: a square</a>' in brief
    assert "<img" not in brief  # the CSP would block it


def test_the_roster_reissues_links_adds_and_removes_teams(event: Event) -> None:  # noqa: F811
    store = event.store
    set_members(store, "spring", {"alpha": [MemberRow("Ada Lovelace", "ada@example.org", "s123")]})
    assert members_of(store, "spring")
    alpha, alpha_csrf = join(event, "alpha")
    assert upload(alpha, alpha_csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
    coach, csrf = join(event, "coach")
    page = coach.get("/coach/roster").text
    row = page[page.index('<tr data-team="'):page.index("</tr>", page.index('<tr data-team="'))]
    assert "alpha" in row and "Ada Lovelace" in row and "s123" in row and "ada@example.org" in row
    assert '<td class="num" data-label="Submissions">1</td>' in row and "UTC" in row  # one submission, its time
    alpha_id = store.teams("spring")[0].id
    assert f'action="/coach/teams/{alpha_id}/link" class="inline" data-confirm="Give team alpha a new join' in page
    assert 'action="/coach/link" data-confirm=' in page
    # a new link for alpha: shown once, the old one refused, alpha's browser signed out
    shown = coach.post(f"/coach/teams/{alpha_id}/link", data={"csrf": csrf})
    assert shown.status_code == 200 and str(shown.url).endswith("/coach/roster")
    link = re.search(r'<code id="new-link">http://testserver/join/([\w-]+)</code>', shown.text)
    assert link and "1 session(s) signed in with it ended" in html.unescape(shown.text)
    assert 'id="new-link"' not in coach.get("/coach/roster").text  # once
    assert alpha.get("/").status_code == 403
    assert make_client(event.client.app).get(f"/join/{event.tokens['alpha']}").status_code == 403
    assert sign_in(make_client(event.client.app), f"/join/{link.group(1)}").status_code == 200
    # a team added, its link shown; removed (its link refused); brought back
    added = coach.post("/coach/teams", data={"csrf": csrf, "name": "gamma"})
    gamma = re.search(r'<code id="new-link">http://testserver/join/([\w-]+)</code>', added.text)
    assert gamma and "Team gamma is added." in added.text
    assert "team gamma" in sign_in(make_client(event.client.app), f"/join/{gamma.group(1)}").text
    again = coach.post("/coach/teams", data={"csrf": csrf, "name": "gamma"})
    assert "refused=1" in str(again.url) and "has a team &#39;gamma&#39; already" in again.text
    gamma_id = [t.id for t in store.teams("spring") if t.name == "gamma"][0]
    removed = coach.post(f"/coach/teams/{gamma_id}/remove", data={"csrf": csrf})
    assert "Team gamma is removed" in removed.text and "Removed teams" in removed.text
    assert make_client(event.client.app).get(f"/join/{gamma.group(1)}").status_code == 403
    back = coach.post("/coach/teams", data={"csrf": csrf, "name": "gamma"})
    assert "Team gamma is back" in back.text and "Removed teams" not in back.text


def test_a_new_coach_link_is_shown_and_signs_this_browser_out(event: Event) -> None:  # noqa: F811
    coach, csrf = join(event, "coach")
    page = coach.post("/coach/link", data={"csrf": csrf})
    link = re.search(r'<code id="new-link">http://testserver/coach/join/([\w-]+)</code>', page.text)
    assert page.status_code == 200 and link
    assert coach.get("/coach").status_code == 403
    assert make_client(event.client.app).get(f"/coach/join/{event.coach}").status_code == 403
    assert sign_in(make_client(event.client.app), f"/coach/join/{link.group(1)}").status_code == 200


def test_reveal_asks_first(event: Event) -> None:  # noqa: F811
    coach, _ = join(event, "coach")
    board = coach.get("/coach/leaderboard").text
    assert re.search(r'<form method="post" action="/coach/reveal" class="panel" data-confirm="Reveal the private '
                     r"ranking to every team\?", board)


# ---------------------------------------------------------------- in Chromium

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots-console")


@pytest.fixture
def served(tmp_path: Path, make_toy: Callable[..., Settings]) -> Iterator[tuple[str, Store, CreatedEvent]]:
    """The app under uvicorn on 127.0.0.1 without workers: ``(its address, the store, the event)``."""
    import uvicorn

    store = Store(tmp_path / "state")
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta"], cap_per_day=5,
                                 title="Spring hack day")
    app = create_app(store, make_toy(), workers=None, options=AppOptions(event="spring", poll_s=0.2))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.config.port}", store, created
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def _until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)


@pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("GRADER_REQUIRE_BROWSER") != "1",
                    reason=f"{CHROMIUM} is missing (set GRADER_REQUIRE_BROWSER=1 to fail instead)")
def test_in_chromium_the_coach_page_updates_itself_forms_ask_first_and_the_countdown_runs(
        served: tuple[str, Store, CreatedEvent]) -> None:
    from playwright.sync_api import Dialog, sync_playwright

    url, store, created = served
    up = store.store_upload(io.BytesIO(notebook_bytes()), filename="toy.ipynb", max_bytes=1 << 20)
    alpha = store.teams("spring")[0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            coach = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            errors: list[str] = []  # scripts blocked by the CSP, failed loads, script errors
            coach.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            coach.on("pageerror", lambda e: errors.append(str(e)))
            coach.goto(f"{url}/coach/join/{created.coach_token}")
            coach.click("#join")
            coach.wait_for_url(f"{url}/coach")
            assert "0 submissions" in " ".join(coach.inner_text("#counts").split())
            coach.evaluate("window.notReloaded = true")
            store.submit("spring", alpha.id, challenge="toy", upload=up)  # as a team's upload on any server
            _until(lambda: "1 queued" in " ".join(coach.inner_text("#counts").split()), f"the live queue {errors}")
            assert coach.evaluate("window.notReloaded") is True  # put in place, not reloaded
            assert coach.locator("#queue tr.sub").count() == 1

            said: list[str] = []

            def dismiss(dialog: Dialog) -> None:
                said.append(dialog.message)
                dialog.dismiss()

            coach.once("dialog", dismiss)
            coach.click("#queue button:text('Cancel')")  # the live part's form asks too
            time.sleep(0.5)
            assert said and store.submissions("spring")[0].state == "queued"
            coach.goto(f"{url}/coach/roster")
            coach.once("dialog", dismiss)
            coach.click("tr[data-team] button:text('New link')")
            time.sleep(0.5)
            assert said[-1].startswith("Give team alpha a new join link?")
            assert store.team_for_token("spring", created.team_tokens["alpha"]) is not None  # dismissed: kept
            coach.once("dialog", lambda d: d.accept())
            with coach.expect_navigation():
                coach.click("tr[data-team] button:text('New link')")
            assert coach.locator("#new-link").inner_text().startswith(f"{url}/join/")
            assert store.team_for_token("spring", created.team_tokens["alpha"]) is None
            SHOTS.mkdir(parents=True, exist_ok=True)
            coach.screenshot(path=str(SHOTS / "test-roster-new-link-390.png"), full_page=True)

            store.set_end("spring", datetime.now(UTC) + timedelta(hours=2, seconds=30))
            coach.goto(f"{url}/coach/settings")
            assert coach.locator("#countdown").count() == 1, (coach.url, coach.inner_text("main"), errors)
            assert re.fullmatch(r"2 h 00 min left", coach.inner_text("#countdown")), coach.inner_text("#countdown")
            store.set_end("spring", datetime.now(UTC) + timedelta(seconds=2.5))
            coach.reload()
            assert re.fullmatch(r"0 min 0[0-2] s left", coach.inner_text("#countdown"))
            _until(lambda: coach.inner_text("#countdown") == "ended", "the countdown's end")
            assert errors == [], errors
        finally:
            browser.close()
