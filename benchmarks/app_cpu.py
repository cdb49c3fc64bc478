"""The event server's own CPU per request, in process: what an upload and a team's page cost the
server's one interpreter, without HTTP, the network or the benchmark's client (issue 28).

``benchmarks/server.py`` times requests through real servers; on a 2-core VM its figures move by a
third from one run to the next, and a change of a tenth of a millisecond per upload is lost in them.
Here the event server's ASGI app (``grader.server.web.create_app``, no grading workers) is called
directly in this process, its worker threads as ``grader serve`` runs them, and the CPU time of
the whole process (:func:`time.process_time`, every thread) is divided by the requests:

1. Uploads: UPLOADS teams each open their page (the server reads its team once) and upload a
   distinct toy notebook with two new images (``benchmarks/server.py``'s form), AT_ONCE at a time:
   the checks, the bundle, the stored file, the group commit, the answer.
2. A team's page over TEAMS teams x SUBS graded submissions (results built by hand as the tests'
   ``result()``, one scorecard's HTML for all): ten teams' pages four times over (the first round
   cold: each result's team view computed), then the public leaderboard.

The process keeps its threads on one CPU (:func:`grader.server.cpus.pin_server`) and freezes its
start-up objects out of the collector (``gc.freeze``), as ``grader serve`` does. Nothing is
listening; every file is in a temporary folder removed on the way out.

Usage: .venv/bin/python benchmarks/app_cpu.py [--uploads 200] [--at-once 50] [--teams 200] [--subs 20]
       [--skip uploads,pages]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support/toy.py, tests/server/test_server_app.py: what the tests use
from tests.server.test_server_app import result  # noqa: E402
from tests.support.toy import GOOD_TOY_CELLS, build_toy, toy_notebook, toy_png  # noqa: E402

Headers = list[tuple[bytes, bytes]]


async def call(app: Any, method: str, path: str, headers: Headers, body: bytes = b"") -> int:
    """One request through ``app`` (ASGI 3, HTTP/1.1, the body in one piece); its status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "root_path": ""}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # never: the app reads no more than the body
        return {"type": "http.disconnect"}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def signed_in(store: Any, event: str, tokens: Sequence[str]) -> list[Headers]:
    """A browser's headers (its session cookie, Accept: text/html) for each of the teams' ``tokens``."""
    from grader.server.store.sessions import Sessions, digest

    sessions = Sessions(store)
    out = []
    for token in tokens:
        started = sessions.start(event, team_token_hash=digest(token))
        assert started is not None
        out.append([(b"cookie", f"grader_session={started[0]}".encode()), (b"accept", b"text/html"),
                    (b"x-csrf", started[1].csrf.encode())])
    return out


def per_request(start: float, count: int) -> str:
    return f"{(time.process_time() - start) / count * 1000:6.2f} ms of CPU a request (n={count})"


def bench_uploads(root: Path, uploads: int, at_once: int) -> None:
    import httpx
    import nbformat

    from grader.server.store.store import Store
    from grader.server.web import AppOptions, create_app

    settings = build_toy(root / "project")
    store = Store(root / "state")
    created = store.create_event("bench", challenges=["toy"], teams=[f"team{i:03d}" for i in range(uploads + 1)],
                                 cap_per_day=None)
    app = create_app(store, settings, workers=None, options=AppOptions())
    browsers = signed_in(store, "bench", list(created.team_tokens.values()))
    requests = []
    for i, browser in enumerate(browsers):
        notebook = str(nbformat.writes(toy_notebook([*GOOD_TOY_CELLS, f"# {i}"]))).encode()
        files = [("files", ("toy.ipynb", notebook, "application/x-ipynb+json")),
                 *[("files", (f"new{j}.png", toy_png((200, 120, 40), 4 * j, (64, 48)), "image/png")) for j in range(2)]]
        csrf = dict(browser)[b"x-csrf"].decode()
        form = httpx.Request("POST", "http://127.0.0.1/submit", data={"challenge": "toy", "csrf": csrf}, files=files)
        body = form.read()
        requests.append(([*browser[:2], *[(k.lower().encode(), v.encode()) for k, v in form.headers.items()]], body))

    async def run() -> None:
        for browser in browsers:  # each team has opened its page: the server knows its team
            assert await call(app, "GET", "/", browser[:2]) == 200
        assert await call(app, "POST", "/submit", *requests[0]) == 303  # the first, apart: first-use costs
        gc.collect()
        gc.freeze()
        gate = asyncio.Semaphore(at_once)

        async def one(headers: Headers, body: bytes) -> int:
            async with gate:
                return await call(app, "POST", "/submit", headers, body)

        start = time.process_time()
        statuses = await asyncio.gather(*(one(h, b) for h, b in requests[1:]))
        print(f"{f'upload ({at_once} at once)':56}{per_request(start, len(statuses))}", flush=True)
        assert set(statuses) == {303}, sorted(set(statuses))

    asyncio.run(run())
    store.close()


