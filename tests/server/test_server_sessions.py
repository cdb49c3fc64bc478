"""Sessions a coach controls: joining by a page with a button (no login CSRF, never switched
silently), sessions kept by the server (sign-out ends a copied cookie), ``grader event``
rotate-link / add-team / remove-team, an old state folder upgraded, join tokens kept out of the
logs of a real ``grader serve``, and the options for an HTTPS proxy."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from grader.cli.main import main
from grader.core.settings import Settings
from grader.server.store.sessions import Sessions
from grader.server.store.store import Store
from grader.server.web.app import create_app
from grader.server.web.options import AppOptions
from tests.support.net import free_port, stop_group, wait_listening

if TYPE_CHECKING:
    from starlette.testclient import TestClient

FIELDS = re.compile(r'name="(join_csrf|current)" value="([^"]*)"')


def client_of(app: Any, base_url: str = "http://testserver") -> TestClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app, base_url=base_url)


@dataclass
class Event:
    store: Store
    app: Any
    tokens: dict[str, str]
    coach: str
    state: Path
    settings: Settings


def make_event(tmp_path: Path, settings: Settings, database_url: str | None = None, **options: Any) -> Event:
    store = Store(tmp_path / "state", database_url)
    created = store.create_event("spring", challenges=["toy"], teams=["alpha", "beta"], title="Spring hack day")
    app = create_app(store, settings, workers=None, options=AppOptions(join_delay_s=0.05, poll_s=0.01, **options))
    return Event(store, app, created.team_tokens, created.coach_token, tmp_path / "state", settings)


@pytest.fixture
def event(tmp_path: Path, make_toy: Callable[..., Settings], database_url: str | None) -> Iterator[Event]:
    """An event on SQLite and on PostgreSQL (tests/support/pg.py)."""
    ev = make_event(tmp_path, make_toy(), database_url)
    yield ev
    ev.store.close()


@pytest.fixture
def lite(tmp_path: Path, make_toy: Callable[..., Settings]) -> Iterator[Event]:
    """An event on SQLite only."""
    ev = make_event(tmp_path, make_toy())
    yield ev
    ev.store.close()


def fields(page: httpx.Response) -> dict[str, str]:
    return dict(FIELDS.findall(page.text))


def sign_in(client: TestClient, link: str) -> httpx.Response:
    """The join page of ``link``, then its button; the answer (not followed)."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    answer: httpx.Response = client.post(link, data=fields(page), follow_redirects=False)
    return answer


