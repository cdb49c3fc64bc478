"""The event server under load (issue 17): upload acknowledgment, page latency and grading throughput.

Starts the real server (``grader serve``, a separate process on 127.0.0.1) on a throwaway toy project
(the synthetic "toy" challenge the tests use, built by tests/support/toy.py without its ``per-class`` and
``transfer-learning`` criteria: trivial notebooks grade in a few seconds), once per database (SQLite
in the state folder; PostgreSQL started by tests/support/pgserver.py, as the tests' is, with Debian's
``initdb``/``pg_ctl`` into a temporary folder as the ``postgres`` user, but with ``fsync`` on so that
acknowledged means durable), and measures with httpx clients (asyncio, one
thread: the client shares the machine's cores with the server):

1. Uploads: UPLOADERS teams upload a notebook at the same moment; latency from the POST sent to
   its answer (303: the submission is queued; the server answers only after the upload is fsynced
   and the submission committed). Then waits until every upload is graded.
2. Polling: TEAMS teams load their team page and the status endpoint the page polls
   (``/submissions/{id}/status``, every POLL_INTERVAL s as the page's fallback does), POLLS times.
3. Pages with TEAMS x SUBS_PER_TEAM graded submissions (inserted through the Store API with the
   stored result of one real grading, server stopped meanwhile): the leaderboard (team view), the
   coach's leaderboard, the coach's page (every team's submissions, pass rates) and a team's page.
4. Grading throughput: NOTEBOOKS trivial notebooks uploaded to a fresh server with each worker
   count, wall time from the first upload to the last result stored, beside ``grader check --jobs
   N --no-cache`` on the same notebooks, run just before each server (the machine's load drifts).
5. Slow clients (issue 25; run after phase 2, on the same server with ``grader serve``'s default
   timeouts): POLLERS teams load their page every POLL_INTERVAL s, first for 20 s alone (the
   machine's own figure), then for SLOW_S seconds while SLOW_CONNECTIONS other connections are
   held open, half trickling a request's headers a byte a second, half sending an upload's
   headers and half its body and then nothing, each opened again when the server closes it. The
   pages' latency in both windows, and how the slow ones were closed.

6. The coach's similar pairs and the public data at start (issue 28), on a server of the real project with
   its real data (challenge gear-cnn: 424 hidden images, 57 MB of public data) where ``GRADER_DATA_DIR``
   holds gear (else, and with ``--quick``, the toy's): its first download of the challenge's
   ``public-data.zip`` asked at once (it waits for the build ``grader serve`` starts), the seconds until
   the start-up thread logs the zip ready, a download then; and ``/coach/similar`` over SIMILAR_TEAMS
   teams, each with one graded submission (kept code: cells drawn from the reference solutions, two
   teams handing in one notebook; predictions on the hidden test set at accuracies of 0.6 to 0.95, two
   teams sharing one model): its first view (cold), a view after each of 5 new results (the pairs
   computed again, the unchanged notebooks' fingerprints kept) and PAGE_REQUESTS repeat views.

7. Grading written answers (issue 29; after phase 3, with the result phase 1 stored): TEAMS teams each with
   one graded submission whose answer to a coach-graded question awaits the coach (the toy rubric with one
   such question added); the coach's per-question page (``/coach/grading/toy/why``, every team's answer)
   PAGE_REQUESTS times, then PAGE_REQUESTS grades saved one after another as the page's script saves
   them (a POST asking for JSON), each for another team, as one coach grades.

After each phase every acknowledged upload must be in the database exactly once (and graded once,
where the phase waits for grading): ``accounted: N acknowledged, N stored, 0 lost, 0 duplicated``;
the exit status is 1 otherwise. The last lines are the table, one figure a line, beside the issue's
targets (upload p95 < 200 ms, pages p95 < 100 ms, throughput within 10% of grader check).
Bounded: every phase has a request count and a deadline; only 127.0.0.1 is contacted; temporary
folders, servers and PostgreSQL are removed and stopped on the way out (also on Ctrl-C, SIGTERM or
a failure).

Usage: .venv/bin/python benchmarks/server.py [--database sqlite|postgresql|both] [--teams 200]
       [--uploaders 50] [--polls 10] [--subs-per-team 20] [--workers 1,2,4] [--notebooks 16]
       [--page-requests 40] [--concurrency 10] [--sandbox bwrap|none] [--slow-connections 200] [--slow-s 40]
       [--similar-teams 60] [--skip uploads,polling,slow,pages,throughput,similar,grading] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support/net.py, pgserver.py, toy.py: what the tests use (no pytest import)
from tests.support.net import free_port, listening  # noqa: E402
from tests.support.pgserver import PostgresUnavailable, create_database, start_postgres  # noqa: E402
from tests.support.toy import GOOD_TOY_CELLS, toy_notebook, toy_png  # noqa: E402
from tests.support.toy import build_toy as build_toy_project  # noqa: E402

EVENT = "loadtest"
UPLOAD_TARGET_MS = 200.0
PAGE_TARGET_MS = 100.0
SIMILAR_TARGET_MS = 500.0  # issue 28: /coach/similar under 0.5 s at p95 for 60 teams
QUESTION_PAGE_TARGET_MS = 300.0  # issue 29: the per-question page with 200 teams under 300 ms at p95
GRADE_SAVED_TARGET_MS = 100.0  # issue 29: a saved grade under 100 ms at p95
THROUGHPUT_TARGET = 0.9  # server submissions per minute at least 90% of grader check's

# ---------------------------------------------------------------- the toy project (tests/support/toy.py)

LEFT_OUT = ("per-class", "transfer-learning")  # criteria of the tests' toy rubric the benchmark does not grade


def build_toy(root: Path) -> tuple[Path, Path]:
    """The toy project and its data under ``root`` (tests/support/toy.py's challenge ``toy``, seed ``bench``: 3 colours,
    18 images, 6 hidden; its rubric less :data:`LEFT_OUT`, and no transfer model in the contract);
    returns ``(project_dir, data_dir)``."""
    settings = build_toy_project(root, seed="bench", without=LEFT_OUT)
    assert settings.data_dir is not None  # build_toy always sets it
    return settings.project_dir, settings.data_dir


def notebook(tag: str) -> bytes:
    """A trivial toy notebook (tests/support/toy.py's ``GOOD_TOY_CELLS``: passes every criterion with two new images;
    its ``predict_transfer`` is not called, the challenge having no transfer contract), made distinct by ``tag``."""
    import nbformat

    return str(nbformat.writes(toy_notebook([*GOOD_TOY_CELLS, f"# {tag}"]))).encode()


def new_images() -> list[tuple[str, bytes]]:
    """Two new images: orange 64x48 PNGs with a white rectangle (``toy_png``, seeds 0 and 4)."""
    return [(f"new{i}.png", toy_png((200, 120, 40), 4 * i, (64, 48))) for i in range(2)]


# ---------------------------------------------------------------- processes, cleaned up on the way out


class Children:
    """Processes started here, each in its own session: stopped (SIGTERM, then SIGKILL of the group)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(list(argv), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], *, timeout_s: float = 30) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # anything the group left behind
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc, timeout_s=10)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt






