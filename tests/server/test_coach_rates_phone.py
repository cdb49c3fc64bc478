"""Two of the coach's views: the pass rate per criterion counts written answers that await the
coach's grade apart, neither passed nor failed, on the event server's coach page (the coach's
saved grades applied) and in ``grader check``'s cohort ``index.html`` (:func:`grader.report.pass_rates`);
and the similar pairs page (``/coach/similar``) reads on a 390-pixel phone without a sideways
scroll, in Chromium (screenshots under ``/tmp/shots-coach-pages/``)."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.core.settings import Settings
from grader.integrity.pairs import notebook_code
from grader.report import pass_rates
from grader.report.render import write_cohort
from grader.score import SubmissionResult
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.options import AppOptions
from grader.server.work.worker import CODE_FOLDER
from tests.server.test_server_app import Event, finish, join, make_client, result
from tests.server.test_server_grading import QUESTIONS, written
from tests.support.net import free_port

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots-coach-pages")
REFERENCE = Path(__file__).resolve().parents[2] / "reference_solutions" / "gear-cnn" / "pytorch.ipynb"
LONG = "TheConvolutionalOverfittersOfRoom204-afternoon"  # a team name with no place to break it
# the boxes of a page's main part that scroll sideways inside themselves (wider content than box)
SCROLLING = """Array.from(document.querySelectorAll('main *'))
    .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
    .map(e => `${e.tagName}.${e.className} ${e.scrollWidth} > ${e.clientWidth}`)"""


def _rates_table(page: str, start: str) -> dict[str, list[str]]:
    """The pass-rate table after heading ``start``: criterion -> its figures' cells, tags left out."""
    section = page[page.index(start):]
    section = section[:section.index("</table>")]
    return {title: [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r'<td class="num">(.*?)</td>', rest)]
            for title, rest in re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", section)}


def test_pass_rates_count_an_answer_awaiting_the_coach_apart_in_grader_checks_index(tmp_path: Path) -> None:
    alpha = written("alpha", {"gap": "The error is 0.48.", "overfit": "After epoch three."})
    beta = written("beta", {"gap": "Photos vary more than digits."})  # overfit: no answer, failed
    rates = {r.id: r for r in pass_rates(nb for r in (alpha, beta) for nb in r.notebooks)}
    assert [(rates[c].passed, rates[c].awaiting, rates[c].failed, rates[c].total, rates[c].rate)
            for c in ("accuracy", "gap", "overfit")] == [(2, 0, 0, 2, 1.0), (0, 2, 0, 2, None), (0, 1, 1, 2, 0.0)]
    # a grade (apply_grades' status "graded") decides it: met from half the points
    graded = [c.model_copy(update={"status": "graded", "points": 1.0}) if c.id == "gap" else c
              for c in alpha.notebooks[0].criteria]
    decided = {r.id: r for r in pass_rates([alpha.notebooks[0].model_copy(update={"criteria": graded}),
                                            beta.notebooks[0]])}
    assert (decided["gap"].passed, decided["gap"].awaiting, decided["gap"].rate) == (1, 1, 1.0)

    index = write_cohort(tmp_path, [alpha, beta], ["alpha", "beta"])[0].read_text()
    assert '<th class="num">Awaiting the coach</th>' in index
    table = _rates_table(index, "<h3>Pass rate per criterion</h3>")
    assert table["gap"] == ["0 / 2", "2", "–"] and table["overfit"] == ["0 / 2", "1", "0.0%"]
    assert table["Accuracy on the hidden test set"] == ["2 / 2", "–", "100.0%"]
    # no written answer awaiting: the table as it was, without the column
    plain = write_cohort(tmp_path / "plain", [result("alpha", 18, 8)], ["alpha"])[0].read_text()
    assert "Awaiting the coach" not in plain
    assert _rates_table(plain, "<h3>Pass rate per criterion</h3>")["Accuracy on the hidden test set"] == [
        "1 / 1", "100.0%"]


@pytest.fixture
def lite(tmp_path: Path, make_toy: Callable[..., Settings]) -> Iterator[Event]:
    """An event of three teams on SQLite whose rubric has the two written questions of
    :data:`tests.server.test_server_grading.QUESTIONS`."""
    settings = make_toy()
    rubric = settings.project_dir / "rubrics" / "toy.toml"
    rubric.write_text(rubric.read_text() + QUESTIONS)
    store = Store(tmp_path / "state")
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta", LONG], title="Spring hack day")
    app = create_app(store, settings, workers=None, options=AppOptions(join_delay_s=0.0, poll_s=0.01))
    with make_client(app) as client:
        yield Event(store, client, created.team_tokens, created.coach_token, settings)
    store.close()


