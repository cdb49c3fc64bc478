"""The event server in a real browser: uvicorn on 127.0.0.1, real workers grading the toy challenge.

A team joins through its link, uploads a notebook with its new images, watches its progress
(the page updates itself over Server-Sent Events, never reloaded by the test) and opens its
scorecard; a second team is refused that scorecard; the coach reveals the private board, which
the team then sees. Every page is saved under ``/tmp/server-shots/``.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright; without it the test is
skipped, unless ``GRADER_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.core.settings import Settings
from grader.pipeline.grade import GradeOptions
from grader.sandbox.session import resolve_sandbox
from grader.server.store.rows import CreatedEvent
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.pages import AppOptions
from grader.server.work.worker import WorkerPool
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
    (settings.project_dir / "challenges" / "toy" / "README.md").write_text(
        "# Toy colours\n\nTell red, green and blue squares apart.\n\n- define `CLASS_NAMES` and `predict`\n")
    store = Store(tmp_path / "state")
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta"], cap_per_day=5,
                                 title="Spring hack day")
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