def csrf_of(client: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, path
    return found.group(1)


def signed_in_as(client: TestClient) -> str:
    """Who the browser's session is, read from the team page's title."""
    page = client.get("/", follow_redirects=False)
    if page.status_code == 303:
        return "coach"
    found = re.search(r"Spring hack day: team (\w+)", page.text)
    return found.group(1) if found else f"nobody ({page.status_code})"


# ---------------------------------------------------------------- 1. joining takes a POST from this site


def test_the_join_link_shows_a_button_and_signs_in_only_on_its_post(lite: Event) -> None:
    browser = client_of(lite.app)
    link = f"/join/{lite.tokens['alpha']}"
    page = browser.get(link)
    assert page.status_code == 200
    assert "Sign in as team alpha" in page.text and 'method="post"' in page.text
    assert "grader_session" not in page.headers.get("set-cookie", "")  # the GET changes no session
    assert "grader_join=" in page.headers["set-cookie"]  # the browser's nonce for the form's value
    assert signed_in_as(browser) == "nobody (403)"
    assert Sessions(lite.store).count("spring") == 0
    answer = browser.post(link, data=fields(page), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert signed_in_as(browser) == "alpha"
    # the cookie holds a random id only; the database its SHA-256, never the id itself
    session_id = browser.cookies["grader_session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session_id)
    with sqlite3.connect(lite.state / "grader.db") as db:
        stored = [r[0] for r in db.execute("SELECT id_hash FROM sessions")]
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert browser.get(link, follow_redirects=False).headers["location"] == "/"  # signed in as alpha already


def test_login_csrf_from_another_site_is_refused(lite: Event) -> None:
    """The attack that worked before: a page of another site sends the signed-in browser of team
    alpha to beta's link (a navigation, or a form POST with the attacker's own form value)."""
    alpha = client_of(lite.app)
    assert sign_in(alpha, f"/join/{lite.tokens['alpha']}").status_code == 303
    beta_link = f"/join/{lite.tokens['beta']}"
    # a navigation to the link: a page that asks, the session untouched
    page = alpha.get(beta_link)
    assert page.status_code == 200
    assert "You are signed in as <strong>team alpha</strong>" in page.text and "Switch to team beta" in page.text
    assert signed_in_as(alpha) == "alpha"
    good = fields(page)
    # a cross-site form POST: refused by Sec-Fetch-Site, by Origin, and without the form's value
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "https://evil.example"}, {"Origin": "null"}):
        refused = alpha.post(beta_link, data=good, headers=headers, follow_redirects=False)
        assert refused.status_code == 403, headers
        assert "did not come from this site" in refused.text
    # the attacker's own join page gives a value bound to the attacker's browser, not alpha's
    attacker = client_of(lite.app)
    theirs = fields(attacker.get(beta_link))
    for data in (theirs, {"current": good["current"]}, {**good, "join_csrf": "x" * 64}):
        refused = alpha.post(beta_link, data=data, follow_redirects=False)
        assert refused.status_code == 403 and "has expired or did not come from this site" in refused.text
    assert signed_in_as(alpha) == "alpha"
    # the same-origin click switches (Sec-Fetch-Site as Chromium sends it; Origin as well)
    switched = alpha.post(beta_link, data=good, headers={"Sec-Fetch-Site": "same-origin",
                                                         "Origin": "http://testserver"}, follow_redirects=False)
    assert switched.status_code == 303
    assert signed_in_as(alpha) == "beta"
    assert Sessions(lite.store).count("spring") == 1  # alpha's session ended with the switch


def test_a_browser_whose_session_changed_since_the_page_is_asked_again(lite: Event) -> None:
    browser = client_of(lite.app)
    beta_link = f"/join/{lite.tokens['beta']}"
    stale = fields(browser.get(beta_link))  # shown while signed in as nobody
    assert stale["current"] == ""
    assert sign_in(browser, f"/join/{lite.tokens['alpha']}").status_code == 303  # then, in another tab: alpha
    again = browser.post(beta_link, data=stale, follow_redirects=False)
    assert again.status_code == 409 and "You are signed in as <strong>team alpha</strong>" in again.text
    assert signed_in_as(browser) == "alpha"  # not switched without a click on the page that said so
    coach = client_of(lite.app)
    assert sign_in(coach, f"/coach/join/{lite.coach}").status_code == 303
    page = coach.get(f"/join/{lite.tokens['alpha']}")
    assert "You are signed in as <strong>the coach</strong>" in page.text and "Stay signed in as the coach" in page.text


def test_wrong_tokens_and_forged_cookies_are_refused_without_a_500(lite: Event) -> None:
    browser = client_of(lite.app)
    page = browser.get(f"/join/{lite.tokens['alpha']}")
    for path in ("/join/not-a-token", "/coach/join/not-a-token", f"/coach/join/{lite.tokens['alpha']}"):
        refused = browser.post(path, data=fields(page))
        assert refused.status_code == 403 and "This join link is not valid" in refused.text
    assert browser.post("/coach/join/x", data={}).status_code == 403
    # any text in the form's value or the flash cookie is compared, never a 500
    assert browser.post(f"/join/{lite.tokens['alpha']}", data={"join_csrf": "é" * 64}).status_code == 403
    signed = client_of(lite.app)
    assert sign_in(signed, f"/join/{lite.tokens['alpha']}").status_code == 303
    cookie = f"grader_session={signed.cookies['grader_session']}; grader_flash=aGk.\u00e9\u00e9"
    assert signed.get("/", headers={"Cookie": cookie.encode("latin-1")}).status_code == 200
    # a random id, an old signed cookie of Starlette's SessionMiddleware, junk: nobody, cookie cleared
    for forged in ("A" * 43, "eyJ0ZWFtIjogMSwgImNzcmYiOiAieCJ9.Z1.sig", "%00;\"<x>"):
        stranger = client_of(lite.app)
        stranger.cookies.set("grader_session", forged)
        answer = stranger.get("/")
        assert answer.status_code == 403 and "You are not signed in as a team" in answer.text
    stale = client_of(lite.app)
    stale.cookies.set("grader_session", "B" * 43)
    assert "grader_session=;" in stale.get("/leaderboard").headers["set-cookie"]


# ---------------------------------------------------------------- 2. sessions kept by the server


def test_sign_out_ends_a_copied_cookie(event: Event) -> None:
    browser = client_of(event.app)
    assert sign_in(browser, f"/join/{event.tokens['alpha']}").status_code == 303
    copied = browser.cookies["grader_session"]
    csrf = csrf_of(browser)
    out = browser.post("/logout", data={"csrf": csrf})
    assert out.status_code == 200 and "You are signed out" in out.text
    assert "grader_session=;" in out.headers["set-cookie"]
    thief = client_of(event.app)
    thief.cookies.set("grader_session", copied)
    assert thief.get("/").status_code == 403
    assert thief.post("/submit", data={"csrf": csrf, "challenge": "toy"}).status_code == 403
    assert Sessions(event.store).count("spring") == 0
    # the coach's too
    coach = client_of(event.app)
    assert sign_in(coach, f"/coach/join/{event.coach}").status_code == 303
    copied = coach.cookies["grader_session"]
    assert coach.post("/logout", data={"csrf": csrf_of(coach, "/coach")}).status_code == 200
    thief = client_of(event.app)
    thief.cookies.set("grader_session", copied)
    assert thief.get("/coach").status_code == 403


def test_sessions_are_new_at_each_sign_in_and_bounded_per_team(lite: Event) -> None:
    from grader.server.store.sessions import MAX_SESSIONS, digest

    sessions = Sessions(lite.store)
    team = digest(lite.tokens["alpha"])
    first = sessions.start("spring", team_token_hash=team)
    assert first is not None
    ids = [first[0]] + [s[0] for s in (sessions.start("spring", team_token_hash=team) for _ in range(MAX_SESSIONS))
                        if s is not None]
    assert len(set(ids)) == MAX_SESSIONS + 1  # a new id each time: no fixation
    assert sessions.count("spring") == MAX_SESSIONS  # the oldest ended
    assert sessions.find("spring", ids[0]) is None and sessions.find("spring", ids[-1]) is not None
    assert sessions.start("spring", team_token_hash=digest("not-a-token")) is None
    assert sessions.start("spring", coach_token_hash=team) is None


def test_sign_out_needs_the_session_csrf_token(lite: Event) -> None:
    browser = client_of(lite.app)
    assert sign_in(browser, f"/join/{lite.tokens['alpha']}").status_code == 303
    assert browser.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert signed_in_as(browser) == "alpha"


def test_a_flash_message_is_shown_once_and_only_to_its_session(lite: Event) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = nbformat.writes(new_notebook(cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]})],
                                            metadata={"grader": {"challenge": "toy"}})).encode()
    browser = client_of(lite.app)
    assert sign_in(browser, f"/join/{lite.tokens['alpha']}").status_code == 303
    sent = browser.post("/submit", data={"csrf": csrf_of(browser), "challenge": "toy"},
                        files=[("files", ("toy.ipynb", notebook))], follow_redirects=False)
    assert sent.status_code == 303, sent.text
    flash = browser.cookies["grader_flash"]
    other = client_of(lite.app)
    assert sign_in(other, f"/join/{lite.tokens['beta']}").status_code == 303
    other.cookies.set("grader_flash", flash)  # bound to alpha's session: not beta's
    assert "is queued." not in other.get("/").text
    assert "is queued." in browser.get("/").text
    assert "is queued." not in browser.get("/").text  # shown once


