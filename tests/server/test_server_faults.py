"""Fault tests of the event server (issue 17): real ``grader serve`` processes on 127.0.0.1, the
toy challenge, uploads through the HTTP routes, and faults made for real: a server killed with
SIGKILL while its worker runs a notebook, PostgreSQL stopped and started under a running job, the
state folder's disk full (a small tmpfs), two servers on one queue. Each ends with every
acknowledged submission graded exactly once, read from the database. Waits are on conditions
with deadlines; each test is bounded (its server processes are killed at the end, with their
kernels)."""

from __future__ import annotations

import errno
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sqlalchemy import create_engine, text

from grader.core.settings import Settings
from grader.server.store.db import WEB_THREADS, DatabaseUnavailable, pool_sizes
from grader.server.store.rows import SubmissionRow
from grader.server.store.store import Store
from tests.support.net import free_port, listening
from tests.support.pg import PostgresServer
from tests.support.toy import GOOD_TOY_CELLS

QUICK = GOOD_TOY_CELLS[:2]  # CLASS_NAMES and predict: the shortest notebook that is graded
LEASE_S = 4  # --lease of the servers that must take over a dead one's job quickly
START_S = 40  # a server listens within this
GRADE_S = 60  # the submissions of a test are graded within this


def _notebook(cells: list[str], marker: str) -> bytes:
    """A toy notebook (``marker`` makes its bytes, and so its upload, its own)."""
    nb = new_notebook(cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
                             *[new_code_cell(c) for c in cells], new_code_cell(f"# {marker}")],
                      metadata={"grader": {"challenge": "toy"},
                                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return str(nbformat.writes(nb)).encode()


def _sleeping(seconds: int, marker: str) -> bytes:
    """A notebook whose first cell sleeps ``seconds``: its job is mid-run for that long."""
    return _notebook([f"import time\ntime.sleep({seconds})", *QUICK], marker)






@dataclass
class Server:
    """A ``grader serve`` process in its own process group, its output in ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return f"--- {self.name} ({self.log.name}) ---\n" + self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL to the whole group (the server, its kernels and sandboxes), waited for."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


class Servers:
    """Starts ``grader serve`` processes on the toy project; kills what is left at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Server] = []
        self.clients: list[httpx.Client] = []
        self.settings: Settings | None = None

    def team(self, server: Server, token: str) -> Team:
        """Team ``token``'s browser on ``server`` (closed at the end)."""
        team = Team(server, token)
        self.clients.append(team.client)
        return team

    def start(self, name: str, *, state: Path, database_url: str | None = None, lease_s: float | None = None,
              port: int | None = None, workers: int = 1) -> Server:
        assert self.settings is not None, "build the toy project first"
        env = {**os.environ, "GRADER_PROJECT_DIR": str(self.settings.project_dir),
               "GRADER_DATA_DIR": str(self.settings.data_dir), "GRADER_CACHE_DIR": str(self.settings.cache_dir)}
        env.pop("GRADER_STATE_DIR", None)
        port = port or free_port()
        argv = [sys.executable, "-m", "grader", "serve", "--event", "hack", "--state", str(state), "--port", str(port),
                "--profile", "full", "--workers", str(workers)]
        argv += ["--database-url", database_url] if database_url else []
        argv += ["--lease", str(lease_s)] if lease_s else []
        log = self.tmp_path / f"{name}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        server = Server(name, proc, port, log)
        self.started.append(server)
        return server

    def logs(self) -> str:
        return "\n".join(s.tail() for s in self.started)

    def wait(self, what: str, ok: Callable[[], bool], timeout_s: float, *, alive: tuple[Server, ...] = ()) -> None:
        """Until ``ok()``; fails after ``timeout_s`` or when a server of ``alive`` exits, with the logs."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ok():
                return
            for server in alive:
                if server.proc.poll() is not None:
                    pytest.fail(f"{server.name} exited ({server.proc.returncode}) before {what}\n{self.logs()}")
            time.sleep(0.1)
        pytest.fail(f"not {what} within {timeout_s:.0f} s\n{self.logs()}")

    def listening(self, *servers: Server) -> None:
        self.wait("listening", lambda: all(listening(s.port) for s in servers), START_S, alive=servers)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    for client in started.clients:
        client.close()
    for server in started.started:
        server.kill()


class Team:
    """A team's browser on one server: joined through its link, uploading through ``POST /submit``."""

    def __init__(self, server: Server, token: str) -> None:
        self.client = httpx.Client(base_url=server.base, timeout=30)
        form = self.client.get(f"/join/{token}")  # the join page; its button POSTs to the link
        assert form.status_code == 200, form.text
        fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', form.text))
        home = self.client.post(f"/join/{token}", data=fields, follow_redirects=True)
        assert home.status_code == 200, home.text
        found = re.search(r'name="csrf" value="([^"]+)"', home.text)
        assert found is not None
        self.csrf = found.group(1)

    def upload(self, notebook: bytes) -> httpx.Response:
        """The answer to one upload (303 to ``/``: acknowledged, the submission committed)."""
        return self.client.post("/submit", data={"challenge": "toy", "csrf": self.csrf},
                                files=[("files", ("toy.ipynb", notebook))])

    def submit(self, notebook: bytes) -> int:
        """Upload ``notebook``; the id of the acknowledged submission (from the page's flash)."""
        answer = self.upload(notebook)
        assert answer.status_code == 303, answer.text[-2000:]
        home = self.client.get("/")
        assert re.search(r"Submission \d+ \(toy\.ipynb\) is queued", home.text), home.text[-2000:]
        found = re.search(r'<tr class="sub[^"]*" data-id="(\d+)"', home.text)  # the history, newest first
        assert found is not None, home.text[-2000:]
        return int(found.group(1))