class Failed(Exception):
    """The benchmark cannot go on (a server that does not start, a grading that does not end)."""


# ---------------------------------------------------------------- PostgreSQL (tests/support/pgserver.py, fsync on)


@contextlib.contextmanager
def postgres() -> Iterator[int]:
    """A PostgreSQL server (tests/support/pgserver.py's: a temporary folder, 127.0.0.1, trust authentication for role
    ``grader``) with ``fsync`` on (and ``synchronous_commit``, PostgreSQL's default) and ``max_connections``
    300; yields its port; stopped (``pg_ctl stop -m fast``) and its folder removed after.

    Raises:
        Failed: it cannot be started (psycopg, initdb or pg_ctl missing, or failing: the reason in the message).
    """
    try:
        server = start_postgres(fsync=True, max_connections=300, prefix="grader-bench-pg-")
    except PostgresUnavailable as err:
        raise Failed(str(err)) from err
    try:
        yield server.port
    finally:
        server.remove()


# ---------------------------------------------------------------- figures


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``values`` (NIST's definition)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    """One line of the final table."""

    database: str
    figure: str
    value: str
    target: str
    ok: bool | None  # None: no target


@dataclass
class Bench:
    """What every phase shares: options, folders, processes and the table being filled."""

    args: argparse.Namespace
    tmp: Path
    project: Path
    data: Path
    children: Children
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def latency(self, database: str, figure: str, ms: Sequence[float], target_ms: float | None,
                errors: int = 0) -> None:
        if not ms:
            self.rows.append(Row(database, figure, "no answer", f"p95 < {target_ms:.0f} ms" if target_ms else "",
                                 False if target_ms else None))
            return
        p50, p95, p99 = (percentile(ms, p) for p in (50, 95, 99))
        failed = f", {errors} errors" if errors else ""
        value = f"p50 {p50:7.1f}  p95 {p95:7.1f}  p99 {p99:7.1f} ms  (n={len(ms)}{failed})"
        ok = None if target_ms is None else (p95 < target_ms and errors == 0)
        self.rows.append(Row(database, figure, value, f"p95 < {target_ms:.0f} ms" if target_ms else "", ok))
        say(f"  {figure}: {value}")


def say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- one server


@dataclass
class Server:
    """A running ``grader serve`` of the event, its store (opened here too) and its teams' join tokens."""

    bench: Bench
    state: Path
    url: str | None
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log: Path = Path()
    project: Path | None = None  # None: the toy project (bench.project, bench.data), a fresh cache each start
    data: Path | None = None
    cache: Path | None = None
    event: str = EVENT
    verbose: bool = False  # grader -v: its INFO lines in the log (phase 6 reads the start-up thread's)

    def start(self, workers: int, tag: str) -> None:
        self.port = free_port()
        self.log = self.bench.tmp / f"serve-{tag}.log"
        cache = self.cache or Path(tempfile.mkdtemp(prefix="cache-", dir=self.bench.tmp))  # fresh: no result is reused
        env = {**os.environ, "GRADER_PROJECT_DIR": str(self.project or self.bench.project),
               "GRADER_DATA_DIR": str(self.data or self.bench.data), "GRADER_CACHE_DIR": str(cache)}
        argv = [sys.executable, "-m", "grader", *(["-v"] if self.verbose else []), "serve", "--event", self.event,
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers), "--state", str(self.state),
                "--sandbox",
                self.bench.args.sandbox, *(["--database-url", self.url] if self.url else [])]
        self.proc = self.bench.children.start(argv, env=env, log=self.log)
        deadline = time.monotonic() + 60
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failed(f"grader serve did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.bench.children.stop(self.proc)
            self.proc = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def open_store(state: Path, url: str | None) -> Any:
    from grader.server.store.store import Store

    return Store(state, url)


def counts(store: Any) -> dict[int, list[tuple[int, str, int]]]:
    """Per team id: its submissions ``(id, state, number of results)``, read with plain SQL."""
    from sqlalchemy import text

    out: dict[int, list[tuple[int, str, int]]] = {}
    with store._engine.connect() as conn:  # the store's engine; the query is this benchmark's own
        rows = conn.execute(text(
            "SELECT s.team_id, s.id, s.state, (SELECT COUNT(*) FROM results r WHERE r.submission_id = s.id) "
            "FROM submissions s JOIN events e ON s.event_id = e.id WHERE e.name = :event ORDER BY s.id"),
            {"event": EVENT})
        for team_id, sub_id, state, n in rows:
            out.setdefault(int(team_id), []).append((int(sub_id), str(state), int(n)))
    return out


def account(bench: Bench, database: str, phase: str, store: Any, acked: dict[int, int], *, graded: bool) -> None:
    """Print ``accounted: ...`` for ``acked`` (team id -> acknowledged submissions); with ``graded``,
    each must also have exactly one result. A mismatch is recorded as a failure."""
    found = counts(store)
    stored = sum(len(v) for v in found.values())
    lost = sum(max(0, n - len(found.get(t, []))) for t, n in acked.items())
    duplicated = sum(max(0, len(subs) - acked.get(t, 0)) for t, subs in found.items())
    line = f"accounted: {sum(acked.values())} acknowledged, {stored} stored, {lost} lost, {duplicated} duplicated"
    if graded:
        one = sum(1 for subs in found.values() for _, _, n in subs if n == 1)
        bad = [(i, s, n) for subs in found.values() for i, s, n in subs if n != 1]
        line += f"; {one} with exactly one result, {len(bad)} without"
        if bad:
            line += f" (first: submission {bad[0][0]} {bad[0][1]}, {bad[0][2]} results)"
            lost += len(bad)
    say(f"  [{database} {phase}] {line}")
    if lost or duplicated:
        bench.failures.append(f"{database} {phase}: {line}")


def wait_graded(store: Any, total: int, timeout_s: float, server: Server) -> None:
    """Wait until ``total`` submissions of the event are done, failed or cancelled.

    Raises:
        Failed: not within ``timeout_s`` seconds, or the server exited.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        subs = [s for t in counts(store).values() for s in t]
        final = [s for s in subs if s[1] in ("done", "failed", "cancelled")]
        if len(final) >= total:
            return
        if server.proc is not None and server.proc.poll() is not None:
            raise Failed(f"the server exited:\n{server.log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise Failed(f"{len(final)} of {total} graded after {timeout_s:.0f} s")
        time.sleep(0.25)


# ---------------------------------------------------------------- the clients


class Team:
    """One team's (or the coach's) browser: its own cookie jar."""

    def __init__(self, base: str, token: str, *, coach: bool = False) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=base, timeout=120, follow_redirects=False)
        self.token, self.coach, self.csrf = token, coach, ""

    async def join(self) -> None:
        path = f"/coach/join/{self.token}" if self.coach else f"/join/{self.token}"
        form = await self.client.get(path)  # the join page; its button POSTs to the link
        joined = await self.client.post(path, data=dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"',
                                                                   form.text)))
        if joined.status_code != 303:
            raise Failed(f"join answered {joined.status_code}")
        page = await self.client.get("/coach" if self.coach else "/")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if found is None:
            raise Failed(f"no CSRF token on the page after joining ({page.status_code})")
        self.csrf = found[1]

    async def timed_get(self, path: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        answer = await self.client.get(path)
        return (time.perf_counter() - t0) * 1000, answer.status_code

    async def close(self) -> None:
        await self.client.aclose()


def upload_files(tag: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The upload form's files: a notebook made distinct by ``tag`` and two new images."""
    return [("files", ("toy.ipynb", notebook(tag), "application/x-ipynb+json")),
            *[("files", (name, data, "image/png")) for name, data in new_images()]]