# ---------------------------------------------------------------- 3. grader event: links, teams


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rotating_a_link_refuses_the_old_one_and_ends_its_sessions(lite: Event,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    state = str(lite.state)
    alpha, coach = client_of(lite.app), client_of(lite.app)
    assert sign_in(alpha, f"/join/{lite.tokens['alpha']}").status_code == 303
    assert sign_in(coach, f"/coach/join/{lite.coach}").status_code == 303
    code, out, _ = cli(capsys, "event", "rotate-link", "spring", "--team", "alpha", "--state", state,
                       "--base-url", "https://grader.example.org/")
    assert code == 0, out
    assert "1 session(s) signed in with it have ended" in out
    new = re.search(r"alpha: https://grader\.example\.org/join/([A-Za-z0-9_-]+) ", out)
    assert new, out
    assert signed_in_as(alpha) == "nobody (403)"
    assert alpha.get(f"/join/{lite.tokens['alpha']}").status_code == 403
    assert sign_in(alpha, f"/join/{new.group(1)}").status_code == 303 and signed_in_as(alpha) == "alpha"
    assert signed_in_as(coach) == "coach"  # the coach's session is not the team's
    code, out, _ = cli(capsys, "event", "rotate-link", "spring", "--coach", "--state", state)
    assert code == 0 and "the coach of spring has a new join link" in out
    coach_token = re.search(r"coach: http://127\.0\.0\.1:8000/coach/join/([A-Za-z0-9_-]+) ", out)
    assert coach_token, out
    assert coach.get("/coach").status_code == 403
    assert coach.get(f"/coach/join/{lite.coach}").status_code == 403
    assert sign_in(coach, f"/coach/join/{coach_token.group(1)}").status_code == 303
    assert signed_in_as(alpha) == "alpha"
    # clear errors
    code, _, err = cli(capsys, "event", "rotate-link", "spring", "--team", "gamma", "--state", state)
    assert code != 0 and "event spring has no team 'gamma'; its teams: alpha, beta" in err
    code, _, err = cli(capsys, "event", "rotate-link", "autumn", "--coach", "--state", state)
    assert code != 0 and "no event 'autumn'; known: spring" in err
    with pytest.raises(SystemExit):
        main(["event", "rotate-link", "spring", "--state", state])  # --team or --coach
    assert "one of the arguments --team --coach is required" in capsys.readouterr().err


def test_adding_and_removing_teams(lite: Event, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.server.test_server_app import finish, result

    state = str(lite.state)
    code, out, _ = cli(capsys, "event", "add-team", "spring", "  gamma ", "--state", state)
    assert code == 0 and "team gamma added to spring" in out
    token = re.search(r"gamma: http://127\.0\.0\.1:8000/join/([A-Za-z0-9_-]+) ", out)
    assert token, out
    gamma = client_of(lite.app)
    assert sign_in(gamma, f"/join/{token.group(1)}").status_code == 303 and signed_in_as(gamma) == "gamma"
    code, _, err = cli(capsys, "event", "add-team", "spring", "beta", "--state", state)
    assert code != 0 and "event spring has a team 'beta' already" in err
    code, _, err = cli(capsys, "event", "add-team", "spring", "x" * 65, "--state", state)
    assert code != 0 and "1 to 64 characters" in err
    # beta and gamma on the board, then beta removed
    beta = client_of(lite.app)
    assert sign_in(beta, f"/join/{lite.tokens['beta']}").status_code == 303
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = nbformat.writes(new_notebook(cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]})],
                                            metadata={"grader": {"challenge": "toy"}})).encode()
    for who, name, k in ((beta, "beta", 18), (gamma, "gamma", 12)):
        sent = who.post("/submit", data={"csrf": csrf_of(who), "challenge": "toy"},
                        files=[("files", ("toy.ipynb", notebook))], follow_redirects=False)
        assert sent.status_code == 303, sent.text
        finish(lite.store, result(name, k, 10))
    coach = client_of(lite.app)
    assert sign_in(coach, f"/coach/join/{lite.coach}").status_code == 303
    board = coach.get("/coach/leaderboard").text
    assert "beta" in board and "gamma" in board
    copied = beta.cookies["grader_session"]
    code, out, _ = cli(capsys, "event", "remove-team", "spring", "beta", "--state", state)
    assert code == 0 and "team beta removed from spring" in out and "1 session(s) ended" in out
    time.sleep(1.1)  # the pages read the removed teams again after a second (Site.removed_teams)
    assert signed_in_as(beta) == "nobody (403)"
    thief = client_of(lite.app)
    thief.cookies.set("grader_session", copied)
    assert thief.get("/").status_code == 403
    assert beta.get(f"/join/{lite.tokens['beta']}").status_code == 403
    # off both boards, for the teams and the coach; on the coach's page with its scorecard
    for page in (gamma.get("/leaderboard").text, coach.get("/coach/leaderboard").text):
        assert "gamma" in page and ">beta<" not in page
    (kept,) = [s for s in lite.store.submissions("spring") if s.team_name == "beta"]
    assert kept.state == "done" and lite.store.result(kept.id) is not None
    assert ">beta<" in coach.get("/coach?all=1").text
    assert coach.get(f"/coach/submissions/{kept.id}/scorecard").status_code == 200
    assert "beta" not in coach.get("/coach/export/gradebook.csv").text
    code, out, _ = cli(capsys, "event", "teams", "spring", "--state", state)
    assert out.split("\n")[:3] == ["alpha", "gamma", "beta (removed)"]
    code, _, err = cli(capsys, "event", "remove-team", "spring", "beta", "--state", state)
    assert code != 0 and "event spring has no team 'beta'; its teams: alpha, gamma" in err
    # brought back: a new link, its submission on the board again
    code, out, _ = cli(capsys, "event", "add-team", "spring", "beta", "--state", state)
    assert code == 0 and "team beta of spring is back" in out
    time.sleep(1.1)
    assert "beta" in coach.get("/coach/leaderboard").text


