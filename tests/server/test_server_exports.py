"""The coach's exports over a real app and store: the gradebooks per student for Canvas and Moodle
from the teams' members, Gradescope's results as a zip of one ``results.json`` per submission (the
old list kept), JUnit with unique suite names; a team is refused them all."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from grader.core.settings import Settings
from grader.server.store import MemberRow, Store, remove_team, set_members
from grader.server.web.app import create_app
from grader.server.web.options import AppOptions
from tests.server.test_server_app import Event, finish, join, make_client, notebook_bytes, result, upload


@pytest.fixture
def spring(tmp_path: Path, make_toy: Callable[..., Settings], database_url: str | None) -> Iterator[Event]:
    """Event ``spring`` (challenge toy; teams alpha, beta, gamma) on SQLite and on PostgreSQL."""
    settings = make_toy()
    store = Store(tmp_path / "state", database_url)
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta", "gamma"], title="Spring")
    app = create_app(store, settings, workers=None,
                     options=AppOptions(max_upload_bytes=50_000, join_delay_s=0.2, poll_s=0.01))
    with make_client(app) as client:
        yield Event(store, client, created.team_tokens, created.coach_token, settings)
    store.close()


def graded(ev: Event) -> dict[str, tuple[int, str]]:
    """alpha and beta each send one notebook, graded; team -> (submission number, upload time): the
    team's own number, 1 for each (beta's is not the server's id, 2)."""
    for who, k in (("alpha", 18), ("beta", 10)):
        client, csrf = join(ev, who)
        assert upload(client, csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
        finish(ev.store, result(who, k, k))
    return {s.team_name: (1, s.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for s in ev.store.submissions("spring")}


def test_gradebooks_per_student_follow_canvas_and_moodle(spring: Event) -> None:
    coach, _ = join(spring, "coach")
    missing = coach.get("/coach/export/gradebook-canvas.csv")
    assert missing.status_code == 404 and "grader event members EVENT --teams teams.csv" in missing.text
    sent = graded(spring)
    set_members(spring.store, "spring", {
        "alpha": [MemberRow("Ann Lee", "ann@uni.example", "s100"), MemberRow("Bo", "", "s101")],
        "beta": [MemberRow("Cy", "cy@uni.example", "")],
        "gamma": [MemberRow("Di", "di@uni.example", "s300")]})
    canvas = coach.get("/coach/export/gradebook-canvas.csv")
    assert canvas.status_code == 200 and canvas.headers["content-type"].startswith("text/csv")
    assert canvas.headers["content-disposition"] == 'attachment; filename="spring-gradebook-canvas.csv"'
    assert list(csv.reader(io.StringIO(canvas.text))) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "toy"],
        ["    Points Possible", "", "", "", "", "3"],
        ["Ann Lee", "", "s100", "ann@uni.example", "", "3"], ["Bo", "", "s101", "", "", "3"],
        ["Cy", "", "", "cy@uni.example", "", "3"], ["Di", "", "s300", "di@uni.example", "", ""]]
    moodle = list(csv.reader(io.StringIO(coach.get("/coach/export/gradebook-moodle.csv").text)))
    assert moodle[0] == ["Full name", "ID number", "Email address", "toy", "toy submission", "toy submitted"]
    assert moodle[1] == ["Ann Lee", "s100", "ann@uni.example", "3", str(sent["alpha"][0]), sent["alpha"][1]]
    assert moodle[3] == ["Cy", "", "cy@uni.example", "3", str(sent["beta"][0]), sent["beta"][1]]
    assert coach.get("/coach/export/gradebook-blackboard.csv").status_code == 404
    per_team = list(csv.DictReader(io.StringIO(coach.get("/coach/export/gradebook.csv").text)))
    assert [(r["submission"], r["submission_number"], r["submission_time"]) for r in per_team] == [
        ("alpha", str(sent["alpha"][0]), sent["alpha"][1]), ("beta", str(sent["beta"][0]), sent["beta"][1])]
    # a removed team's students leave the gradebooks with it
    remove_team(spring.store, "spring", "beta")
    assert "Cy" not in coach.get("/coach/export/gradebook-canvas.csv").text


def test_gradescope_zip_junit_and_the_old_list(spring: Event) -> None:
    sent = graded(spring)
    coach, _ = join(spring, "coach")
    answer = coach.get("/coach/export/gradescope.zip")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        assert zf.namelist() == ["alpha/toy/results.json", "beta/toy/results.json"]
        alpha = json.loads(zf.read("alpha/toy/results.json"))
    assert alpha["score"] == 3 and alpha["tests"][0]["status"] == "passed"
    assert alpha["extra_data"] == {"submission": "alpha", "submitted": sent["alpha"][1],
                                   "submission_number": sent["alpha"][0]}
    old = coach.get("/coach/export/results.json").json()
    assert [(g["team"], g["challenge"], g["score"]) for g in old] == [("alpha", "toy", 3), ("beta", "toy", 3)]
    suites = ET.fromstring(coach.get("/coach/export/junit.xml").text).findall("testsuite")
    assert [(s.get("name"), s.get("skipped")) for s in suites] == [("alpha", "0"), ("beta", "0")]


def test_a_team_is_refused_the_exports(spring: Event) -> None:
    alpha, _ = join(spring, "alpha")
    for path in ("gradebook-canvas.csv", "gradebook-moodle.csv", "gradescope.zip", "results.json"):
        assert alpha.get(f"/coach/export/{path}").status_code == 403
        assert make_client(spring.client.app).get(f"/coach/export/{path}").status_code == 403