async def joined(base: str, tokens: Sequence[str], *, coach: bool = False) -> list[Team]:
    teams = [Team(base, t, coach=coach) for t in tokens]
    sem = asyncio.Semaphore(20)

    async def one(team: Team) -> None:
        async with sem:
            await team.join()

    await asyncio.gather(*(one(t) for t in teams))
    return teams


async def close_all(teams: Sequence[Team]) -> None:
    await asyncio.gather(*(t.close() for t in teams))


def encoded_upload(team: Team, files: list[tuple[str, tuple[str, bytes, str]]], port: int) -> bytes:
    """The whole HTTP/1.1 request of ``team``'s upload form with ``files`` (its session cookie and CSRF
    token), encoded once by httpx: sending it is a single socket write."""
    import httpx

    cookies = "; ".join(f"{name}={value}" for name, value in team.client.cookies.items())
    request = httpx.Request("POST", f"http://127.0.0.1:{port}/submit", data={"challenge": "toy", "csrf": team.csrf},
                            files=files, headers={"Cookie": cookies})
    body = request.read()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    return f"POST /submit HTTP/1.1\r\n{head}\r\n".encode() + body


async def send_encoded(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                       request: bytes) -> tuple[float, int]:
    """Write ``request`` on an open connection; (milliseconds until the status line, status)."""
    reader, writer = connection
    t0 = time.perf_counter()
    writer.write(request)
    status = await reader.readline()
    ms = (time.perf_counter() - t0) * 1000
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    writer.close()
    return ms, int(status.split()[1]) if status else 0


async def upload_all(base: str, tokens: Sequence[str], tags: Sequence[str]) -> tuple[float, list[tuple[float, int]]]:
    """Join each team, then all upload at the same moment (notebook ``tags[i]``); returns the time of
    the start (:func:`time.time`) and each upload's ``(milliseconds, status)``.

    The requests are encoded and their connections opened before the start (a team's browser has
    its connection open from the page it uploads on), so the timed part is the server's: httpx
    spends about 3 ms of CPU on each upload it sends, on the same 2 cores as the server."""
    teams = await joined(base, tokens)
    port = int(base.rsplit(":", 1)[1])
    try:
        requests = [encoded_upload(t, upload_files(tag), port) for t, tag in zip(teams, tags, strict=True)]
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in teams]
        t0 = time.time()
        answers = await asyncio.gather(*(send_encoded(c, r) for c, r in zip(connections, requests, strict=True)))
        return t0, list(answers)
    finally:
        await close_all(teams)


# ---------------------------------------------------------------- the phases


def phase_uploads(bench: Bench, database: str, server: Server, store: Any, tokens: dict[str, str],
                  ids: dict[str, int]) -> dict[int, int]:
    """Phase 1: UPLOADERS teams upload at once; returns the acknowledged uploads per team id."""
    names = list(tokens)[: bench.args.uploaders]
    say(f"  phase 1: {len(names)} teams upload at once")

    _, answers = asyncio.run(upload_all(server.base, [tokens[n] for n in names], [f"{database} {n}" for n in names]))
    ok = [ms for ms, status in answers if status == 303]
    bench.latency(database, f"upload acknowledged ({len(names)} at once)", ok, UPLOAD_TARGET_MS,
                  errors=len(answers) - len(ok))
    acked = {ids[n]: 1 for n, (_, status) in zip(names, answers, strict=True) if status == 303}
    account(bench, database, "uploads", store, acked, graded=False)
    t0 = time.monotonic()
    wait_graded(store, len(names), 60 + 15 * len(names), server)
    say(f"  the {len(names)} uploads graded {time.monotonic() - t0:.0f} s after the last acknowledgment")
    account(bench, database, "uploads graded", store, acked, graded=True)
    return acked


def phase_polling(bench: Bench, database: str, server: Server, store: Any, tokens: dict[str, str],
                  ids: dict[str, int]) -> None:
    """Phase 2: every team loads its page and polls its submission's status, POLLS times."""
    args = bench.args
    latest = {t: subs[-1][0] for t, subs in counts(store).items()}
    names = list(tokens)[: args.teams]
    say(f"  phase 2: {len(names)} teams poll their page and status {args.polls} times, every {args.poll_interval} s")
    page_ms: list[float] = []
    status_ms: list[float] = []
    errors = {"page": 0, "status": 0}
    deadline = time.monotonic() + args.phase_s

    async def poll(team: Team, sub: int | None) -> None:
        await asyncio.sleep(random.uniform(0, args.poll_interval))
        for _ in range(args.polls):
            if time.monotonic() > deadline:
                return
            started = time.monotonic()
            for kind, path, into in (("page", "/", page_ms), ("status", f"/submissions/{sub}/status", status_ms)):
                if kind == "status" and sub is None:
                    continue
                ms, status = await team.timed_get(path)
                if status == 200:
                    into.append(ms)
                else:
                    errors[kind] += 1
            await asyncio.sleep(max(0.0, args.poll_interval - (time.monotonic() - started)))

    async def run() -> None:
        teams = await joined(server.base, [tokens[n] for n in names])
        try:
            await asyncio.gather(*(poll(t, latest.get(ids[n])) for t, n in zip(teams, names, strict=True)))
        finally:
            await close_all(teams)

    asyncio.run(run())
    bench.latency(database, f"team page ({len(names)} teams polling)", page_ms, PAGE_TARGET_MS, errors["page"])
    bench.latency(database, "status poll (teams with a submission)", status_ms, PAGE_TARGET_MS, errors["status"])


