"""The practice check on the web (issue 28): graded on the public practice split (``grader check
--practice``), never counted by the daily cap, its own smaller allowance, labelled practice where it
is listed, never on a board or in an export."""

from __future__ import annotations

import csv
import html
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import nbformat
import pytest

from grader.core.settings import Settings
from grader.data.practice import write_practice_splits
from grader.pipeline.grade import GradeOptions
from grader.report.render import render_scorecard
from grader.sandbox.session import resolve_sandbox
from grader.score.scorecard import SubmissionResult
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.options import AppOptions
from grader.server.work.worker import WorkerPool
from tests.server.test_server_app import make_client, result
from tests.server.test_server_precheck import notebook
from tests.support.toy import GOOD_TOY_CELLS, build_toy, new_image_png, toy_notebook

if TYPE_CHECKING:
    from starlette.testclient import TestClient


def with_practice_split(settings: Settings) -> None:
    """The toy challenge with a practice split (``grader data make-split``'s file: one image a class)."""
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace('hidden_split = "splits/toy-hidden.txt"\n',
                                             'hidden_split = "splits/toy-hidden.txt"\n'
                                             'practice_split = "splits/toy-practice.txt"\n'))
    [(_, ids)] = write_practice_splits(settings, ["toy"])
    assert ids == ["toy"]


@dataclass
class Day:
    store: Store
    settings: Settings
    app: object
    tokens: dict[str, str]
    coach: str