def _row(store: Store, submission_id: int) -> SubmissionRow:
    row = store.submission(submission_id)
    assert row is not None
    return row


def _mid_run(store: Store, submission_id: int) -> bool:
    """Whether the submission's kernel is running its cells (past the start of its job)."""
    row = _row(store, submission_id)
    return row.state == "running" and row.progress not in ("", "starting")


def _final(store: Store, *ids: int) -> bool:
    return all(_row(store, i).state in ("done", "failed", "cancelled") for i in ids)


def _lease_owner(store: Store, submission_id: int) -> str:
    """The worker holding the job (``host:pid:N``), read from the table."""
    engine = create_engine(store.database_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT lease_owner FROM submissions WHERE id = :i"),
                                    {"i": submission_id}).scalar_one())
    finally:
        engine.dispose()


def _result_counts(database_url: str) -> dict[int, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {int(a): int(b) for a, b in conn.execute(
                text("SELECT submission_id, COUNT(*) FROM results GROUP BY submission_id"))}
    finally:
        engine.dispose()


def assert_graded_once(store: Store, acknowledged: list[int], *, failed: tuple[int, ...] = ()) -> dict[int, int]:
    """Every acknowledged submission is in the database, and every submission there is done with
    exactly one result (those of ``failed`` failed, with none); returns the attempts of each."""
    rows = {r.id: r for r in store.submissions("hack")}
    assert set(acknowledged) <= set(rows), (acknowledged, sorted(rows))
    counts = _result_counts(store.database_url)
    for sid, row in rows.items():
        if sid in failed:
            assert (row.state, counts.get(sid, 0)) == ("failed", 0), (sid, row)
        else:
            assert (row.state, row.error, counts.get(sid, 0)) == ("done", None, 1), (sid, row)
            result = store.result(sid)
            assert result is not None and '"submission":' in result.result_json and "<html" in result.scorecard_html
    assert set(counts) <= set(rows)
    return {sid: row.attempts for sid, row in rows.items()}


def _one_server(servers: Servers, state: Path, url: str, teams: list[str]) -> tuple[Store, Server, list[Team]]:
    """An event of ``teams`` on ``url``, one server for it listening, and each team signed in there."""
    store = Store(state, url)
    tokens = _new_event(store, teams)
    server = servers.start("serve", state=state, database_url=url)
    servers.listening(server)
    return store, server, [servers.team(server, tokens[t]) for t in teams]


def _new_event(store: Store, teams: list[str]) -> dict[str, str]:
    return store.create_event("hack", challenges=["toy"], teams=teams).team_tokens


# --------------------------------------------------------------------------- 1. a worker killed


@pytest.mark.kernel
def test_two_servers_on_postgresql_the_survivor_grades_a_killed_servers_job_once(
        make_toy: Callable[..., Settings], tmp_path: Path, postgres_url: str, servers: Servers) -> None:
    """Two servers on one PostgreSQL database and one state folder (the uploads are files in it),
    uploads through both; the server whose worker runs a notebook is killed (SIGKILL). The other
    queues that job again once its lease has expired and grades it; each submission has one
    result, and both servers (the killed one started again) show the same pages."""
    servers.settings = make_toy()
    state = tmp_path / "state"
    store = Store(state, postgres_url)
    tokens = _new_event(store, ["red", "blue", "green"])
    a = servers.start("a", state=state, database_url=postgres_url, lease_s=LEASE_S)
    b = servers.start("b", state=state, database_url=postgres_url, lease_s=LEASE_S)
    servers.listening(a, b)
    red, blue, green = (servers.team(a, tokens["red"]), servers.team(b, tokens["blue"]),
                        servers.team(a, tokens["green"]))
    first = red.submit(_sleeping(6, "red"))
    servers.wait("the first notebook mid-run", lambda: _mid_run(store, first), 30, alive=(a, b))
    owner = _lease_owner(store, first)
    pid = int(owner.split(":")[1])
    victim, survivor = (a, b) if pid == a.proc.pid else (b, a)
    assert pid == victim.proc.pid, (owner, a.proc.pid, b.proc.pid)
    acknowledged = [first, blue.submit(_notebook(QUICK, "blue")), green.submit(_notebook(QUICK, "green"))]
    victim.kill()
    assert _row(store, first).state == "running"  # as the crash left it: held by a dead worker
    servers.wait("every submission graded", lambda: _final(store, *acknowledged), GRADE_S, alive=(survivor,))
    attempts = assert_graded_once(store, acknowledged)
    assert attempts == {first: 2, acknowledged[1]: 1, acknowledged[2]: 1}  # the killed run once more, no other
    assert "lost its lease" not in survivor.log.read_text()
    # the killed server started again: both show the same state (the session is kept in the
    # database: one join works on both)
    again = servers.start("a-again", state=state, database_url=postgres_url, lease_s=LEASE_S, port=victim.port)
    servers.listening(again)
    for who in (red, blue):
        pages = [httpx.get(f"{s.base}{path}", cookies=who.client.cookies, timeout=30)
                 for s in (again, survivor) for path in ("/", "/leaderboard")]
        assert [p.status_code for p in pages] == [200] * 4
        assert pages[0].text == pages[2].text and pages[1].text == pages[3].text
        assert "red" in pages[1].text and "blue" in pages[1].text and "green" in pages[1].text
    assert _result_counts(postgres_url) == {i: 1 for i in acknowledged}  # a restart on PostgreSQL requeues nothing
    store.close()


# --------------------------------------------------------------------------- 2. the database restarted


@pytest.mark.kernel
def test_postgresql_restarted_mid_run_the_job_survives_and_uploads_are_refused_clearly(
        make_toy: Callable[..., Settings], tmp_path: Path, postgres_server: PostgresServer, postgres_url: str,
        servers: Servers) -> None:
    """PostgreSQL stopped (``pg_ctl stop -m fast``) while a notebook runs and teams upload: the
    pages answer 503 with a plain message (JSON for the status poll), never a traceback; an upload
    then is refused and leaves no submission. Started again, the server answers at once (the pool
    tests each connection), the running job finishes and stores its result, the next upload is
    acknowledged; each acknowledged submission has one result."""
    servers.settings = make_toy()
    state = tmp_path / "state"
    store, server, (red, blue) = _one_server(servers, state, postgres_url, ["red", "blue"])
    first = red.submit(_sleeping(5, "red"))
    servers.wait("the notebook mid-run", lambda: _mid_run(store, first), 30, alive=(server,))
    events: list[str] = []  # its progress stream (Server-Sent Events), open through the outage

    def follow() -> None:
        with httpx.Client(base_url=server.base, cookies=red.client.cookies, timeout=30) as client, \
                client.stream("GET", f"/submissions/{first}/events") as stream:
            events.extend(line for line in stream.iter_lines() if line.startswith("event: "))

    follower = threading.Thread(target=follow)
    follower.start()
    servers.wait("the stream open", lambda: bool(events), 10, alive=(server,))
    postgres_server.stop()
    try:
        refused = blue.upload(_notebook(QUICK, "blue"))
        home = red.client.get("/")
        status = red.client.get(f"/submissions/{first}/status")
    finally:
        postgres_server.start()
    for page in (refused, home):
        assert page.status_code == 503, page.text[-2000:]
        assert page.headers["retry-after"] == "5"
        assert "The database is unavailable: nothing was stored. Try again in a moment." in html.unescape(page.text)
        assert "Traceback" not in page.text and "Internal Server Error" not in page.text
    assert (status.status_code, status.json()) == (503, {
        "error": "The database is unavailable: nothing was stored. Try again in a moment."})
    assert server.proc.poll() is None
    second = blue.submit(_notebook(QUICK, "blue"))  # at once: the pool replaced its dead connections
    servers.wait("both graded", lambda: _final(store, first, second), GRADE_S, alive=(server,))
    attempts = assert_graded_once(store, [first, second])
    assert attempts == {first: 1, second: 1}  # the run went on through the outage: not run twice
    follower.join(30)
    assert events[-1] == "event: done" and set(events) == {"event: progress", "event: done"}
    assert len(store.submissions("hack")) == 2  # the refused upload left no submission
    assert "is unavailable" in server.log.read_text()  # the outage was seen (and logged), not missed
    store.close()


def test_finish_is_tried_again_until_postgresql_is_back(tmp_path: Path, postgres_server: PostgresServer,
                                                        postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A worker's result is not thrown away when the database is restarting as the run ends:
    :meth:`Store.finish` tries again (logging each try) and stores it once the server is back."""
    store = Store(tmp_path / "state", postgres_url)
    store.create_event("hack", challenges=["toy"], teams=["red"])
    upload = store.store_upload(io.BytesIO(b"{}"), filename="toy.ipynb", max_bytes=1 << 20)
    sid = store.submit("hack", store.teams("hack")[0].id, challenge="toy", upload=upload).id
    assert store.claim("w1", lease_s=60) is not None
    outcome: list[bool] = []
    postgres_server.stop()
    try:
        worker = threading.Thread(target=lambda: outcome.append(store.finish(
            sid, "w1", result_json="{}", scorecard_html="<html>", verdict="pass", score=1.0, max_score=1.0)))
        worker.start()
        deadline = time.monotonic() + 20
        while not any("storing its result" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "finish did not meet the outage"
            time.sleep(0.05)
    finally:
        postgres_server.start()
    worker.join(40)
    assert outcome == [True]
    message = next(r.getMessage() for r in caplog.records if "storing its result" in r.getMessage())
    assert message.startswith(f"submission {sid}: storing its result: the database postgresql+psycopg://grader@")
    assert "is unavailable (" in message and message.endswith("trying again in 0.2 s")
    assert _result_counts(postgres_url) == {sid: 1} and _row(store, sid).state == "done"
    store.close()


# --------------------------------------------------------------------------- 3. the disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MiB tmpfs mounted on ``tmp_path/disk`` (root only: skips where it cannot be mounted)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is made by mounting a small tmpfs: needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m,mode=0700", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _fill(folder: Path) -> Path:
    """A file that takes every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    block = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    small = block[:512]
    with filler.open("ab", buffering=0) as fh:  # the last partial block too
        try:
            while True:
                fh.write(small)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


def _temp_files(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "uploads").rglob(".upload-*"))


def _refused_for_the_disk(answer: httpx.Response) -> None:
    assert answer.status_code == 507, answer.text[-2000:]
    page = html.unescape(answer.text)
    assert "the server's disk is full: the upload was not stored" in page
    assert "try again later, or tell the coach" in page and "Traceback" not in page


@pytest.mark.kernel
def test_a_full_disk_refuses_uploads_clearly_and_keeps_the_results_on_sqlite(
        make_toy: Callable[..., Settings], small_disk: Path, servers: Servers) -> None:
    """The state folder, SQLite database included, on a full disk: the upload is refused (507,
    the page names the full disk), nothing is half-written (no temporary file, no submission),
    the earlier result is still served; once space is freed an upload is acknowledged and graded."""
    servers.settings = make_toy()
    state = small_disk
    store = Store(state)
    tokens = _new_event(store, ["red", "blue"])
    server = servers.start("serve", state=state)
    servers.listening(server)
    red, blue = servers.team(server, tokens["red"]), servers.team(server, tokens["blue"])
    first = red.submit(_notebook(QUICK, "red"))
    servers.wait("the first graded", lambda: _final(store, first), GRADE_S, alive=(server,))
    filler = _fill(state)
    _refused_for_the_disk(blue.upload(_notebook(QUICK, "blue")))
    assert _temp_files(state) == [] and [s.id for s in store.submissions("hack")] == [first]
    assert red.client.get(f"/submissions/{first}/scorecard").status_code == 200
    filler.unlink()
    second = blue.submit(_notebook(QUICK, "blue"))
    servers.wait("the second graded", lambda: _final(store, second), GRADE_S, alive=(server,))
    assert assert_graded_once(store, [first, second]) == {first: 1, second: 1}
    store.close()


@pytest.mark.kernel
def test_a_disk_filling_mid_run_fails_the_job_clearly_on_postgresql(
        make_toy: Callable[..., Settings], small_disk: Path, postgres_url: str, servers: Servers) -> None:
    """The state folder on a disk that fills while a notebook runs (the database elsewhere, on
    PostgreSQL): the upload sent then is refused (507, nothing half-written); the running job,
    whose worker cannot write under the state folder, fails with an error naming the full disk and
    stores no result (never done without one); with space freed, the next upload and the coach's
    re-grade of the failed one are graded, once each."""
    servers.settings = make_toy()
    state = small_disk
    store, server, (red, blue) = _one_server(servers, state, postgres_url, ["red", "blue"])
    first = red.submit(_sleeping(4, "red"))
    servers.wait("the notebook mid-run", lambda: _mid_run(store, first), 30, alive=(server,))
    filler = _fill(state)
    _refused_for_the_disk(blue.upload(_notebook(QUICK, "blue")))
    assert _temp_files(state) == [] and [s.id for s in store.submissions("hack")] == [first]
    servers.wait("the job ended", lambda: _final(store, first), GRADE_S, alive=(server,))
    row = _row(store, first)
    assert row.state == "failed" and row.error is not None and "No space left on device" in row.error, row
    assert store.result(first) is None
    filler.unlink()
    second = blue.submit(_notebook(QUICK, "blue"))
    regrade = store.regrade(first).id
    servers.wait("the rest graded", lambda: _final(store, second, regrade), GRADE_S, alive=(server,))
    assert assert_graded_once(store, [second, regrade], failed=(first,)) == {first: 1, second: 1, regrade: 1}
    store.close()


@pytest.mark.kernel
def test_a_disk_filling_mid_run_on_sqlite_loses_nothing(make_toy: Callable[..., Settings], small_disk: Path,
                                                        servers: Servers) -> None:
    """The state folder with its SQLite database on a disk that fills while a notebook runs: the
    run's end cannot be written (the heartbeat and the result fail with "database or disk is
    full"); the job is never done without its result. Either the failure was recorded (it fails,
    naming the full disk) or nothing could be: the job stays running until its lease expires and
    is queued again once space is freed, then graded once."""
    servers.settings = make_toy()
    state = small_disk
    store = Store(state)
    tokens = _new_event(store, ["red"])
    server = servers.start("serve", state=state, lease_s=LEASE_S)
    servers.listening(server)
    first = servers.team(server, tokens["red"]).submit(_sleeping(4, "red"))
    servers.wait("the notebook mid-run", lambda: _mid_run(store, first), 30, alive=(server,))
    assert any((state / "work").iterdir())  # the job's workspace
    filler = _fill(state)
    # the worker is done with the run when its workspace is gone (removed however the run ended)
    servers.wait("the run ended", lambda: not any((state / "work").iterdir()), GRADE_S, alive=(server,))
    row = _row(store, first)
    assert store.result(first) is None and row.state in ("running", "failed"), row
    assert "database or disk is full" in server.log.read_text()
    filler.unlink()
    if row.state == "failed":  # the failure could be written: it names the disk
        assert row.error is not None and ("No space left on device" in row.error or "disk is full" in row.error)
        again = store.regrade(first).id
        servers.wait("the re-grade graded", lambda: _final(store, again), GRADE_S, alive=(server,))
        assert assert_graded_once(store, [again], failed=(first,)) == {first: 1, again: 1}
    else:  # nothing could be written: queued again after its lease, graded once
        servers.wait("graded", lambda: _final(store, first), GRADE_S, alive=(server,))
        assert assert_graded_once(store, [first]) == {first: 2}
    store.close()


# --------------------------------------------------------------------------- 4. two servers racing


@pytest.mark.kernel
def test_two_postgresql_servers_racing_for_one_submission_grade_it_once(
        make_toy: Callable[..., Settings], tmp_path: Path, postgres_url: str, servers: Servers) -> None:
    """Two servers polling one queue when one submission arrives: one claims it, runs it once and
    stores its one result; the other never starts it."""
    servers.settings = make_toy()
    state = tmp_path / "state"
    store = Store(state, postgres_url)
    tokens = _new_event(store, ["red"])
    a = servers.start("a", state=state, database_url=postgres_url)
    b = servers.start("b", state=state, database_url=postgres_url)
    servers.listening(a, b)
    sid = servers.team(a, tokens["red"]).submit(_notebook(QUICK, "red"))
    servers.wait("graded", lambda: _final(store, sid), GRADE_S, alive=(a, b))
    assert assert_graded_once(store, [sid]) == {sid: 1}
    assert not any("result dropped" in s.log.read_text() for s in (a, b))
    store.close()


@pytest.mark.kernel
def test_a_second_sqlite_server_on_one_state_folder_refuses_to_start(
        make_toy: Callable[..., Settings], tmp_path: Path, servers: Servers) -> None:
    """Embedded mode (SQLite): a second server on the folder of a running one would queue that
    one's running job again at its start (and grade it twice); it refuses to start, naming the
    first, and the job is graded once by the first."""
    servers.settings = make_toy()
    state = tmp_path / "state"
    store = Store(state)
    tokens = _new_event(store, ["red"])
    first = servers.start("first", state=state)
    servers.listening(first)
    sid = servers.team(first, tokens["red"]).submit(_sleeping(4, "red"))
    servers.wait("the notebook mid-run", lambda: _mid_run(store, sid), 30, alive=(first,))
    second = servers.start("second", state=state)
    assert second.proc.wait(START_S) == 2
    said = second.log.read_text()
    assert (f"grader: error: {state}: another grader serve (pid {first.proc.pid}) is serving this state folder's "
            "SQLite database: a second server would take over its running jobs and grade them twice") in said
    assert "fix: stop the other server first; for several servers on one database use PostgreSQL" in said
    row = _row(store, sid)
    assert (row.state, row.attempts, _lease_owner(store, sid).split(":")[1]) == ("running", 1, str(first.proc.pid))
    servers.wait("graded", lambda: _final(store, sid), GRADE_S, alive=(first,))
    assert assert_graded_once(store, [sid]) == {sid: 1}
    first.kill()  # SIGKILL: the kernel releases the lock, a new server starts
    again = servers.start("again", state=state)
    servers.listening(again)
    store.close()


def test_two_workers_finishing_one_submission_store_one_result(tmp_path: Path, database_url: str | None) -> None:
    """A forced race on :meth:`Store.finish`: the worker that lost its lease (it expired, another
    claimed the job) and the one holding it finish at the same moment, and the holder finishes
    twice: one call stores, the others return False; one result, the holder's."""
    store = Store(tmp_path / "state", database_url)
    store.create_event("hack", challenges=["toy"], teams=["red"])
    upload = store.store_upload(io.BytesIO(b"{}"), filename="toy.ipynb", max_bytes=1 << 20)
    sid = store.submit("hack", store.teams("hack")[0].id, challenge="toy", upload=upload).id
    assert store.claim("old", lease_s=0.01) is not None
    time.sleep(0.05)  # the old worker's lease runs out (a frozen machine)
    assert store.requeue_stale() == 1
    taken = store.claim("new", lease_s=60)
    assert taken is not None and taken.attempts == 2
    barrier = threading.Barrier(3)
    outcomes: dict[str, bool] = {}

    def finish(name: str, worker: str) -> None:
        barrier.wait(10)
        outcomes[name] = store.finish(sid, worker, result_json=json.dumps({"by": name}), scorecard_html="<html>",
                                      verdict="pass", score=1.0, max_score=1.0)

    threads = [threading.Thread(target=finish, args=args)
               for args in (("old", "old"), ("new", "new"), ("new-again", "new"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes["old"] is False
    assert sorted([outcomes["new"], outcomes["new-again"]]) == [False, True]
    counts = _result_counts(store.database_url)
    assert counts == {sid: 1}
    result = store.result(sid)
    assert result is not None and json.loads(result.result_json)["by"] in ("new", "new-again")
    assert _row(store, sid).state == "done"
    store.close()


# --------------------------------------------------------------------------- the connection pool


def test_the_pool_has_a_connection_for_every_thread_that_may_ask(tmp_path: Path, database_url: str | None) -> None:
    """Every web thread (AnyIO's 40) and every worker thread and heartbeat hold a connection at the
    same moment without waiting: with SQLAlchemy's default pool (5 + 10) the 16th would wait and
    the barrier break."""
    workers = 2
    assert pool_sizes(workers) == (16, 30) and sum(pool_sizes(workers)) >= WEB_THREADS + 2 * workers
    store = Store(tmp_path / "state", database_url, workers=workers)
    holders = WEB_THREADS + 2 * workers
    barrier = threading.Barrier(holders)
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with store._read() as s:
                s.execute(text("SELECT 1"))
                barrier.wait(20)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=hold) for _ in range(holders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert errors == []
    store.close()


def test_a_pool_used_up_says_so(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread that finds no free connection in ``POOL_TIMEOUT_S`` gets
    :class:`DatabaseUnavailable` (the pages' 503), not SQLAlchemy's raw ``TimeoutError``."""
    monkeypatch.setattr("grader.server.store.db.POOL_TIMEOUT_S", 0.2)
    monkeypatch.setattr("grader.server.store.db.pool_sizes", lambda workers: (1, 0))
    store = Store(tmp_path / "state", database_url)
    with store._read() as s:
        s.execute(text("SELECT 1"))
        with pytest.raises(DatabaseUnavailable, match=r"^every connection to the database .* is in use: "
                           r"QueuePool limit of size 1 overflow 0 reached"):
            store.events()
    assert store.events() == []
    store.close()


def test_fifty_concurrent_requests_to_a_postgresql_server(make_toy: Callable[..., Settings], tmp_path: Path,
                                                          postgres_url: str, servers: Servers) -> None:
    """50 teams' pages requested at the same moment from one server on PostgreSQL (httpx, one
    thread each): every answer is 200, none waits out the pool (no "QueuePool limit" in the log)."""
    servers.settings = make_toy()
    state = tmp_path / "state"
    store, server, teams = _one_server(servers, state, postgres_url, [f"team{i:02d}" for i in range(50)])
    barrier = threading.Barrier(len(teams))
    answers: list[tuple[int, int]] = []

    def load(team: Team) -> None:
        barrier.wait(20)
        pages = [team.client.get(path) for path in ("/", "/leaderboard", "/")]
        answers.append((pages[0].status_code, pages[1].status_code))

    threads = [threading.Thread(target=load, args=(t,)) for t in teams]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [(200, 200)] * 50
    assert time.monotonic() - t0 < 60
    assert "QueuePool limit" not in server.log.read_text() and "Traceback" not in server.log.read_text()
    store.close()


def test_serve_lease_must_be_positive_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    """``grader serve --lease SECONDS`` (advanced): above 0; its default is the store's."""
    from grader.cli import serve as commands
    from grader.cli.main import main
    from grader.server.store import jobs

    assert commands.DEFAULT_LEASE_S == jobs.DEFAULT_LEASE_S == 60

    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--event", "hack", "--lease", "0"])
    assert stopped.value.code == 2
    assert "argument --lease: '0': give a number of seconds above 0, e.g. 60" in capsys.readouterr().err