async def slow_client(port: int, request: bytes | None, stop_at: float, ends: list[tuple[float, bytes]]) -> None:
    """One slow client until ``stop_at`` (monotonic s): with ``request`` None it trickles a request's
    headers, a byte a second; else it sends ``request``'s headers and half its body, then nothing. When
    the server closes the connection it records ``(seconds it was open, the first line answered)`` in
    ``ends`` and opens another."""
    while time.monotonic() < stop_at:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened = time.monotonic()
        if request is None:
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        else:
            head, _, body = request.partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n" + body[: len(body) // 2])
        answer = b""
        try:
            while time.monotonic() < stop_at:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), timeout=1.0)
                except TimeoutError:
                    if request is None:
                        writer.write(b"a")
                    continue
                if not chunk:
                    ends.append((time.monotonic() - opened, answer.split(b"\r\n", 1)[0]))
                    break
                answer += chunk
        except ConnectionError:
            ends.append((time.monotonic() - opened, b"reset"))
        finally:
            writer.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from ``/proc/PID/stat`` (0 where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase_slow(bench: Bench, database: str, server: Server, tokens: dict[str, str]) -> None:
    """Phase 5: POLLERS teams poll their page, first for up to 20 s alone (the machine's own
    figure), then for SLOW_S seconds with SLOW_CONNECTIONS slow clients open."""
    import httpx

    args = bench.args
    names = list(tokens)
    pollers, sessions = names[: args.pollers], names[args.pollers: args.pollers + 10] or names[:1]
    baseline_s = min(args.slow_s, 20.0)
    say(f"  phase 5: {len(pollers)} teams load their page every {args.poll_interval} s, {baseline_s:.0f} s alone, "
        f"then {args.slow_s:.0f} s with {args.slow_connections} slow connections open")
    ends: dict[str, list[tuple[float, bytes]]] = {"headers": [], "body": []}

    async def poll(team: Team, stop_at: float, page_ms: list[float], errors: list[int]) -> None:
        await asyncio.sleep(random.uniform(0, args.poll_interval))
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                ms, status = await team.timed_get("/")
            except httpx.TransportError as err:  # counted, and the team polls on
                say(f"  a team's page: {type(err).__name__}: {err}")
                ms, status = 0.0, 0
            if status == 200:
                page_ms.append(ms)
            else:
                errors[0] += 1
            await asyncio.sleep(max(0.0, args.poll_interval - (time.monotonic() - started)))

    async def run() -> tuple[tuple[list[float], list[int]], tuple[list[float], list[int]]]:
        uploaders = await joined(server.base, [tokens[n] for n in sessions])
        requests = [encoded_upload(t, upload_files(f"slow {i}"), server.port) for i, t in enumerate(uploaders)]
        teams = await joined(server.base, [tokens[n] for n in pollers])  # polling within the keep-alive (5 s)
        alone: tuple[list[float], list[int]] = ([], [0])
        crowded: tuple[list[float], list[int]] = ([], [0])
        try:
            await asyncio.gather(*(t.timed_get("/") for t in teams))  # each poller's connection open
            cpu.append((time.monotonic(), cpu_s(pid)))
            stop_at = time.monotonic() + baseline_s
            await asyncio.gather(*(poll(t, stop_at, *alone) for t in teams))
            cpu.append((time.monotonic(), cpu_s(pid)))
            stop_at = time.monotonic() + 1.0 + args.slow_s
            slow = [asyncio.ensure_future(slow_client(server.port, None if i % 2 == 0 else requests[i % len(requests)],
                                                      stop_at, ends["headers" if i % 2 == 0 else "body"]))
                    for i in range(args.slow_connections)]
            await asyncio.sleep(1.0)  # the slow ones connected first
            await asyncio.gather(*slow, *(poll(t, stop_at, *crowded) for t in teams))
            cpu.append((time.monotonic(), cpu_s(pid)))
        finally:
            await close_all([*teams, *uploaders])
        return alone, crowded

    assert server.proc is not None
    pid = server.proc.pid
    cpu: list[tuple[float, float]] = []  # (monotonic s, the server's CPU s) at each window's edges
    t0 = time.monotonic()
    try:
        alone, crowded = asyncio.run(run())
    except OSError as err:
        if server.proc is not None and server.proc.poll() is not None:
            raise Failed(f"grader serve exited ({server.proc.returncode}) during phase 5:\n"
                         f"{server.log.read_text(errors='replace')[-3000:]}") from err
        raise
    bench.latency(database, f"team page ({len(pollers)} polling, no slow connection)", alone[0], None, alone[1][0])
    bench.latency(database, f"team page ({len(pollers)} polling, {args.slow_connections} slow connections open)",
                  crowded[0], PAGE_TARGET_MS, crowded[1][0])
    for (t_a, c_a), (t_b, c_b), window in zip(cpu, cpu[1:], ("no slow connection", "slow connections open"),
                                              strict=False):
        share = f"{100 * (c_b - c_a) / max(t_b - t_a, 1e-9):.0f}% of a core ({c_b - c_a:.1f} s in {t_b - t_a:.0f} s)"
        say(f"  the server's CPU, {window}: {share}")
        bench.rows.append(Row(database, f"server CPU, {window}", share, "", None))
    for kind, got in ends.items():
        lines = sorted({line.decode(errors="replace") or "closed without an answer" for _, line in got})
        alive = sorted(t for t, _ in got)
        lasted = f"open {percentile(alive, 50):.1f} s (median), {alive[-1]:.1f} s at most" if alive else "none closed"
        say(f"  slow {kind}: {len(got)} closed by the server in {time.monotonic() - t0:.0f} s, {lasted}; "
            f"answered: {'; '.join(lines)}")
        bench.rows.append(Row(database, f"slow {kind}: closed by the server", f"{len(got)}, {lasted}", "", None))


def insert_results(bench: Bench, store: Any, ids: dict[str, int], acked: dict[int, int]) -> dict[int, int]:
    """Phase 3's data (server stopped): each team brought to SUBS_PER_TEAM graded submissions
    through the Store API (store_upload, submit, claim, finish) with the result and scorecards of the
    first graded upload; returns the acknowledged submissions per team id, these included."""
    first = min(s[0] for subs in counts(store).values() for s in subs if s[2] == 1)
    res = store.result(first)
    sub = store.submission(first)
    with store.upload_path(sub.upload_sha256).open("rb") as fh:
        upload = store.store_upload(fh, filename=sub.filename, max_bytes=64 << 20)
    total = dict(acked)
    t0 = time.monotonic()
    made = 0
    for name in list(ids)[: bench.args.teams]:
        team_id = ids[name]
        while total.get(team_id, 0) < bench.args.subs_per_team:
            row = store.submit(EVENT, team_id, challenge="toy", upload=upload)
            job = store.claim("bench:insert", lease_s=600)
            if job is None or job.id != row.id:
                raise Failed(f"claimed {job and job.id} instead of the inserted submission {row.id}")
            if not store.finish(row.id, "bench:insert", result_json=res.result_json, scorecard_html=res.scorecard_html,
                                team_scorecard_html=res.team_scorecard_html, verdict=res.verdict, score=res.score,
                                max_score=res.max_score):
                raise Failed(f"finish of submission {row.id} stored nothing")
            total[team_id] = total.get(team_id, 0) + 1
            made += 1
    say(f"  inserted {made} graded submissions in {time.monotonic() - t0:.0f} s (result {len(res.result_json)} B, "
        f"scorecards {len(res.scorecard_html) + len(res.team_scorecard_html)} B each)")
    return total


async def hammer(who: Sequence[Team], path: str, count: int, concurrency: int,
                 deadline: float) -> tuple[list[float], int]:
    """GET ``path`` ``count`` times (until ``deadline``, monotonic s), ``concurrency`` at once, the
    sessions of ``who`` in turn; (milliseconds of the 200 answers, number of other answers)."""
    done: list[float] = []
    left = [count]
    errors = [0]

    async def client(i: int) -> None:
        while left[0] > 0 and time.monotonic() < deadline:
            left[0] -= 1
            ms, status = await who[i % len(who)].timed_get(path)
            if status == 200:
                done.append(ms)
            else:
                errors[0] += 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return done, errors[0]


def phase_pages(bench: Bench, database: str, server: Server, tokens: dict[str, str], coach_token: str) -> None:
    """Phase 3: the leaderboards, the coach's page and a team's page, PAGE_REQUESTS each, CONCURRENCY at once."""
    args = bench.args
    names = list(tokens)[: args.teams]
    n = args.teams * args.subs_per_team
    say(f"  phase 3: pages over {n} graded submissions, {args.page_requests} requests each, "
        f"{args.concurrency} at once")

    async def run() -> None:
        teams = await joined(server.base, [tokens[x] for x in names[: max(args.concurrency, 1)]])
        [coach] = await joined(server.base, [coach_token], coach=True)
        try:
            pages = [("leaderboard, team view", teams, "/leaderboard"),
                     ("leaderboard, coach view", [coach], "/coach/leaderboard"),
                     ("coach's page (all submissions)", [coach], "/coach"),
                     (f"team page ({args.subs_per_team} submissions)", teams, "/")]
            for figure, who, path in pages:
                cold, status = await who[0].timed_get(path)
                say(f"  {figure}: first request {cold:.0f} ms ({status})")
                done, errors = await hammer(who, path, args.page_requests, args.concurrency,
                                            time.monotonic() + args.phase_s)
                bench.latency(database, f"{figure}, {n} graded", done, PAGE_TARGET_MS, errors)
        finally:
            await close_all([*teams, coach])

    asyncio.run(run())


# ---------------------------------------------------------------- phase 7: grading written answers

QUESTION = """
[[criteria]]
id = "why"
title = "Why the colours are easy"
check = "coach_graded"
points = 2
required = false
question = "Why does a model tell these colours apart so easily?"
fix = "Answer under the question."
params = { min_words = 3 }
comments = ["Give the figure, not only the reason.", "Look at the confusion matrix again."]
[[criteria.items]]
points = 1
text = "Names the figure"
[[criteria.items]]
points = 1
text = "Explains why"
"""


def with_answer(result_json: str, team: str) -> str:
    """``result_json`` (a graded toy submission) with its team's answer to QUESTION, awaiting the coach."""
    from grader.intake import answer_sha256
    from grader.score import CriterionResult, RubricItem, SubmissionResult

    base = SubmissionResult.model_validate_json(result_json)
    nb = base.notebooks[0]
    text = (f"{team}: the three colours sit far apart in RGB space, so even a linear model separates them; "
            "the hidden images are drawn the same way. ") * 3
    row = CriterionResult(id="why", title="Why the colours are easy", status="awaiting", required=False, points=0,
                          max_points=2, message="awaiting the coach", fix="Answer under the question.",
                          coach_graded=True, question="Why does a model tell these colours apart so easily?",
                          rubric_items=[RubricItem(points=1, text="Names the figure"),
                                        RubricItem(points=1, text="Explains why")],
                          answer=text, answer_sha256=answer_sha256(text))
    nb = nb.model_copy(update={"criteria": [*nb.criteria, row], "max_score": nb.max_score + 2})
    return base.model_copy(update={"submission": team, "notebooks": [nb],
                                   "max_score": base.max_score + 2}).model_dump_json()


def phase_grading(bench: Bench, database: str, make_store: Any, base_result: str) -> None:
    """Phase 7 (module docstring): the per-question page and saved grades, TEAMS answers."""
    args = bench.args
    project = bench.tmp / "project-grading"
    if not project.exists():
        shutil.copytree(bench.project, project)
        rubric = project / "rubrics" / "toy.toml"
        rubric.write_text(rubric.read_text(encoding="utf-8") + QUESTION, encoding="utf-8")
    state, url = make_store(f"grading-{database}")
    store = open_store(state, url)
    names = [f"team{i:03d}" for i in range(1, args.teams + 1)]
    created = store.create_event(EVENT, challenges=["toy"], teams=names)
    upload = store.store_upload(io.BytesIO(notebook("grading")), filename="toy.ipynb",
                                max_bytes=64 << 20)
    subs: list[int] = []
    for team in store.teams(EVENT):
        row = store.submit(EVENT, team.id, challenge="toy", upload=upload)
        job = store.claim("bench:grading", lease_s=600)
        if job is None or job.id != row.id:
            raise Failed(f"claimed {job and job.id} instead of the inserted submission {row.id}")
        text = with_answer(base_result, team.name)
        store.finish(row.id, "bench:grading", result_json=text, scorecard_html="<p>bench</p>", verdict="pass",
                     score=1, max_score=1)
        subs.append(row.id)
    store.close()
    say(f"  phase 7: grading written answers, {len(subs)} teams' answers to one question")
    server = Server(bench, state, url, project=project)
    page = "/coach/grading/toy/why"
    try:
        server.start(args.serve_workers, f"{database}-grading")

        async def run() -> None:
            [coach] = await joined(server.base, [created.coach_token], coach=True)
            try:
                cold, status = await coach.timed_get(page)
                say(f"  question page: first request {cold:.0f} ms ({status})")
                done, errors = await hammer([coach], page, args.page_requests, 1, time.monotonic() + args.phase_s)
                bench.latency(database, f"grading: question page, {len(subs)} teams' answers", done,
                              QUESTION_PAGE_TARGET_MS, errors)
                saved: list[float] = []
                failed = 0
                for sub_id in subs[: args.page_requests]:
                    t0 = time.perf_counter()
                    answer = await coach.client.post(f"{page}/{sub_id}", headers={"Accept": "application/json"},
                                                     data={"csrf": coach.csrf, "items": ["1", "2"],
                                                           "comment": "Clear."})
                    if answer.status_code == 200 and answer.json().get("ok"):
                        saved.append((time.perf_counter() - t0) * 1000)
                    else:
                        failed += 1
                bench.latency(database, "grading: a grade saved (one coach)", saved, GRADE_SAVED_TARGET_MS, failed)
                after, status = await coach.timed_get(page)
                say(f"  question page after {len(saved)} grades: {after:.0f} ms ({status})")
            finally:
                await close_all([coach])

        asyncio.run(run())
    finally:
        server.stop()


# ---------------------------------------------------------------- phase 6: similar pairs, public data at start

SIMILAR_EVENT = "similar"
NEW_RESULTS = 10  # results added while the server runs, each followed by a view (the pairs computed again)


def similar_setup(bench: Bench) -> tuple[Path, Path, str]:
    """Phase 6's (project, data folder, challenge): the real project and gear-cnn where ``GRADER_DATA_DIR`` holds
    gear (not with --quick), else the toy."""
    data = os.environ.get("GRADER_DATA_DIR")
    if not bench.args.quick and data and (Path(data) / "gear").is_dir():
        return ROOT, Path(data).resolve(), "gear-cnn"
    return bench.project, bench.data, "toy"


def similar_cohort(project: Path, data: Path, cache: Path, challenge_id: str, teams: int, *,
                   seed: int = 28) -> list[tuple[str, str]]:
    """Per team, (result JSON, kept code) of one graded notebook of ``challenge_id``. The code: 6 to 12 code cells
    drawn from all the reference solutions (teams share cells, as tutorials make them), team 1 handing in team 0's
    notebook; the answers on the hidden test set (listed in ``cache``, where the server will find it): an error
    rate of 0.05 to 0.4 spread by each image's difficulty (Beta(0.4, 3)), the wrong class the next one or any
    other, team 3 handing in team 2's model."""
    import nbformat
    import numpy as np

    from grader.core import load_challenge
    from grader.core.settings import resolve_settings
    from grader.data import ensure_hidden_test_set
    from grader.score.measure import measure
    from grader.score.scorecard import Environment, ExecutionSummary, ModelReport, NotebookResult, SubmissionResult

    settings = resolve_settings(data_dir=str(data), cache_dir=str(cache), project_dir=str(project))
    challenge = load_challenge(settings.project_dir, challenge_id)
    hidden = ensure_hidden_test_set(settings, challenge)
    classes = list(challenge.dataset.classes)
    labels = np.array([classes.index(label) for label in hidden.labels])
    cells = [str(c.source) for path in sorted((ROOT / "reference_solutions").glob("*/*.ipynb"))
             for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and str(c.source).strip()]
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(0.4, 3.0, len(labels))
    codes: list[str] = []
    answers: list[Any] = []
    for team in range(teams):
        picked = sorted(rng.choice(len(cells), size=int(rng.integers(6, 13)), replace=False))
        code = "\n".join(f"# cell {i + 1}\n{cells[j]}\n" for i, j in enumerate(picked))
        codes.append(codes[0] if team == 1 else code)
        wrong = rng.random(len(labels)) < np.minimum(1.0, difficulty / difficulty.mean() * rng.uniform(0.05, 0.4))
        other = np.where(rng.random(len(labels)) < 0.5, (labels + 1) % len(classes),
                         (labels + rng.integers(1, len(classes), len(labels))) % len(classes))
        answers.append(answers[2] if team == 3 else np.where(wrong, other, labels))
    out = []
    for team, (code, answer) in enumerate(zip(codes, answers, strict=True)):
        names = [classes[int(i)] for i in answer]
        model = ModelReport.of("predict", "predict", measure(list(hidden.labels), names, classes), 1.0,
                               correct=[bool(a == b) for a, b in zip(answer, labels, strict=True)],
                               public=hidden.public, predictions=names)
        nb = NotebookResult(notebook=f"{challenge_id}.ipynb", challenge=challenge_id, profile="ci", verdict="pass",
                            score=1, max_score=1, criteria=[], models=[model],
                            execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1.0,
                                                       sandboxed=True, probe_status="ok", cells=[]))
        result = SubmissionResult(submission=f"team{team:03d}", path="", verdict="pass", score=1, max_score=1,
                                  notebooks=[nb], started="", finished="",
                                  environment=Environment(grader="bench", python="3", platform="linux", device="cpu",
                                                          sandbox="none"))
        out.append((result.model_dump_json(), code))
    return out


