"""Memory of the event server under many large uploads at once (issue 25).

Starts the real server (``grader serve --workers 1``, a separate process on 127.0.0.1) on a throwaway
toy project (tests/support/toy.py) with one team per upload, signs every team in, then sends UPLOADS uploads of
SIZE MiB at the same moment (asyncio and httpx in this process, each body streamed in 1 MiB pieces
with its Content-Length, as a browser sends a form: a notebook whose one output is SIZE MiB of text).
The server's resident memory (``/proc/PID/status``: ``VmRSS`` before, ``VmHWM`` the peak) is read
before and after; the grading child's process is not the server's and is not counted. Runs once per
count in ``--counts`` (default 20 and 100), each on a fresh server, so that the peak can be compared:
bounded means it does not grow with the count. Each upload's answer is counted (303 stored, 503 beyond
the server's ``max_uploads`` with Retry-After, other), and every 303 must be in the database.

Bounded: one round per count (the refused uploads are not sent again), a deadline per round, only
127.0.0.1; the server and the temporary folders are removed on the way out (also on Ctrl-C).

Usage: .venv/bin/python benchmarks/uploads.py [--counts 20,100] [--size-mib 60] [--deadline-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/support/net.py, toy.py: what the tests use (no pytest import)
from tests.support.net import free_port, listening, stop_group  # noqa: E402
from tests.support.toy import build_toy  # noqa: E402

EVENT = "uploads"
MIB = 1 << 20
BOUNDARY = "b0undaryb0undary"


def kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def form_parts(csrf: str, size: int, marker: str) -> tuple[bytes, bytes, int]:
    """The upload form's bytes before and after the notebook's ``A`` run, and that run's length: a
    notebook of ``size`` bytes in all, its one output a stream of ``A``."""
    head = json.dumps({"cells": [{"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {},
                                  "source": f"# {marker}", "outputs": [{"output_type": "stream", "name": "stdout",
                                                                       "text": "@@"}]}],
                       "metadata": {"grader": {"challenge": "toy"}}, "nbformat": 4, "nbformat_minor": 5})
    before, after = (p.encode() for p in head.split("@@"))
    start = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
             f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="challenge"\r\n\r\ntoy\r\n'
             f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.ipynb"\r\n'
             "Content-Type: application/x-ipynb+json\r\n\r\n").encode() + before
    end = after + f"\r\n--{BOUNDARY}--\r\n".encode()
    return start, end, size - len(before) - len(after)


async def sign_in(client: object, token: str) -> str:
    page = await client.get(f"/join/{token}")  # type: ignore[attr-defined]
    fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', page.text))
    home = await client.post(f"/join/{token}", data=fields, follow_redirects=True)  # type: ignore[attr-defined]
    found = re.search(r'name="csrf" value="([^"]+)"', home.text)
    if found is None:
        raise RuntimeError(f"no CSRF token after joining ({home.status_code})")
    return found[1]


async def one_round(base: str, tokens: list[str], size: int, pid: int, deadline_s: float) -> tuple[Counter[int],
                                                                                                  int, float]:
    """Sign every team in, then upload at once; the answers' statuses, the RSS before (KiB) and the wall time."""
    import httpx

    # idle connections dropped after 1 s: the server closes them after 5 s (its keep-alive), and a POST
    # sent on one it has just closed fails in the client, not the server
    limits = httpx.Limits(max_connections=len(tokens) + 10, keepalive_expiry=1.0)
    clients = [httpx.AsyncClient(base_url=base, timeout=deadline_s, limits=limits) for _ in tokens]
    try:
        csrfs = [await sign_in(c, t) for c, t in zip(clients, tokens, strict=True)]
        block = b"A" * MIB
        errors: Counter[str] = Counter()

        async def upload(client: httpx.AsyncClient, csrf: str, marker: str) -> int:
            start, end, run = form_parts(csrf, size, marker)

            async def body() -> AsyncIterator[bytes]:
                yield start
                left = run
                while left > 0:
                    yield block[:min(MIB, left)]
                    left -= MIB
                yield end

            try:
                answer = await client.post("/submit", content=body(), headers={
                    "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                    "content-length": str(len(start) + run + len(end))})
            except httpx.HTTPError as err:  # counted apart: the connection failed (its kind is printed)
                errors[type(err).__name__] += 1
                return 0
            return answer.status_code

        before = kib(pid, "VmRSS")
        t0 = time.monotonic()
        codes = await asyncio.wait_for(asyncio.gather(*(upload(c, s, f"u{i}") for i, (c, s)
                                                        in enumerate(zip(clients, csrfs, strict=True)))), deadline_s)
        if errors:
            print(f"  connection errors: {dict(errors)}", flush=True)
        return Counter(codes), before, time.monotonic() - t0
    finally:
        for c in clients:
            await c.aclose()


def run_count(count: int, args: argparse.Namespace, tmp: Path, project: Path, data: Path) -> str:
    from grader.server.store.store import Store

    state = tmp / f"state-{count}"
    store = Store(state)
    created = store.create_event(EVENT, challenges=["toy"], teams=[f"team{i}" for i in range(count)])
    store.close()
    port = free_port()
    env = {**os.environ, "GRADER_PROJECT_DIR": str(project), "GRADER_DATA_DIR": str(data),
           "GRADER_CACHE_DIR": str(tmp / f"cache-{count}")}
    log = tmp / f"serve-{count}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "grader", "serve", "--event", EVENT, "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1", "--state", str(state), "--sandbox", "none"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"grader serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        codes, before, wall = asyncio.run(one_round(f"http://127.0.0.1:{port}", list(created.team_tokens.values()),
                                                    args.size_mib * MIB, proc.pid, args.deadline_s))
        peak = kib(proc.pid, "VmHWM")
        store = Store(state)
        stored = len(store.submissions(EVENT))
        store.close()
        lost = "" if stored == codes[303] else f"; {codes[303]} acknowledged but {stored} stored: LOST"
        if codes[0]:
            print(log.read_text(errors="replace")[-3000:], flush=True)
        other = sum(codes.values()) - codes[303] - codes[503]
        return (f"{count} uploads of {args.size_mib} MiB at once: {codes[303]} stored (303), {codes[503]} refused "
                f"503 (Retry-After), {other} other ({codes[0]} of them connection errors), in {wall:.1f} s; "
                f"server RSS {before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB "
                f"(+{(peak - before) / 1024:.0f} MiB){lost}")
    finally:
        stop_group(proc, timeout_s=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--counts", default="20,100", help="uploads at once, one round each (default 20,100)")
    parser.add_argument("--size-mib", type=int, default=60, help="each upload's size in MiB (default 60)")
    parser.add_argument("--deadline-s", type=float, default=600.0, help="a round's deadline (default 600 s)")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = Path(tempfile.mkdtemp(prefix="grader-bench-uploads-"))
    lines = []
    try:
        settings = build_toy(tmp / "project", seed="bench")
        assert settings.data_dir is not None
        for count in counts:
            line = run_count(count, args, tmp, settings.project_dir, settings.data_dir)
            print(line, flush=True)
            lines.append(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    return 1 if any("LOST" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