def sign_in(day: Day, link: str) -> tuple[TestClient, str]:
    client = make_client(day.app)
    fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', client.get(link).text))
    page = client.post(link, data=fields, follow_redirects=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return client, found.group(1)


def make_day(root: Path, *, practice_split: bool = True) -> Day:
    settings = build_toy(root / "project")
    if practice_split:
        with_practice_split(settings)
    store = Store(root / "state")
    created = store.create_event("hack", challenges=["toy"], teams=["alpha", "beta"], cap_per_day=1)
    store.set_settings("hack", {"practice_per_day": 2})
    app = create_app(store, settings, workers=None, options=AppOptions(join_delay_s=0.01))
    return Day(store, settings, app, created.team_tokens, created.coach_token)


@pytest.fixture
def day(tmp_path: Path) -> Iterator[Day]:
    found = make_day(tmp_path)
    yield found
    found.store.close()


def send(client: TestClient, csrf: str, files: Sequence[tuple[str, bytes]], *, practice: bool) -> httpx.Response:
    data = {"challenge": "toy", "csrf": csrf} | ({"practice": "1"} if practice else {})
    answer: httpx.Response = client.post("/submit", data=data, files=[("files", f) for f in files],
                                         follow_redirects=False)
    return answer


def test_a_practice_check_uses_no_submission_and_has_its_own_allowance(day: Day) -> None:
    client, csrf = sign_in(day, f"/join/{day.tokens['alpha']}")
    (alpha, _) = day.store.teams("hack")
    home = client.get("/").text
    assert '<button type="submit" name="practice" value="1"' in home and "Practice check (no submission used)" in home
    assert "2 practice checks left today" in home and "1 submission left today" in home
    page = send(client, csrf, [("toy.ipynb", notebook(["print(1)"]))], practice=True)
    assert page.status_code == 303
    home = client.get("/").text
    assert "Practice check (toy.ipynb) is queued" in home and "uses no submission" in home
    assert "1 practice check left today" in home and "1 submission left today" in home
    assert '<span class="badge practice">practice</span>' in home  # labelled in the team's list
    (sub,) = day.store.submissions("hack")
    assert sub.practice is True
    assert day.store.submissions_left_today("hack", alpha.id) == 1  # not counted by the cap
    assert send(client, csrf, [("toy.ipynb", notebook(["print(2)"]))], practice=True).status_code == 303
    used = send(client, csrf, [("toy.ipynb", notebook(["print(3)"]))], practice=True)
    assert used.status_code == 429
    assert "alpha has used its 2 practice checks for today (UTC)" in html.unescape(used.text)
    assert "Practice check (no submission used)</button>" not in client.get("/").text  # none left: no button
    # the cap is whole: one submission, then the cap
    assert send(client, csrf, [("toy.ipynb", notebook(["print(4)"]))], practice=False).status_code == 303
    capped = send(client, csrf, [("toy.ipynb", notebook(["print(5)"]))], practice=False)
    assert capped.status_code == 429 and "alpha has used its 1 submissions for today" in capped.text
    assert [s.practice for s in day.store.submissions("hack")] == [False, True, True]
    assert day.store.practice_left_today("hack", alpha.id) == 0
    # a practice check is refused before its allowance is counted, like any upload
    bad = send(client, csrf, [("toy.ipynb", notebook(["print 'x'"]))], practice=True)
    assert bad.status_code == 400 and "cell 2, line 1" in bad.text
    # the coach's re-grade of a practice check stays one, counted by neither
    regraded = day.store.regrade(day.store.submissions("hack")[-1].id)
    assert regraded.practice is True and day.store.practice_left_today("hack", alpha.id) == 0
    assert day.store.submissions_left_today("hack", alpha.id) == 0


def test_a_challenge_without_a_practice_split_has_no_practice_check(tmp_path: Path) -> None:
    day = make_day(tmp_path, practice_split=False)
    client, csrf = sign_in(day, f"/join/{day.tokens['alpha']}")
    assert 'name="practice"' not in client.get("/").text
    page = send(client, csrf, [("toy.ipynb", notebook(["print(1)"]))], practice=True)
    assert page.status_code == 400 and "toy records no practice split: it has no practice check" in page.text
    assert day.store.submissions("hack") == []
    day.store.close()


def finish_all(store: Store) -> dict[int, bool]:
    """Grade every queued submission by hand, as a worker would (a practice one with a practice
    result); ``{submission id: practice}``."""
    done = {}
    while (job := store.claim("test-worker", lease_s=60)) is not None:
        graded = result(job.team_name, 18, 18).model_copy(update={"practice": job.practice})
        assert store.finish(job.id, "test-worker", result_json=graded.model_dump_json(),
                            scorecard_html=render_scorecard(graded), verdict=graded.verdict, score=graded.score,
                            max_score=graded.max_score)
        done[job.id] = job.practice
    return done


def test_practice_results_stay_off_the_boards_and_exports(day: Day) -> None:
    alpha, alpha_csrf = sign_in(day, f"/join/{day.tokens['alpha']}")
    beta, beta_csrf = sign_in(day, f"/join/{day.tokens['beta']}")
    assert send(alpha, alpha_csrf, [("toy.ipynb", notebook(["print(1)"]))], practice=True).status_code == 303
    assert send(beta, beta_csrf, [("toy.ipynb", notebook(["print(1)"]))], practice=False).status_code == 303
    assert sorted(finish_all(day.store).values()) == [False, True]
    board = alpha.get("/leaderboard").text
    assert "beta" in board and "alpha" not in board.split("<main", 1)[-1]  # alpha's only result is practice
    coach, coach_csrf = sign_in(day, f"/coach/join/{day.coach}")
    gradebook = list(csv.DictReader(coach.get("/coach/export/gradebook.csv").text.splitlines()))
    assert {row["submission"] for row in gradebook} == {"beta"}
    assert '"alpha"' not in coach.get("/coach/export/results.json").text
    assert '<span class="badge practice">practice</span>' in coach.get("/coach").text  # the coach's list
    assert coach.post("/coach/reveal", data={"csrf": coach_csrf, "revealed": "1"}).status_code in (200, 303)
    private = coach.get("/coach/leaderboard").text
    assert "beta" in private and ">alpha<" not in private


@pytest.mark.kernel
def test_the_practice_check_is_graded_on_the_practice_split(day: Day) -> None:
    """A worker grades it as ``grader check --practice`` does: on the 3 images of the toy's practice
    split, the result and the team's scorecard labelled practice. Its run log holds what the
    cells printed (a progress bar's last state), nothing the probe's calls printed."""
    client, csrf = sign_in(day, f"/join/{day.tokens['alpha']}")
    says = GOOD_TOY_CELLS[1].replace("    out = []\n", "    print('PREDICT-CALLED')\n    out = []\n")
    prints = "print('epoch 1 of 2: loss 0.6')\nprint('bar 50%\\rbar 100% done')"
    cells = [GOOD_TOY_CELLS[0], says, *GOOD_TOY_CELLS[2:], prints]
    good = str(nbformat.writes(toy_notebook(cells))).encode()
    images = [(f"new{i}.png", new_image_png(4 * i)) for i in range(5)]
    assert send(client, csrf, [("toy.ipynb", good), *images], practice=True).status_code == 303
    (sub,) = day.store.submissions("hack")
    pool = WorkerPool(day.store, day.settings, GradeOptions(profile="ci", sandbox=resolve_sandbox("none")),
                      workers=1, lease_s=30, poll_s=0.05)
    pool.start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (day.store.submission(sub.id) or sub).state not in (
                "done", "failed", "cancelled"):
            time.sleep(0.2)
    finally:
        pool.stop()
    done = day.store.submission(sub.id)
    assert done is not None and done.state == "done", done
    stored = day.store.result(sub.id)
    assert stored is not None
    graded = SubmissionResult.model_validate_json(stored.result_json)
    assert graded.practice is True
    [model] = [m for nb in graded.notebooks for m in nb.models if m.role == "predict"]
    assert model.n == 3 and model.accuracy == 1.0  # the practice split: one image a class, not the hidden six
    card = html.unescape(client.get(f"/submissions/{sub.id}/scorecard").text)
    assert "not on the hidden test set" in card
    assert "alpha" not in client.get("/leaderboard").text.split("<main", 1)[-1]
    assert (day.store.submissions_left_today("hack", day.store.teams("hack")[0].id)) == 1
    log = client.get(f"/submissions/{sub.id}/log").text
    assert "    | epoch 1 of 2: loss 0.6" in log and "    | bar 100% done" in log and "50%" not in log, log
    assert "PREDICT-CALLED" not in log and "not kept" not in log


def test_the_pages_count_of_what_is_left_today_agrees_with_the_stores(day: Day) -> None:
    from datetime import timedelta

    from grader.server.store import left_today

    client, csrf = sign_in(day, f"/join/{day.tokens['alpha']}")
    (alpha, _) = day.store.teams("hack")

    def agree() -> tuple[int | None, int | None]:
        own = day.store.submissions("hack", team_id=alpha.id)
        event = day.store.event("hack")
        counted = (left_today(own, event.cap_per_day, practice=False),
                   left_today(own, event.practice_per_day, practice=True))
        assert counted == (day.store.submissions_left_today("hack", alpha.id),
                           day.store.practice_left_today("hack", alpha.id))
        return counted

    assert agree() == (1, 2)
    assert send(client, csrf, [("toy.ipynb", notebook(["print(1)"]))], practice=True).status_code == 303
    assert agree() == (1, 1)
    assert send(client, csrf, [("toy.ipynb", notebook(["print(2)"]))], practice=False).status_code == 303
    assert agree() == (0, 1)
    day.store.regrade(day.store.submissions("hack")[0].id)  # the coach's: counted by neither
    assert agree() == (0, 1)
    assert day.store.cancel(day.store.submissions("hack", team_id=alpha.id)[-1].id)  # the oldest, queued: cancelled
    assert agree() == (0, 2)
    tomorrow = day.store.submissions("hack", team_id=alpha.id)
    event = day.store.event("hack")
    later = max(s.created for s in tomorrow) + timedelta(days=1)
    assert left_today(tomorrow, event.cap_per_day, practice=False, now=later) == 1  # a new day, a new count
    assert left_today(tomorrow, None, practice=False) is None  # no cap