def _graded(ev: Event, team: str, graded: SubmissionResult, code: str = "") -> int:
    """``graded`` stored for ``team`` as a worker would, with ``code`` as its kept
    code for the similar pairs; the submission's id."""
    team_id = next(t.id for t in ev.store.teams("spring") if t.name == team)
    upload = ev.store.store_upload(io.BytesIO(f"{team} {time.monotonic_ns()}".encode()), filename="toy.ipynb",
                                   max_bytes=1 << 20)
    ev.store.submit("spring", team_id, challenge="toy", upload=upload)
    sub_id = finish(ev.store, graded)
    (ev.store.state_dir / CODE_FOLDER).mkdir(exist_ok=True)
    (ev.store.state_dir / CODE_FOLDER / f"{sub_id}.json").write_text(json.dumps({"toy.ipynb": code or team}))
    return sub_id


def test_the_coachs_pass_rates_show_answers_awaiting_then_the_grades(lite: Event) -> None:
    alpha = _graded(lite, "alpha", written("alpha", {"gap": "The error is 0.48.", "overfit": "After epoch three."}))
    beta = _graded(lite, "beta", written("beta", {"gap": "Photos vary more than digits."}))
    coach, csrf = join(lite, "coach")
    page = coach.get("/coach").text
    assert '<th class="num">Awaiting you</th>' in page
    table = _rates_table(page, "<h2>Pass rates per criterion</h2>")
    # passed, awaiting you, teams, rate (over the teams whose criterion is decided)
    assert table["gap"] == ["0", "2", "2", "–"] and table["overfit"] == ["0", "1", "2", "0.0%"]
    assert table["Accuracy on the hidden test set"] == ["2", "–", "2", "100.0%"]
    for sub, points in ((alpha, "2"), (beta, "0")):
        saved = coach.post(f"/coach/grading/toy/gap/{sub}", data={"csrf": csrf, "points": points},
                           headers={"Accept": "application/json"})
        assert saved.status_code == 200, saved.text
    table = _rates_table(coach.get("/coach").text, "<h2>Pass rates per criterion</h2>")
    assert table["gap"] == ["1", "–", "2", "50.0%"] and table["overfit"] == ["0", "1", "2", "0.0%"]
    assert coach.get("/coach/live").text.count("Awaiting you") == 2  # the live part: the column and its note


@pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("GRADER_REQUIRE_BROWSER") != "1",
                    reason=f"{CHROMIUM} is missing (set GRADER_REQUIRE_BROWSER=1 to fail instead)")
def test_the_similar_pairs_page_reads_on_a_phone_without_a_sideways_scroll(lite: Event) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    code = notebook_code(REFERENCE)
    for team in ("alpha", LONG):
        answer = ("Our network stops at about 52 percent test error on CIFAR-10 and under 3 percent on MNIST, because "
                  "a photo of a cat or a ship varies in pose, lighting, background and colour far more than a digit.")
        _graded(lite, team, written(team, {"gap": answer}), code)
    server = uvicorn.Server(uvicorn.Config(lite.client.app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.config.port}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                for width in (1400, 390):
                    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
                    page.goto(f"{url}/coach/join/{lite.coach}")
                    page.click("#join")
                    page.wait_for_url(f"{url}/coach")
                    for path, name in (("/coach/similar", "similar"), ("/coach", "coach")):
                        page.goto(url + path)
                        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
                        wide = page.evaluate("document.documentElement.scrollWidth")
                        assert wide <= width, f"{path} at {width} px scrolls sideways: {wide} px wide"
                        scrolling = page.evaluate(SCROLLING)
                        assert scrolling == [], f"{path} at {width} px: boxes that scroll sideways {scrolling}"
                    if width == 390:  # the coach's page was the last: its pass rates with the answers awaiting
                        assert "Awaiting you" in page.inner_text("main")
                        page.goto(f"{url}/coach/similar")  # the pair as the coach reads it there
                        shown = " ".join(page.inner_text("#similar-pairs").split())
                        assert "of its code matches" in shown and "matching characters" in shown, shown
                        heads = page.locator("#similar-pairs table tr:first-child th:visible").all_inner_texts()
                        assert sorted(h.replace("\n", "") for h in heads) == sorted(["alpha", LONG]), heads
                    page.close()
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
