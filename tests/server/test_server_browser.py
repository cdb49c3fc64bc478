"""The event server in a real browser: uvicorn on 127.0.0.1, real workers grading the toy challenge.

A team joins through its link, uploads a notebook with its new images, watches its progress
(the page updates itself over Server-Sent Events, never reloaded by the test) and opens its
scorecard; a second team is refused that scorecard; the coach reveals the private board, which
the team then sees. And the event day as a whole (:func:`test_the_event_day`): refusals, the
coach's live page, practice checks, the final choice, settings and announcements, phones.
Every page is saved under ``/tmp/server-shots/``.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright; without it the test is
skipped, unless ``GRADER_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from grader.core.settings import Settings
from grader.pipeline.grade import GradeOptions
from grader.sandbox.session import resolve_sandbox
from grader.server.store.rows import CreatedEvent
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.options import AppOptions
from grader.server.work.worker import WorkerPool
from tests.server.test_server_practice import with_practice_split
from tests.support.net import free_port
from tests.support.toy import GOOD_TOY_CELLS, write_submission

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/server-shots")

pytestmark = pytest.mark.kernel

if not CHROMIUM.exists() and os.environ.get("GRADER_REQUIRE_BROWSER") != "1":
    pytest.skip(f"{CHROMIUM} is missing (set GRADER_REQUIRE_BROWSER=1 to fail instead)", allow_module_level=True)


@dataclass
class Server:
    url: str
    created: CreatedEvent
    store: Store




@pytest.fixture
def server(tmp_path: Path, make_toy: Callable[..., Settings]) -> Iterator[Server]:
    import uvicorn

    settings = make_toy()
    with_practice_split(settings)
    (settings.project_dir / "challenges" / "toy" / "README.md").write_text(
        "# Toy colours\n\nTell red, green and blue squares apart.\n\n- define `CLASS_NAMES` and `predict`\n")
    store = Store(tmp_path / "state")
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta"], cap_per_day=5,
                                 title="Spring hack day", ends_at=datetime.now(UTC) + timedelta(hours=3))
    pool = WorkerPool(store, settings, GradeOptions(profile="ci", sandbox=resolve_sandbox("none")), workers=1,
                      poll_s=0.2)
    app = create_app(store, settings, workers=pool, options=AppOptions(event="spring", poll_s=0.3))
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    pool.start()
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    try:
        yield Server(url=f"http://127.0.0.1:{port}", created=created, store=store)
    finally:
        uv.should_exit = True
        thread.join(10)
        pool.stop(timeout_s=20)
        store.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _no_sideways_scroll(page: Any) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= page.viewport_size["width"], f"{page.url} scrolls sideways: {wide} px wide"


def test_the_event_day(server: Server, tmp_path: Path) -> None:
    """The day as a coach and two teams live it, in Chromium: a refused upload lands on a page
    that reloads without sending the form again and uses no slot; a submission graded while the
    coach's page updates itself; a practice check that uses no slot; the team's final choice;
    the cap changed and an announcement posted by the coach, seen by the teams; the team page
    and a scorecard on a 390-pixel phone without sideways scroll; the roster; the Reveal, after
    a confirmation."""
    from playwright.sync_api import sync_playwright

    subs = tmp_path / "subs"
    good = write_submission(subs, "good", GOOD_TOY_CELLS, new_images=2)
    weak = write_submission(subs, "weak", [c for c in GOOD_TOY_CELLS if "HISTORY" not in c], new_images=2)
    broken = write_submission(subs, "broken", ["def predict(images:\n    return []"], new_images=2)

    def files(folder: Path) -> list[str]:
        return [str(folder / "toy.ipynb"), *sorted(str(p) for p in (folder / "new_images").iterdir())]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            errors: list[str] = []  # scripts blocked by the CSP, failed loads, script errors

            def watch(page: Any) -> Any:
                page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
                return page

            def join(page: Any, link: str, home: str) -> None:
                page.goto(f"{server.url}{link}")
                page.click("#join")  # the join page's button signs in
                page.wait_for_url(f"{server.url}{home}")

            coach = watch(browser.new_context(viewport={"width": 1400, "height": 900}).new_page())
            join(coach, f"/coach/join/{server.created.coach_token}", "/coach")
            coach.evaluate("window.loadedOnce = true")  # gone if the page were ever reloaded

            alpha = watch(browser.new_context(viewport={"width": 1400, "height": 900}).new_page())
            posts: list[str] = []
            alpha.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
            join(alpha, f"/join/{server.created.team_tokens['alpha']}", "/")

            # a syntax error: refused before a slot is used; the answer is a page a reload only GETs
            alpha.set_input_files("#files", files(broken))
            alpha.click("button:text('Submit for grading')")
            alpha.wait_for_selector("#message")
            assert alpha.url == f"{server.url}/"
            message = alpha.inner_text("#message")
            assert "cell" in message and "line" in message, message
            _shot(alpha, "day-01-refused")
            sent = len(posts)
            alpha.reload()
            assert len(posts) == sent and alpha.query_selector("#message") is None
            assert server.store.submissions("spring") == [] and "5 submissions left today" in alpha.inner_text("body")

            # a submission, graded while the coach's page follows it without a reload
            alpha.set_input_files("#files", files(good))
            alpha.click("button:text('Submit for grading')")
            # (a notebook sent with its images is stored as toy.zip; the flash "Submission 1 (toy.zip) is
            # queued" may be gone already: the toy grades in seconds and the page follows it)
            alpha.wait_for_selector("#history a:text('Scorecard')", timeout=180_000)
            coach.wait_for_selector("text=pass 11/11", timeout=30_000)
            assert coach.evaluate("window.loadedOnce") is True, "the coach's page was reloaded"
            _shot(coach, "day-02-coach-live")

            # a practice check: graded on the practice split, labelled, no slot used
            alpha.set_input_files("#files", files(good))
            alpha.click("button:text('Practice check')")
            alpha.wait_for_selector("#history tr.sub:has(.badge.practice) a:text('Scorecard')", timeout=180_000)
            assert "4 submissions left today" in alpha.inner_text("body")
            # a weaker second submission, then chosen as the team's final one
            alpha.set_input_files("#files", files(weak))
            alpha.click("button:text('Submit for grading')")
            row = '#history tr.sub:has(td.which:text-is("2"))'
            alpha.wait_for_selector(f"{row} a:text('Scorecard')", timeout=180_000)
            alpha.click(f"{row} button:text('Make final')")
            alpha.wait_for_selector("text=Submission 2 (toy.zip) is your final submission for toy.")
            assert "your choice" in alpha.inner_text(row)
            _shot(alpha, "day-03-team-history")

            # the coach raises the cap and posts an announcement; the teams see both
            coach.goto(f"{server.url}/coach/settings")
            coach.fill("input[name=cap_per_day]", "10")
            coach.click("button:text('Save settings')")
            coach.fill("textarea[name=text]", "Lunch at 12:30 <b>in room B2</b>")
            coach.click("button:text('Post to every team')")
            coach.wait_for_selector("text=Lunch at 12:30")
            _shot(coach, "day-04-coach-settings")
            alpha.goto(f"{server.url}/")
            assert "8 submissions left today" in alpha.inner_text("body")
            assert "Lunch at 12:30 <b>in room B2</b>" in alpha.inner_text("body")  # as text, never markup
            coach.goto(f"{server.url}/coach/roster")
            roster = coach.inner_text("main")
            assert "alpha" in roster and "beta" in roster
            _shot(coach, "day-05-coach-roster")

            # a second team, on a phone: its page and its rights
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            beta = watch(phone.new_page())
            join(beta, f"/join/{server.created.team_tokens['beta']}", "/")
            assert "Lunch at 12:30" in beta.inner_text("body")
            _no_sideways_scroll(beta)
            _shot(beta, "day-06-beta-phone")
            (first,) = [s for s in server.store.submissions("spring") if s.team_name == "alpha" and not s.practice
                        and s.verdict == "pass"]
            response = beta.goto(f"{server.url}/submissions/{first.id}/scorecard")
            assert response is not None and response.status == 404
            errors[:] = [e for e in errors if not e.startswith(response.url)]  # that 404 was the point
            alpha_phone = watch(browser.new_context(viewport={"width": 390, "height": 844}).new_page())
            join(alpha_phone, f"/join/{server.created.team_tokens['alpha']}", "/")
            _no_sideways_scroll(alpha_phone)
            assert alpha_phone.is_visible("#history tr.sub a:text('Scorecard')")
            alpha_phone.click("#history tr.sub:has(td.which:text-is('1')) a:text('Scorecard')")
            alpha_phone.wait_for_url(f"{server.url}/submissions/{first.id}/scorecard")
            _no_sideways_scroll(alpha_phone)
            assert "Submission 1 (toy.zip)" in alpha_phone.inner_text("h1")
            _shot(alpha_phone, "day-07-scorecard-phone")
            alpha_phone.click("text=Your team's page")
            alpha_phone.wait_for_url(f"{server.url}/")

            # the Reveal asks first; once accepted the teams see the private board
            coach.goto(f"{server.url}/coach/leaderboard")
            asked: list[str] = []

            def accept(dialog: Any) -> None:
                asked.append(dialog.message)
                dialog.accept()

            coach.once("dialog", accept)
            coach.click("#reveal")
            coach.wait_for_selector("text=shown to the teams")
            assert asked and "Reveal" in asked[0] and server.store.event("spring").revealed
            alpha.goto(f"{server.url}/leaderboard")
            assert "alpha" in alpha.inner_text("#private")
            _shot(alpha, "day-08-team-leaderboard-revealed")
            assert errors == [], errors
        finally:
            browser.close()


def test_team_uploads_watches_and_reads_its_scorecard_coach_reveals(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS, new_images=2)
    files = [str(folder / "toy.ipynb"), *sorted(str(p) for p in (folder / "new_images").iterdir())]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            alpha = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            alpha.goto(f"{server.url}/join/not-a-token")
            assert "This join link is not valid" in alpha.content()
            _shot(alpha, "00-bad-join")
            errors: list[str] = []  # from here on: scripts blocked by the CSP, failed loads, script errors
            alpha.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            alpha.on("pageerror", lambda e: errors.append(str(e)))

            alpha.goto(f"{server.url}/join/{server.created.team_tokens['alpha']}")
            alpha.click("#join")  # the join page's button signs in
            alpha.wait_for_url(f"{server.url}/")
            assert alpha.url == f"{server.url}/"
            assert "5 submissions left today" in alpha.inner_text("body")
            _shot(alpha, "01-team-home")

            alpha.set_input_files("#files", files)
            alpha.click("button:text('Submit for grading')")
            alpha.wait_for_selector("text=is queued.")
            _shot(alpha, "02-team-queued")
            alpha.wait_for_selector('tr.sub [data-field="state"]:text-matches("running|done")', timeout=120_000)
            _shot(alpha, "03-team-running")
            link = alpha.wait_for_selector("tr.sub a:text('Scorecard')", timeout=180_000)
            assert link is not None
            assert "4 submissions left today" in alpha.inner_text("body")
            row = alpha.inner_text("tr.sub")
            assert "done" in row and "pass" in row, row
            _shot(alpha, "04-team-done")
            (sub,) = server.store.submissions("spring")
            scorecard_url = f"{server.url}/submissions/{sub.id}/scorecard"
            link.click()
            alpha.wait_for_url(scorecard_url)
            text = alpha.inner_text("body")
            assert "Confusion matrix" not in text and "Recall (per-class accuracy)" not in text
            _shot(alpha, "05-team-scorecard")
            assert errors == [], errors

            beta = browser.new_context().new_page()
            beta.goto(f"{server.url}/join/{server.created.team_tokens['beta']}")
            beta.click("#join")  # the join page's button signs in
            beta.wait_for_url(f"{server.url}/")
            response = beta.goto(scorecard_url)
            assert response is not None and response.status == 404
            assert "No such submission." in beta.inner_text("body")
            _shot(beta, "06-other-team-404")

            alpha.goto(f"{server.url}/leaderboard")
            assert "shown when the coach reveals it" in alpha.inner_text("body")
            assert "alpha" in alpha.inner_text("#public")
            _shot(alpha, "07-team-leaderboard")

            coach = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            coach.goto(f"{server.url}/coach/join/{server.created.coach_token}")
            coach.click("#join")  # the join page's button signs in
            coach.wait_for_url(f"{server.url}/coach")
            assert coach.url == f"{server.url}/coach"
            assert "Pass rates per criterion" in coach.inner_text("body")
            _shot(coach, "08-coach")
            coach.goto(f"{server.url}/coach/submissions/{sub.id}/scorecard")
            assert "Confusion matrix" in coach.inner_text("body")
            _shot(coach, "09-coach-scorecard")
            coach.goto(f"{server.url}/coach/leaderboard")
            coach.once("dialog", lambda dialog: dialog.accept())  # Reveal asks first (static/console.js)
            coach.click("#reveal")
            coach.wait_for_selector("text=shown to the teams")
            _shot(coach, "10-coach-leaderboard-revealed")
            assert server.store.event("spring").revealed

            alpha.goto(f"{server.url}/leaderboard")
            assert "alpha" in alpha.inner_text("#private")
            _shot(alpha, "11-team-leaderboard-revealed")
        finally:
            browser.close()
