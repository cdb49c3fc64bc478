"""Nothing is lost: ``grader serve`` killed (SIGKILL) while it grades, started again, finishes
every submission exactly once. A real server process on 127.0.0.1, the toy challenge."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.core.settings import Settings
from grader.server.store.rows import SubmissionRow
from grader.server.store.store import Store
from tests.support.net import free_port, listening
from tests.support.toy import GOOD_TOY_CELLS, write_submission

SLOW = "import time\ntime.sleep(6)"  # the cell running when the server is killed




def _wait(what: str, ok: Callable[[], bool], timeout_s: float, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        if server.poll() is not None:
            pytest.fail(f"the server exited ({server.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"not {what} within {timeout_s:.0f} s; server log:\n{log.read_text()[-3000:]}")




def _state(store: Store, submission_id: int) -> str:
    row = store.submission(submission_id)
    assert row is not None
    return row.state


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The servers a test starts, each in its own process group: killed with all their children."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


@pytest.mark.kernel
def test_killed_server_restarts_and_grades_everything_once(make_toy: Callable[..., Settings], tmp_path: Path,
                                                           servers: list[subprocess.Popen[bytes]]) -> None:
    settings = make_toy()
    state = tmp_path / "state"
    store = Store(state)
    store.create_event("hack", challenges=["toy"], teams=["red", "blue", "green"])
    ids = []
    for team, cells in zip(store.teams("hack"), ([SLOW, *GOOD_TOY_CELLS], GOOD_TOY_CELLS, GOOD_TOY_CELLS[:2]),
                           strict=True):
        folder = write_submission(tmp_path / "subs", team.name, cells)
        with (folder / "toy.ipynb").open("rb") as fh:
            upload = store.store_upload(fh, filename="toy.ipynb", max_bytes=1 << 20)
        ids.append(store.submit("hack", team.id, challenge="toy", upload=upload).id)
    env = {**os.environ, "GRADER_PROJECT_DIR": str(settings.project_dir), "GRADER_DATA_DIR": str(settings.data_dir),
           "GRADER_CACHE_DIR": str(settings.cache_dir), "GRADER_STATE_DIR": str(state)}
    port = free_port()
    argv = [sys.executable, "-m", "grader", "serve", "--event", "hack", "--port", str(port), "--profile", "full"]

    def start(log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        servers.append(proc)
        return proc

    def row(i: int) -> SubmissionRow:
        found = store.submission(i)
        assert found is not None
        return found

    t0 = time.monotonic()
    first = start(tmp_path / "first.log")
    _wait("listening", lambda: listening(port), 30, first, tmp_path / "first.log")
    # the slow notebook is past its kernel's start, in its sleeping cell: kill the server there
    _wait("running the first notebook", lambda: row(ids[0]).state == "running" and row(ids[0]).progress
          not in ("", "starting"), 30, first, tmp_path / "first.log")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert [row(i).state for i in ids] == ["running", "queued", "queued"]  # as the crash left them

    second = start(tmp_path / "second.log")
    _wait("every submission done", lambda: all(row(i).state in ("done", "failed") for i in ids), 50, second,
          tmp_path / "second.log")
    rows = [row(i) for i in ids]
    assert [(r.state, r.error) for r in rows] == [("done", None)] * 3
    assert [r.attempts for r in rows] == [2, 1, 1]  # the killed run was tried again, once
    assert [r.verdict for r in rows] == ["fail", "fail", "fail"]  # no new_images/ beside a bare notebook
    assert rows[0].score == rows[1].score and rows[2].score is not None and rows[2].score < (rows[1].score or 0)
    with sqlite3.connect(state / "grader.db") as db:
        counts = dict(db.execute("SELECT submission_id, COUNT(*) FROM results GROUP BY submission_id").fetchall())
    assert counts == {i: 1 for i in ids}
    for i in ids:
        result = store.result(i)
        assert result is not None and '"submission":' in result.result_json and "<html" in result.scorecard_html
        assert "<html" in result.team_scorecard_html
    # the same team's unchanged upload again: grader check's cache gives the stored result back
    blue = store.teams("hack")[1]
    again = store.submit("hack", blue.id, challenge="toy", upload=store.store_upload(
        (tmp_path / "subs" / "blue" / "toy.ipynb").open("rb"), filename="toy.ipynb", max_bytes=1 << 20)).id
    _wait("the resubmission done", lambda: row(again).state == "done", 20, second, tmp_path / "second.log")
    reused, earlier = store.result(again), store.result(ids[1])
    assert reused is not None and earlier is not None and reused.result_json == earlier.result_json
    assert reused.team_scorecard_html == earlier.team_scorecard_html
    second.send_signal(signal.SIGTERM)  # a clean stop: exit 0
    assert second.wait(20) == 0
    store.close()
    assert time.monotonic() - t0 < 90


@pytest.mark.kernel
def test_sigterm_stops_the_run_and_puts_its_job_back(make_toy: Callable[..., Settings], tmp_path: Path,
                                                     servers: list[subprocess.Popen[bytes]]) -> None:
    settings = make_toy()
    state = tmp_path / "state"
    store = Store(state)
    store.create_event("hack", challenges=["toy"], teams=["red"])
    folder = write_submission(tmp_path / "subs", "red", ["import time\ntime.sleep(60)", *GOOD_TOY_CELLS])
    with (folder / "toy.ipynb").open("rb") as fh:
        upload = store.store_upload(fh, filename="toy.ipynb", max_bytes=1 << 20)
    sub = store.submit("hack", store.teams("hack")[0].id, challenge="toy", upload=upload).id
    env = {**os.environ, "GRADER_PROJECT_DIR": str(settings.project_dir), "GRADER_DATA_DIR": str(settings.data_dir),
           "GRADER_CACHE_DIR": str(settings.cache_dir)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "grader", "serve", "--event", "hack", "--state", str(state),
                                   "--port", str(free_port())], env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    servers.append(server)

    def running() -> bool:
        row = store.submission(sub)
        return row is not None and row.state == "running" and row.progress not in ("", "starting")

    _wait("running the notebook", running, 30, server, log)
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait(20) == 0, log.read_text()
    assert time.monotonic() - t0 < 15  # the 60 s cell was killed, not waited for
    row = store.submission(sub)
    assert row is not None and (row.state, row.attempts, row.error) == ("queued", 0, None)
    assert store.result(sub) is None
    store.close()


@pytest.mark.kernel
def test_workers_send_each_job_to_a_dask_cluster(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    """``grader serve --executor dask``: the worker thread hands the job to the cluster (one task, as
    ``grader check --executor dask``), records the running cell the Dask worker reports (the team's
    page shows it) and stores its result and both scorecards."""
    distributed = pytest.importorskip("distributed")
    from grader.pipeline.grade import GradeOptions
    from grader.server.work.worker import WorkerPool

    settings = make_toy()
    store = Store(tmp_path / "state")
    store.create_event("hack", challenges=["toy"], teams=["red"])
    folder = write_submission(tmp_path / "subs", "red", [*GOOD_TOY_CELLS, "import time\ntime.sleep(4.5)"])
    with (folder / "toy.ipynb").open("rb") as fh:
        upload = store.store_upload(fh, filename="toy.ipynb", max_bytes=1 << 20)
    sub = store.submit("hack", store.teams("hack")[0].id, challenge="toy", upload=upload).id
    progress: list[str] = []  # as the team's page reads it
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        pool = WorkerPool(store, settings, GradeOptions(profile="full"), scheduler=cluster.scheduler_address,
                          poll_s=0.2)
        pool.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _state(store, sub) not in ("done", "failed"):
                row = store.submission(sub)
                if row is not None and row.progress and row.progress not in progress[-1:]:
                    progress.append(row.progress)
                time.sleep(0.2)
        finally:
            pool.stop()
    assert "cell 6 of 6: import time" in progress, progress
    row = store.submission(sub)
    assert row is not None and (row.state, row.error) == ("done", None)
    result = store.result(sub)
    assert result is not None and '"submission":"red"' in result.result_json.replace(" ", "")
    assert "<svg" in result.team_scorecard_html  # the loss plot: the result came back whole, pickled
    store.close()