def bench_pages(root: Path, teams: int, subs: int) -> None:
    from grader.report.render import render_scorecard
    from grader.server.store.store import Store
    from grader.server.web import AppOptions, create_app

    settings = build_toy(root / "project-pages")
    store = Store(root / "state-pages")
    created = store.create_event("bench", challenges=["toy"], teams=[f"team{i:03d}" for i in range(teams)],
                                 cap_per_day=None)
    rows = store.teams("bench")
    graded = [result(f"r{k}", 10 + k % 10, 5 + k % 15) for k in range(20)]
    jsons, html = [g.model_dump_json() for g in graded], render_scorecard(graded[0])
    t0 = time.monotonic()
    for j in range(subs):
        upload = store.store_upload(io.BytesIO(f"notebook {j}".encode()), filename="toy.ipynb", max_bytes=1 << 20)
        for team in rows:
            store.submit("bench", team.id, challenge="toy", upload=upload)
        while (job := store.claim("bench-worker", lease_s=600)) is not None:
            store.finish(job.id, "bench-worker", result_json=jsons[job.id % len(jsons)], scorecard_html=html,
                         verdict="pass", score=3, max_score=3)
    print(f"# {teams} teams x {subs} graded submissions stored in {time.monotonic() - t0:.0f} s", flush=True)
    app = create_app(store, settings, workers=None, options=AppOptions())
    browsers = [b[:2] for b in signed_in(store, "bench", list(created.team_tokens.values())[:10])]

    async def run() -> None:
        assert await call(app, "GET", "/leaderboard", browsers[0]) == 200  # the boards built once
        gc.collect()
        gc.freeze()
        for round_ in range(4):
            start = time.process_time()
            for browser in browsers:
                assert await call(app, "GET", "/", browser) == 200
            label = f"team page, round {round_ + 1} ({'cold: each result team view made' if round_ == 0 else 'warm'})"
            print(f"{label:56}{per_request(start, len(browsers))}", flush=True)
        start = time.process_time()
        for _ in range(4):
            for browser in browsers:
                assert await call(app, "GET", "/leaderboard", browser) == 200
        print(f"{'leaderboard, team view':56}{per_request(start, 4 * len(browsers))}", flush=True)

    asyncio.run(run())
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=200, help="uploads timed in phase 1 (default 200)")
    parser.add_argument("--at-once", type=int, default=50, help="uploads in flight at once (default 50)")
    parser.add_argument("--teams", type=int, default=200, help="teams of phase 2 (default 200)")
    parser.add_argument("--subs", type=int, default=20, help="graded submissions per team in phase 2 (default 20)")
    parser.add_argument("--skip", default="", help="phases left out: uploads, pages (comma-separated)")
    args = parser.parse_args()
    skip = {x for x in args.skip.split(",") if x}
    if skip - {"uploads", "pages"}:
        parser.error(f"--skip {args.skip}: choose among uploads, pages")
    load = os.getloadavg()
    print(f"# {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average "
          f"{load[0]:.2f} at start; the event server's app in process, CPU of every thread", flush=True)
    from grader.server.cpus import pin_server

    pin_server()  # as grader serve: its threads on one CPU (the GIL not handed between CPUs)
    root = Path(tempfile.mkdtemp(prefix="grader-bench-app-"))
    try:
        if "uploads" not in skip:
            bench_uploads(root, max(2, args.uploads), max(1, args.at_once))
        if "pages" not in skip:
            bench_pages(root, max(10, args.teams), max(1, args.subs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