# ---------------------------------------------------------------- an old state folder


def test_a_state_folder_from_before_sessions_is_upgraded(tmp_path: Path, make_toy: Callable[..., Settings]) -> None:
    """A database at revision 0002 (as every state folder before this change) with an event, a
    team and a graded submission: opened by the new store, it is upgraded in place, keeps them,
    and its old join link signs in."""
    from alembic import command
    from alembic.config import Config

    from grader.server.store.db import MIGRATIONS

    state = tmp_path / "state"
    (state / "uploads").mkdir(parents=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{state / 'grader.db'}")
    command.upgrade(config, "0002")
    token = "old-token-" + "x" * 22
    sha = "a" * 64
    with sqlite3.connect(state / "grader.db") as db:
        db.execute("INSERT INTO events VALUES (1, 'old', 'Old event', NULL, NULL, 0, ?, 'secret', "
                   "'2026-12-01 10:00:00')", (hashlib.sha256(b"coach").hexdigest(),))
        db.execute("INSERT INTO event_challenges VALUES (1, 1, 'toy', 0)")
        db.execute("INSERT INTO teams VALUES (1, 1, 'red', ?)", (hashlib.sha256(token.encode()).hexdigest(),))
        db.execute("INSERT INTO uploads VALUES (?, 10, '2026-12-01 10:00:00')", (sha,))
        db.execute("INSERT INTO submissions (id, event_id, team_id, challenge, filename, upload_sha256, created, "
                   "state, attempts, progress, cancel_requested) VALUES (1, 1, 1, 'toy', 'toy.ipynb', ?, "
                   "'2026-12-01 10:00:00', 'failed', 1, '', 0)", (sha,))
    store = Store(state)
    try:
        with sqlite3.connect(state / "grader.db") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0005",)
            assert db.execute("SELECT name, removed_at FROM teams").fetchall() == [("red", None)]
            # revision 0005: the coach's grades of written answers and their releases, empty
            assert db.execute("SELECT COUNT(*) FROM grades").fetchone() == (0,)
            assert db.execute("SELECT COUNT(*) FROM grade_releases").fetchone() == (0,)
        (sub,) = store.submissions("old")
        assert (sub.team_name, sub.state) == ("red", "failed")
        app = create_app(store, make_toy(), workers=None, options=AppOptions(event="old"))
        browser = client_of(app)
        assert sign_in(browser, f"/join/{token}").status_code == 303
        assert "Old event: team red" in browser.get("/").text
    finally:
        store.close()


# ---------------------------------------------------------------- 5. behind an HTTPS proxy


def test_https_mode_sets_secure_host_cookies_and_hsts(tmp_path: Path, make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    ev = make_event(tmp_path, settings, https=True, hsts_s=600)
    try:
        secure = client_of(ev.app, "https://grader.example.org")
        page = secure.get(f"/join/{ev.tokens['alpha']}")
        assert page.headers["strict-transport-security"] == "max-age=600"
        assert "__Host-grader_join=" in page.headers["set-cookie"] and "Secure" in page.headers["set-cookie"]
        answer = secure.post(f"/join/{ev.tokens['alpha']}", data=fields(page),
                             headers={"Origin": "https://grader.example.org"}, follow_redirects=False)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-grader_session=") and "; Secure" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie and "HttpOnly" in cookie
        assert secure.get("/").status_code == 200
        # plain http reaching a server started with --https (the proxy's X-Forwarded-Proto not trusted)
        plain = client_of(ev.app, "http://grader.example.org")
        page = plain.get(f"/join/{ev.tokens['beta']}")
        plain.cookies.set("__Host-grader_join", page.headers["set-cookie"].split(";")[0].split("=", 1)[1])
        refused = plain.post(f"/join/{ev.tokens['beta']}", data=fields(page))
        assert refused.status_code == 400 and "--forwarded-allow-ips" in refused.text
    finally:
        ev.store.close()
    plain_app = make_event(tmp_path / "plain", settings)
    try:
        assert "strict-transport-security" not in client_of(plain_app.app).get("/join/x").headers
    finally:
        plain_app.store.close()


def test_serve_options_for_a_proxy_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from grader.cli.serve import proxy_options

    args = argparse.Namespace(https=True, hsts=0, forwarded_allow_ips=" 10.0.0.5, 10.1.0.0/16 ")
    options = proxy_options(args)
    assert (options.https, options.hsts_s, options.forwarded_allow_ips) == (True, 0, "10.0.0.5,10.1.0.0/16")
    from grader.core.errors import UsageError

    with pytest.raises(UsageError, match="not an IP address or network: proxy.example"):
        proxy_options(argparse.Namespace(https=True, hsts=1, forwarded_allow_ips="proxy.example"))
    with pytest.raises(SystemExit):
        main(["serve", "--event", "x", "--hsts", "-1"])
    assert "give whole seconds" in capsys.readouterr().err


# ---------------------------------------------------------------- 4. tokens kept out of the logs


@pytest.fixture
def served(tmp_path: Path, make_toy: Callable[..., Settings]) -> Iterator[tuple[str, Event, Path]]:
    """A real ``grader serve`` on 127.0.0.1 (its own process, log level info), its log file."""
    settings = make_toy()
    ev = make_event(tmp_path, settings)
    ev.store.close()
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "GRADER_PROJECT_DIR": str(settings.project_dir), "GRADER_DATA_DIR": str(settings.data_dir),
           "GRADER_CACHE_DIR": str(settings.cache_dir), "GRADER_STATE_DIR": str(ev.state)}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "grader", "--verbose", "serve", "--event", "spring", "--port",
                                 str(port), "--profile", "full", "--sandbox", "none"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_listening(proc, port, log)
        yield f"http://127.0.0.1:{port}", ev, log
    finally:
        stop_group(proc)


def test_a_real_server_never_writes_a_join_token_to_its_log(served: tuple[str, Event, Path]) -> None:
    url, ev, log = served
    with httpx.Client(base_url=url, timeout=30) as browser:
        for link in (f"/join/{ev.tokens['alpha']}", f"/coach/join/{ev.coach}"):
            page = browser.get(link)
            assert page.status_code == 200
            assert browser.post(link, data=fields(page)).status_code == 303
        assert browser.get("/join/wrong-token-guess").status_code == 403
        assert browser.get(f"/join/{ev.tokens['beta']}?x=1").status_code == 200
        # mistyped ways to a link (the red team's): answered 404 or 403, their tokens masked all the same
        for odd in (f"/JOIN/{ev.tokens['alpha']}", f"/Join/{ev.tokens['beta']}", f"/join/%2F{ev.tokens['alpha']}",
                    f"/join%5C{ev.tokens['beta']}", f"/coach/JOIN/{ev.coach}"):
            assert browser.get(odd).status_code in (403, 404)
    time.sleep(0.5)
    text = log.read_text()
    assert '"GET /join/*** HTTP/1.1" 200' in text and '"POST /coach/join/*** HTTP/1.1" 303' in text, text[-3000:]
    assert '"GET /join/*** HTTP/1.1" 403' in text
    for secret in (*ev.tokens.values(), ev.coach, "wrong-token-guess"):
        assert secret not in text


def test_the_servers_own_loggers_mask_join_tokens(lite: Event, caplog: pytest.LogCaptureFixture) -> None:
    """What the app logs itself (a join during a database outage logs its path) is masked as
    uvicorn's access log is: every logger under grader.server has the filter once create_app ran."""
    import logging

    with caplog.at_level(logging.INFO):
        logging.getLogger("grader.server.web.app").warning("%s %s: %s", "POST", f"/join/{lite.tokens['alpha']}", "away")
        logging.getLogger("grader.server.web.pages").warning(f"GET /coach/join/{lite.coach}?x=1 failed")
        logging.getLogger("uvicorn.error").info("%s", {"path": f"/join/{lite.tokens['beta']}"})
    text = caplog.text
    assert "POST /join/***: away" in text and "GET /coach/join/***?x=1 failed" in text
    assert not any(secret in text for secret in (*lite.tokens.values(), lite.coach))