def insert_similar(store: Any, challenge: str, team_id: int, result_json: str, code: str) -> bool:
    """One graded submission of ``team_id`` with ``result_json``, its code kept as the workers keep it
    (``<state>/code/<id>.json``, written before the result); False when a server's worker claimed it first (it then
    grades the stand-in upload itself, which fails: the sample is left out)."""
    import io
    import json

    from grader.server.work.worker import CODE_FOLDER

    upload = store.store_upload(io.BytesIO(code.encode()), filename=f"{challenge}.ipynb", max_bytes=64 << 20)
    row = store.submit(SIMILAR_EVENT, team_id, challenge=challenge, upload=upload)
    (store.state_dir / CODE_FOLDER).mkdir(exist_ok=True)
    (store.state_dir / CODE_FOLDER / f"{row.id}.json").write_text(json.dumps({f"{challenge}.ipynb": code}))
    job = store.claim("bench:similar", lease_s=600)
    if job is None or job.id != row.id:
        return False
    return bool(store.finish(row.id, "bench:similar", result_json=result_json, scorecard_html="", verdict="pass",
                             score=1, max_score=1))


def logged_ready_s(log: Path, challenge: str, timeout_s: float) -> float | None:
    """The seconds the server's start-up thread logged building ``challenge``'s public-data zip (None: it logged
    none within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(rf"public data of {re.escape(challenge)} ready: .* after ([\d.]+) s",
                          log.read_text(errors="replace"))
        if found:
            return float(found[1])
        if re.search(rf"public data of {re.escape(challenge)} not built", log.read_text(errors="replace")):
            return None
        time.sleep(0.2)
    return None


def phase_similar(bench: Bench, database: str, make_store: Any) -> None:
    """Phase 6: the public data at start and /coach/similar over SIMILAR_TEAMS teams (module docstring)."""
    args = bench.args
    project, data, challenge = similar_setup(bench)
    cache = Path(tempfile.mkdtemp(prefix="cache-similar-", dir=bench.tmp))
    teams = args.similar_teams
    say(f"  phase 6: {challenge} ({'the real project and data' if project == ROOT else 'the toy'}), {teams} teams")
    cohort = similar_cohort(project, data, cache, challenge, teams + NEW_RESULTS)
    state, url = make_store("similar")
    store = open_store(state, url)
    names = [f"team{i:03d}" for i in range(teams)]
    created = store.create_event(SIMILAR_EVENT, challenges=[challenge], teams=names)
    ids = {t.name: t.id for t in store.teams(SIMILAR_EVENT)}
    for name, (result_json, code) in zip(names, cohort, strict=False):
        if not insert_similar(store, challenge, ids[name], result_json, code):
            raise Failed("a stopped server's submission was claimed by someone else")
    server = Server(bench, state, url, project=project, data=data, cache=cache, event=SIMILAR_EVENT, verbose=True)
    server.start(1, f"{database}-similar")
    zip_path = f"/challenges/{challenge}/public-data.zip"

    async def run() -> None:
        [team] = await joined(server.base, [created.team_tokens[names[0]]])
        [coach] = await joined(server.base, [created.coach_token], coach=True)
        try:
            first, status = await team.timed_get(zip_path)
            built = logged_ready_s(server.log, challenge, 600)
            deadline = time.monotonic() + 120  # the start-up thread's warm-ups follow the zip: let them end
            while (time.monotonic() < deadline and not re.search(r"start-up: the similar pairs of the results so far ",
                                                                 server.log.read_text(errors="replace"))):
                await asyncio.sleep(0.2)
            again, status_again = await team.timed_get(zip_path)
            size = len((await team.client.get(zip_path)).content) / 1e6
            say(f"  {zip_path}: asked at once {first / 1000:.1f} s ({status}); built at start in "
                f"{'?' if built is None else f'{built:.1f}'} s; then {again:.0f} ms ({status_again}), {size:.0f} MB")
            bench.rows.append(Row(database, f"public-data.zip ({challenge}), asked at start",
                                  f"{first / 1000:6.1f} s (waits for the build begun at start)", "", None))
            bench.rows.append(Row(database, f"public-data.zip ({challenge}), built at start in",
                                  "not logged" if built is None else f"{built:6.1f} s ({size:.0f} MB)", "", None))
            bench.rows.append(Row(database, f"public-data.zip ({challenge}), a download after start-up",
                                  f"{again:7.1f} ms ({status_again})", "", None))
            warmed = re.search(r"start-up: the similar pairs of the results so far in ([\d.]+) s",
                               server.log.read_text(errors="replace"))
            say(f"  /coach/similar: computed by the start-up thread in {warmed[1] if warmed else '?'} s")
            bench.rows.append(Row(database, f"/coach/similar, {teams} teams, computed at start in",
                                  f"{float(warmed[1]):6.1f} s (in the background)" if warmed else "not logged", "",
                                  None))
            cold, status = await coach.timed_get("/coach/similar")
            say(f"  /coach/similar: first view {cold:.0f} ms ({status})")
            computed = [cold] if status == 200 else []
            for n, (result_json, code) in enumerate(cohort[teams:]):
                if insert_similar(store, challenge, ids[names[(5 * n) % teams]], result_json, code):
                    ms, status = await coach.timed_get("/coach/similar")
                    computed += [ms] if status == 200 else []
            say(f"  /coach/similar after each of {len(computed) - 1} new results: "
                f"{', '.join(f'{ms:.0f}' for ms in computed[1:])} ms")
            bench.latency(database, f"/coach/similar, {teams} teams, first view", [cold], None)
            bench.latency(database, f"/coach/similar, {teams} teams, after a new result (cold)", computed[1:],
                          SIMILAR_TARGET_MS)
            done, errors = await hammer([coach], "/coach/similar", args.page_requests, args.concurrency,
                                        time.monotonic() + args.phase_s)
            bench.latency(database, f"/coach/similar, {teams} teams, kept (warm)", done, SIMILAR_TARGET_MS, errors)
        finally:
            await close_all([team, coach])

    try:
        asyncio.run(run())
    finally:
        server.stop()
        store.close()


def phase_throughput(bench: Bench, database: str, make_store: Any) -> None:
    """Phase 4: NOTEBOOKS uploads graded by a fresh server with each worker count."""
    args = bench.args
    folders = check_folders(bench)
    for workers in args.worker_counts:
        tag = f"{database}-w{workers}"
        # grader check just before each server run: the shared machine's load drifts over minutes
        check = check_throughput(bench, folders, workers, tag)
        state, url = make_store(tag)
        store = open_store(state, url)
        names = [f"team{i:03d}" for i in range(1, args.notebooks + 1)]
        created = store.create_event(EVENT, challenges=["toy"], teams=names)
        ids = {t.name: t.id for t in store.teams(EVENT)}
        server = Server(bench, state, url)
        server.start(workers, tag)
        try:
            t0, answers = asyncio.run(upload_all(server.base, [created.team_tokens[n] for n in names],
                                                 [f"throughput {n}" for n in names]))
            acked = {ids[n]: 1 for n, (_, status) in zip(names, answers, strict=True) if status == 303}
            wait_graded(store, len(acked), 60 + 30 * len(names), server)
            last = max(r.created for _, _, r in store.results(EVENT))
            wall = last.timestamp() - t0
            rate = len(acked) / wall * 60
            runs = [(r.finished_at - r.started_at).total_seconds() for r in store.submissions(EVENT)
                    if r.started_at is not None and r.finished_at is not None]
            say(f"  {workers} workers: each job {sum(runs) / max(1, len(runs)):.1f} s from its claim to its result "
                f"(mean), {wall:.1f} s in all")
            account(bench, database, f"throughput, {workers} workers", store, acked, graded=True)
            ratio = rate / check
            value = (f"{wall:6.1f} s, {rate:5.1f} subs/min; grader check --jobs {workers}: {check:5.1f}; "
                     f"ratio {ratio:.2f}")
            bench.rows.append(Row(database, f"grading {len(names)} notebooks, {workers} workers", value,
                                  "ratio >= 0.90", ratio >= THROUGHPUT_TARGET))
            say(f"  {workers} workers: {value}")
        finally:
            server.stop()
            store.close()


def check_folders(bench: Bench) -> list[str]:
    """The phase-4 notebooks as submission folders (``toy.ipynb`` and ``new_images/``) for grader check
    (written once)."""
    folders = []
    for i in range(1, bench.args.notebooks + 1):
        folder = bench.tmp / "check-subs" / f"team{i:03d}"
        folders.append(str(folder))
        if folder.exists():
            continue
        (folder / "new_images").mkdir(parents=True)
        (folder / "toy.ipynb").write_bytes(notebook(f"throughput team{i:03d}"))
        for name, data in new_images():
            (folder / "new_images" / name).write_bytes(data)
    return folders


def check_throughput(bench: Bench, folders: list[str], jobs: int, tag: str) -> float:
    """``grader check --jobs JOBS --no-cache`` on ``folders`` (a fresh cache): submissions per minute."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=bench.tmp))
    env = {**os.environ, "GRADER_PROJECT_DIR": str(bench.project), "GRADER_DATA_DIR": str(bench.data),
           "GRADER_CACHE_DIR": str(cache)}
    out = bench.tmp / f"check-out-{tag}"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader", "check", *folders, "--out", str(out), "--jobs",
                           str(jobs), "--no-cache", "--sandbox", bench.args.sandbox], env=env, capture_output=True,
                          text=True, timeout=60 + 30 * len(folders), check=False)
    wall = time.perf_counter() - t0
    passed = len(re.findall(r"\] \S+: PASS", done.stderr))
    each = [int(x) for x in re.findall(r"\] \S+: \w+ .* in (\d+) s", done.stderr)]
    if done.returncode not in (0, 1) or passed != len(folders):
        bench.failures.append(f"grader check --jobs {jobs}: exit {done.returncode}, {passed}/{len(folders)} passed")
        say(done.stderr[-2000:])
    rate = len(folders) / wall * 60
    say(f"  grader check --jobs {jobs} --no-cache: {wall:.1f} s, {rate:.1f} subs/min, {passed}/{len(folders)} "
        f"passed, each {sum(each) / max(1, len(each)):.1f} s (mean, whole seconds)")
    return rate


