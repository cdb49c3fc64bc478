"""The server's threads on one CPU, its children on all (grader/server/cpus.py), and its start-up objects
frozen out of the garbage collector's passes: a fresh interpreter, then a real ``grader serve`` whose
threads and grading child are read from ``/proc``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from grader.core.settings import Settings
from grader.server.store.store import Store
from tests.support.net import free_port, listening

ROOT = Path(__file__).resolve().parents[2]
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

pytestmark = pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs or more (os.sched_setaffinity, Linux)")


def _allowed(pid: int, tid: int | None = None) -> list[int]:
    """The CPUs ``/proc`` says a process (or one of its threads) may run on."""
    path = Path(f"/proc/{pid}/task/{tid}/status" if tid is not None else f"/proc/{pid}/status")
    for line in path.read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            listed = line.split(":", 1)[1].strip()
            out: list[int] = []
            for part in listed.split(","):
                low, _, high = part.partition("-")
                out += list(range(int(low), int(high or low) + 1))
            return out
    raise AssertionError(f"no Cpus_allowed_list in {path}")


def test_pinned_threads_and_unpinned_children() -> None:
    """A thread started before the pin and one started after both run on the chosen CPU; a child that
    calls ``unpin_child`` gets every CPU back, one that does not stays on the server's."""
    script = textwrap.dedent("""
        import json, os, subprocess, sys, threading
        from grader.core import SERVER_CPUS_ENV
        from grader.server.cpus import pin_server
        release = threading.Event()
        early = threading.Thread(target=release.wait); early.start()
        cpu = pin_server()
        late = threading.Thread(target=release.wait); late.start()
        child = "import json, os, sys; from grader.server.cpus import unpin_child; " \\
                "sys.argv[1] == 'unpin' and unpin_child(); print(json.dumps(sorted(os.sched_getaffinity(0))))"
        run = lambda how: json.loads(subprocess.run([sys.executable, "-c", child, how], capture_output=True,
                                                    text=True, check=True, env=dict(os.environ)).stdout)
        print(json.dumps({"cpu": cpu, "main": sorted(os.sched_getaffinity(0)),
                          "early": sorted(os.sched_getaffinity(early.native_id)),
                          "late": sorted(os.sched_getaffinity(late.native_id)), "env": os.environ[SERVER_CPUS_ENV],
                          "unpinned": run("unpin"), "pinned": run("stay")}))
        release.set()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["cpu"] == [CPUS[-1], CPUS]
    assert seen["main"] == seen["early"] == seen["late"] == seen["pinned"] == [CPUS[-1]]
    assert seen["unpinned"] == CPUS
    assert seen["env"] == ",".join(map(str, CPUS))


def test_unpin_child_ignores_a_missing_or_malformed_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.core import SERVER_CPUS_ENV
    from grader.server.cpus import unpin_child

    before = os.sched_getaffinity(0)
    for value in ("", "a,b", None):
        if value is None:
            monkeypatch.delenv(SERVER_CPUS_ENV, raising=False)
        else:
            monkeypatch.setenv(SERVER_CPUS_ENV, value)
        unpin_child()
        assert os.sched_getaffinity(0) == before


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _serve(settings: Settings, state: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "GRADER_PROJECT_DIR": str(settings.project_dir), "GRADER_DATA_DIR": str(settings.data_dir),
           "GRADER_CACHE_DIR": str(settings.cache_dir)}
    argv = [sys.executable, "-m", "grader", "-v", "serve", "--event", "hack", "--state", str(state), "--port",
            str(port), "--workers", "1", "--sandbox", "none", *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not listening(port):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
    return proc, port


def _grading_child(server: subprocess.Popen[bytes], log: Path) -> psutil.Process:
    """The server's grading child (started at once: it imports the pipeline while it waits for a job)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(server.pid).children():
            if "spawn_main" in " ".join(child.cmdline()):  # not multiprocessing's resource tracker
                return child
        time.sleep(0.1)
    raise AssertionError(f"no grading child:\n{log.read_text(errors='replace')[-3000:]}")


def test_served_threads_on_one_cpu_and_the_grading_child_on_all(make_toy: Callable[..., Settings], tmp_path: Path,
                                                                servers: list[subprocess.Popen[bytes]]) -> None:
    settings = make_toy()
    state = tmp_path / "state"
    store = Store(state)
    store.create_event("hack", challenges=["toy"], teams=["red"])
    store.close()

    log = tmp_path / "pinned.log"
    server, _ = _serve(settings, state, log)
    servers.append(server)
    threads = [int(t.name) for t in Path(f"/proc/{server.pid}/task").iterdir()]
    assert len(threads) > 1  # uvicorn's loop, the worker, the start-up thread ...
    assert {tuple(_allowed(server.pid, tid)) for tid in threads} == {(CPUS[-1],)}
    child = _grading_child(server, log)
    deadline = time.monotonic() + 30  # its initializer runs once it has booted
    while _allowed(child.pid) != CPUS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _allowed(child.pid) == CPUS
    text = log.read_text(errors="replace")
    assert f"the server's threads on CPU {CPUS[-1]}" in text
    frozen = [line for line in text.splitlines() if "left out of the garbage collector" in line]
    assert frozen and int(frozen[0].split("start-up: ")[1].split()[0]) > 50_000, frozen
    server.terminate()
    server.wait(30)

    log = tmp_path / "all.log"
    server, _ = _serve(settings, state, log, "--all-cpus")
    servers.append(server)
    assert _allowed(server.pid) == CPUS
    assert "the server's threads on CPU" not in log.read_text(errors="replace")