def run_database(bench: Bench, database: str, pg_port: int | None) -> None:
    args = bench.args
    say(f"# {database}")

    def make_store(tag: str) -> tuple[Path, str | None]:
        state = bench.tmp / f"state-{tag}"
        url = create_database(pg_port, re.sub(r"\W", "_", f"bench_{tag}")) if pg_port is not None else None
        return state, url

    state, url = make_store("pages")
    store = open_store(state, url)
    names = [f"team{i:03d}" for i in range(1, args.teams + 1)]
    created = store.create_event(EVENT, challenges=["toy"], teams=names)
    ids = {t.name: t.id for t in store.teams(EVENT)}
    server = Server(bench, state, url)
    try:
        server.start(args.serve_workers, f"{database}-pages")
        acked = {} if "uploads" in args.skip else phase_uploads(bench, database, server, store,
                                                                created.team_tokens, ids)
        graded = [s[0] for subs in counts(store).values() for s in subs if s[2] == 1]
        base_result = store.result(min(graded)).result_json if graded else None
        if "polling" not in args.skip:
            phase_polling(bench, database, server, store, created.team_tokens, ids)
        if "slow" not in args.skip:
            phase_slow(bench, database, server, created.team_tokens)
        server.stop()
        if "pages" not in args.skip:
            total = insert_results(bench, store, ids, acked)
            account(bench, database, "inserted", store, total, graded=True)
            server.start(args.serve_workers, f"{database}-pages-2")
            phase_pages(bench, database, server, created.team_tokens, created.coach_token)
    finally:
        server.stop()
        store.close()
    if "grading" not in args.skip and base_result is not None:
        phase_grading(bench, database, make_store, base_result)
    if "similar" not in args.skip and database == args.databases[0]:
        phase_similar(bench, database, make_store)
    if "throughput" not in args.skip:
        phase_throughput(bench, database, make_store)


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start, {datetime.now():%Y-%m-%d %H:%M} local")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--uploaders", type=int, default=50)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--poll-interval", type=float, default=2.0,
                        help="seconds between a team's polls (default 2: the page's fallback polling)")
    parser.add_argument("--subs-per-team", type=int, default=20)
    parser.add_argument("--page-requests", type=int, default=40, help="requests per page in phase 3 (default 40)")
    parser.add_argument("--concurrency", type=int, default=10, help="clients at once in phase 3 (default 10)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts of phase 4 (default 1,2,4)")
    parser.add_argument("--serve-workers", type=int, default=2, help="workers of the server of phases 1-3 (default 2)")
    parser.add_argument("--notebooks", type=int, default=16, help="notebooks graded in phase 4 (default 16)")
    parser.add_argument("--phase-s", type=float, default=180, help="deadline of each timed phase, s (default 180)")
    parser.add_argument("--sandbox", choices=["bwrap", "none"], default="bwrap" if shutil.which("bwrap") else "none")
    parser.add_argument("--slow-connections", type=int, default=200,
                        help="slow connections held open in phase 5 (default 200)")
    parser.add_argument("--slow-s", type=float, default=40,
                        help="seconds of phase 5 (default 40: longer than the server's 30 s body timeout)")
    parser.add_argument("--pollers", type=int, default=50, help="teams polling their page in phase 5 (default 50)")
    parser.add_argument("--similar-teams", type=int, default=60,
                        help="teams of phase 6's /coach/similar (default 60: issue 28's target)")
    parser.add_argument("--skip", default="",
                        help="phases left out: uploads, polling, slow, pages, throughput, similar, grading "
                             "(comma-separated)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 12 teams, 4 uploaders, 2 polls, 2 submissions each, workers 1, 2 notebooks")
    args = parser.parse_args()
    if args.quick:
        args.teams, args.uploaders, args.polls, args.subs_per_team = 12, 4, 2, 2
        args.workers, args.notebooks, args.page_requests, args.concurrency = "1", 2, 10, 4
        args.poll_interval, args.slow_connections, args.slow_s, args.pollers = 0.5, 10, 3, 4
        args.similar_teams = 6
    args.worker_counts = [int(n) for n in args.workers.split(",")]
    args.skip = {x for x in args.skip.split(",") if x}
    phases = {"uploads", "polling", "slow", "pages", "throughput", "similar", "grading"}
    if args.skip - phases:
        parser.error(f"--skip {','.join(sorted(args.skip))}: choose among {', '.join(sorted(phases))}")
    args.slow_connections = max(0, min(args.slow_connections, 1000))  # bounded: only 127.0.0.1, at most 1000
    args.pollers = max(1, min(args.pollers, args.teams - 1))
    args.uploaders = min(args.uploaders, args.teams)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    args.databases = databases
    header = machine()
    say(f"# {header}; sandbox {args.sandbox}")
    previous = signal.signal(signal.SIGTERM, _terminate)
    children = Children()
    tmp = Path(tempfile.mkdtemp(prefix="grader-bench-server-"))
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            project, data = build_toy(tmp)
            bench = Bench(args=args, tmp=tmp, project=project, data=data, children=children)
            for database in databases:
                port = stack.enter_context(postgres()) if database == "postgresql" else None
                run_database(bench, database, port)
    except Failed as err:
        say(f"FAILED: {err}")
        return 1
    except KeyboardInterrupt:
        say("interrupted: servers stopped, temporary folders removed")
        return 130
    finally:
        children.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    say("")
    end = os.getloadavg()
    say(f"# the event server under load: {header}; sandbox {args.sandbox}; {time.monotonic() - started:.0f} s; "
        f"load average {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end")
    for row in bench.rows:
        verdict = "" if row.ok is None else ("PASS" if row.ok else "MISS")
        say(f"{row.database:10} {row.figure:52} {row.value:70} {row.target:15} {verdict}")
    for failure in bench.failures:
        say(f"NOT ACCOUNTED: {failure}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
