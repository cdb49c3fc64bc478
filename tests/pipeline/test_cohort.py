"""Grading a cohort: parallel jobs, GPU slots, the result cache, Dask, and the cohort outputs."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from grader.cli.main import main
from grader.core.settings import Settings
from tests.support.toy import GOOD_TOY_CELLS, write_submission

pytestmark = pytest.mark.kernel

BAD_CELLS = [GOOD_TOY_CELLS[0], "def predict(images):\n    return ['red'] * len(images)\n"
             "predict_transfer = predict"]
# predict answers the environment it sees for the new images (64x48), the colour otherwise
ENV_CELLS = [*GOOD_TOY_CELLS, GOOD_TOY_CELLS[1].replace(
    "    out = []\n",
    "    out = []\n    if images and images[0].size == (64, 48):\n"
    "        return [os.environ.get('CUDA_VISIBLE_DEVICES', '-') + '/' + "
    "os.environ.get('OMP_NUM_THREADS', '-')] * len(images)\n")]
VOLATILE = {"started", "finished", "wall_s", "seconds", "path", "inference_s", "probe_s"}


@pytest.fixture
def cohort(make_toy: Callable[..., Settings], tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, list[Path]]:
    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    subs = tmp_path / "subs"
    folders = [write_submission(subs, "alpha", GOOD_TOY_CELLS),
               write_submission(subs, "beta", BAD_CELLS),
               write_submission(subs, "gamma", GOOD_TOY_CELLS)]
    return settings, folders


def _check(folders: list[Path], out: Path, *extra: str) -> int:
    return main(["check", *map(str, folders), "--out", str(out), "--sandbox", "none", *extra])


def _stable(value: Any) -> Any:
    """A result without what changes from run to run: times, durations, paths."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"\d+(\.\d+)? s\b", "N s", value)  # "all cells ran in 3 s"
    return value


def test_parallel_batch_writes_every_cohort_output(cohort: tuple[Settings, list[Path]],
                                                  tmp_path: Path) -> None:
    _, folders = cohort
    out = tmp_path / "out"
    assert _check(folders, out, "--jobs", "2") == 1
    verdicts = {f.name: json.loads((out / f.name / "result.json").read_text())["verdict"]
                for f in folders}
    assert verdicts == {"alpha": "pass", "beta": "fail", "gamma": "pass"}

    rows = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert [r["submission"] for r in rows] == ["alpha", "beta", "gamma"]
    assert rows[1]["verdict"] == "fail" and rows[1]["toy:accuracy"] == "0"
    assert rows[0]["toy:accuracy"] == "4" and float(rows[0]["accuracy"]) == 1.0
    assert rows[0]["notebook"] == "toy.ipynb" and rows[0]["ranked"] == "yes" and rows[0]["n"] == "6"
    assert rows[0]["practice"] == "no"
    assert len(rows[0]) == 13 + 12 + 8  # who (with the submission's number and time), verdicts, scores and
    # practice; accuracy, public, private (value, low, high, n); criteria

    suites = ET.fromstring((out / "junit.xml").read_text()).findall("testsuite")
    assert [s.get("name") for s in suites] == ["alpha", "beta", "gamma"]
    assert [len(s.findall("testcase")) for s in suites] == [8, 8, 8]
    assert suites[1].get("failures") == str(len(suites[1].findall("testcase/failure")))
    assert int(suites[1].get("failures") or 0) >= 1 and suites[0].get("failures") == "0"

    gradescope = json.loads((out / "beta" / "results.json").read_text())
    assert gradescope["score"] == sum(t["score"] for t in gradescope["tests"])
    assert {t["status"] for t in gradescope["tests"]} == {"passed", "failed"}
    assert gradescope["leaderboard"] == [{"name": "Accuracy", "value": 0.3333, "order": "desc"}]

    index = (out / "index.html").read_text()
    assert "Leaderboard" in index and "Pass rate per criterion" in index
    assert index.index("alpha/scorecard.html") < index.index("beta/scorecard.html")


def test_unchanged_submissions_are_not_run_again(cohort: tuple[Settings, list[Path]],
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, folders = cohort
    out = tmp_path / "out"
    _check(folders, out)
    first = {f.name: (out / f.name / "result.json").read_text() for f in folders}
    capsys.readouterr()

    assert _check(folders, out) == 1
    err = capsys.readouterr().err
    assert err.count("cached") == 3 and "grading" not in err  # no notebook ran
    assert {f.name: (out / f.name / "result.json").read_text() for f in folders} == first

    (folders[2] / "toy.ipynb").write_text((folders[2] / "toy.ipynb").read_text().replace(
        "CLASS_NAMES = sorted", "CLASS_NAMES  = sorted"))  # one byte changed
    _check(folders, out)
    err = capsys.readouterr().err
    assert err.count("cached") == 2 and "gamma: grading" in err

    _check(folders, out, "--no-cache")
    assert capsys.readouterr().err.count("cached") == 0


def test_jobs_get_gpu_slots_and_a_share_of_the_threads(cohort: tuple[Settings, list[Path]],
                                                       tmp_path: Path) -> None:
    import os

    settings, _ = cohort
    folders = [write_submission(tmp_path / "env", name, ENV_CELLS) for name in ("one", "two")]
    out = tmp_path / "out"
    _check(folders, out, "--jobs", "2", "--gpus", "7,8")
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    seen = [json.loads((out / f.name / "result.json").read_text())["notebooks"][0]["new_images"]
            [0]["prediction"] for f in folders]
    assert sorted(seen) == [f"7/{threads}", f"8/{threads}"]  # two jobs at once: one GPU each


@pytest.fixture
def local_cluster() -> Any:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


def test_dask_gives_the_same_results(cohort: tuple[Settings, list[Path]], tmp_path: Path,
                                     local_cluster: Any) -> None:
    _, folders = cohort
    assert _check(folders, tmp_path / "local", "--jobs", "2", "--no-cache") == 1
    assert _check(folders, tmp_path / "dask", "--executor", "dask", "--scheduler",
                  local_cluster.scheduler_address, "--no-cache") == 1
    for folder in folders:
        local = json.loads((tmp_path / "local" / folder.name / "result.json").read_text())
        remote = json.loads((tmp_path / "dask" / folder.name / "result.json").read_text())
        assert _stable(remote) == _stable(local)
    assert ((tmp_path / "dask" / "gradebook.csv").read_text()
            == (tmp_path / "local" / "gradebook.csv").read_text())


def test_dask_jobs_send_their_cell_progress_to_the_client(cohort: tuple[Settings, list[Path]], tmp_path: Path,
                                                         local_cluster: Any) -> None:
    """The status lines of a job's notebook on a Dask worker (process) reach the client's
    ``Events.progress`` as the local executor's do: the running cell, numbered as the student sees
    it; each line once its job has started and none after it finished."""
    from grader.intake.submissions import discover
    from grader.pipeline.batch import grade_cohort
    from grader.pipeline.grade import GradeOptions
    from grader.pipeline.job import CohortOptions, Events, Job, Outcome
    from grader.sandbox.session import resolve_sandbox

    settings, _ = cohort
    folder = write_submission(tmp_path / "slow", "slow", [*GOOD_TOY_CELLS, "import time\ntime.sleep(4.5)"])
    seen: list[tuple[str, str]] = []

    class Record(Events):
        def started(self, job: Job, gpu: str | None) -> None:
            seen.append(("started", job.folder))

        def progress(self, job: Job, status: str) -> None:
            seen.append(("progress", status))

        def finished(self, outcome: Outcome) -> None:
            seen.append(("finished", outcome.job.folder))

    [outcome] = grade_cohort([Job(1, discover(folder), "slow")], settings,
                             GradeOptions(profile="ci", sandbox=resolve_sandbox("none")),
                             CohortOptions(use_cache=False, executor="dask",
                                           scheduler=local_cluster.scheduler_address),
                             write=lambda outcome: None, events=Record())
    assert outcome.result is not None and outcome.result.verdict == "pass"
    assert seen[0] == ("started", "slow") and seen[-1] == ("finished", "slow")
    lines = [status for kind, status in seen[1:-1] if kind == "progress"]
    assert len(lines) == len(seen) - 2  # nothing but progress between the start and the end
    assert lines[0] == "started on a Dask worker"
    assert "cell 6 of 6: import time" in lines  # the parameters cell is 1; the grader's injected one is not counted


def test_dask_progress_is_rate_limited_and_never_fails_the_grading(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """On the worker: a status line sooner than 0.5 s after the last one is dropped, a long one is
    cut, and one that cannot be sent (here: outside any Dask worker) is dropped with one warning,
    never raised."""
    import distributed

    from grader.pipeline.dask import DaskProgress

    sent: list[tuple[str, str]] = []

    class Worker:
        def log_event(self, topic: str, msg: str) -> None:
            sent.append((topic, msg))

    monkeypatch.setattr(distributed, "get_worker", Worker)
    report = DaskProgress("grader-progress-grade-x-1")
    report("cell 1 of 3: import os")
    report("cell 2 of 3: x = 1")  # dropped: too soon
    report.sent_at -= 0.5
    report("cell 3 of 3: " + "y" * 400)
    assert sent == [("grader-progress-grade-x-1", "cell 1 of 3: import os"),
                    ("grader-progress-grade-x-1", ("cell 3 of 3: " + "y" * 400)[:300])]

    monkeypatch.undo()  # the real get_worker, outside any worker: it raises ValueError
    report = DaskProgress("grader-progress-grade-x-2")
    report("cell 1 of 3: import os")
    report.sent_at -= 0.5
    report("cell 2 of 3: x = 1")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(
        "could not send the progress of grader-progress-grade-x-2 to the Dask client: ")


def test_dask_gpu_jobs_without_gpu_workers_are_refused(
        cohort: tuple[Settings, list[Path]], tmp_path: Path, local_cluster: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, folders = cohort
    code = _check(folders[:1], tmp_path / "out", "--executor", "dask", "--scheduler",
                  local_cluster.scheduler_address, "--gpus", "0")
    assert code == 2
    assert "no Dask worker offers the GPU resource" in capsys.readouterr().err


def test_dask_worker_death_is_a_clear_error(cohort: tuple[Settings, list[Path]], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import dask
    import distributed

    _, folders = cohort
    slow = write_submission(tmp_path / "slow", "slow", [*GOOD_TOY_CELLS, "import time\ntime.sleep(20)"])
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster:

        def kill_workers() -> None:
            time.sleep(8)  # the notebook is sleeping by now
            with distributed.Client(cluster.scheduler_address) as client:
                try:
                    client.run(lambda: __import__("os")._exit(1))
                except Exception:  # the workers die mid-call
                    pass

        killer = threading.Thread(target=kill_workers)
        killer.start()
        t0 = time.monotonic()
        code = _check([slow], tmp_path / "out", "--executor", "dask", "--scheduler",
                      cluster.scheduler_address, "--no-cache")
        killer.join()
    assert code == 3  # a harness fault, not a fail of the student
    assert time.monotonic() - t0 < 60
    err = capsys.readouterr().err
    assert "the Dask worker grading it died" in err
    assert not (tmp_path / "out" / "slow" / "result.json").exists()


def test_ctrl_c_stops_cleanly_and_keeps_what_finished(cohort: tuple[Settings, list[Path]],
                                                      tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    import psutil

    folders = [write_submission(tmp_path / "subs2", "quick", GOOD_TOY_CELLS),
               write_submission(tmp_path / "subs2", "slow",
                                [*GOOD_TOY_CELLS, "import time\ntime.sleep(120)"])]
    out = tmp_path / "out"
    # as from a terminal: SIGINT handled even where this test inherited it ignored (a CI job
    # started in the background of a non-interactive shell)
    grader = subprocess.Popen([sys.executable, "-m", "grader", "check", *map(str, folders),
                               "--out", str(out), "--jobs", "2", "--sandbox", "none"],
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (out / "quick" / "result.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        kernels = [p for p in psutil.Process(grader.pid).children(recursive=True)]
        assert kernels, "the slow notebook should be running"
        t0 = time.monotonic()
        grader.send_signal(signal.SIGINT)
        _, err = grader.communicate(timeout=30)
    finally:
        if grader.poll() is None:
            grader.kill()
            grader.wait()
    assert grader.returncode == 130, err
    assert time.monotonic() - t0 < 15
    assert "interrupted; 1 of 2 submissions graded and kept" in err
    assert json.loads((out / "quick" / "result.json").read_text())["verdict"] == "pass"
    assert not (out / "slow").exists()  # nothing half-written, no false fail
    assert "quick/scorecard.html" in (out / "index.html").read_text()
    time.sleep(0.5)
    assert [p.pid for p in kernels if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_threads_share_the_data_cache(make_toy: Callable[..., Settings]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from grader.core.challenge import load_challenge
    from grader.data.hidden import dataset_hashes, ensure_hidden_test_set
    from grader.data.views import ensure_public_view

    settings = make_toy()
    challenge = load_challenge(settings.project_dir, "toy")

    def build(_: int) -> tuple[Any, ...]:
        return (ensure_public_view(settings, challenge), ensure_hidden_test_set(settings, challenge).files,
                dataset_hashes(settings, challenge))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(build, range(8)))
    assert all(r == results[0] for r in results)
    assert len(results[0][2]) == 18
    assert not list(settings.cache_dir.rglob("*.tmp"))


def test_an_internal_error_fails_one_job_only(cohort: tuple[Settings, list[Path]], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import grader.pipeline.job

    _, folders = cohort
    real = grader.pipeline.job.grade_submission

    def flaky(submission: Any, *args: Any) -> Any:
        if submission.name == "beta":
            raise KeyError("a bug")
        return real(submission, *args)

    monkeypatch.setattr(grader.pipeline.job, "grade_submission", flaky)
    assert _check(folders, tmp_path / "out", "--jobs", "2", "--no-cache") == 3
    assert "beta: harness fault: internal error (KeyError: 'a bug')" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "alpha" / "result.json").read_text())["verdict"] == "pass"
    assert (tmp_path / "out" / "gamma" / "result.json").is_file()


def _grade_directly(settings: Settings, folders: list[Path], write: Callable[[Any], None],
                    **cohort_options: Any) -> Any:
    """grade_cohort on ``folders`` without the CLI around it (no sandbox, no cache)."""
    from grader.intake.submissions import discover
    from grader.pipeline.batch import grade_cohort
    from grader.pipeline.grade import GradeOptions
    from grader.pipeline.job import CohortOptions, Job
    from grader.sandbox.session import resolve_sandbox

    jobs = [Job(n, discover(f), f.name) for n, f in enumerate(folders, 1)]
    options = GradeOptions(profile="ci", sandbox=resolve_sandbox("none"))
    return grade_cohort(jobs, settings, options, CohortOptions(use_cache=False, **cohort_options),
                        write=write)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_an_error_writing_the_outputs_stops_the_run_once(
        executor: str, cohort: tuple[Settings, list[Path]], request: pytest.FixtureRequest) -> None:
    """An exception of ``write`` (a full disk) is the harness's, not the job's: it is not taken for
    a remote error, ``write`` is not called again for the same job, and the run stops, on both
    paths alike."""
    settings, folders = cohort
    written: list[str] = []

    def write(outcome: Any) -> None:
        written.append(outcome.job.folder)
        raise OSError(28, "No space left on device")

    extra: dict[str, Any] = {}
    if executor == "dask":
        extra = {"executor": "dask", "scheduler": request.getfixturevalue("local_cluster").scheduler_address}
    with pytest.raises(OSError, match="No space left on device"):
        _grade_directly(settings, folders[:2], write, **extra)
    assert len(written) == 1 and written[0] in ("alpha", "beta")


def test_dask_ctrl_c_before_any_job_is_out_is_an_interruption(
        cohort: tuple[Settings, list[Path]], local_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    from grader.pipeline.job import Interrupted

    settings, folders = cohort

    def interrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed.Client, "scheduler_info", interrupted)  # the GPU check asks it
    with pytest.raises(Interrupted) as stop:
        _grade_directly(settings, folders[:1], lambda outcome: None, executor="dask",
                        scheduler=local_cluster.scheduler_address, gpus=("0",))
    assert stop.value.outcomes == []


def test_a_dask_jobs_kernel_gets_the_workers_threads_and_gpu(cohort: tuple[Settings, list[Path]],
                                                             tmp_path: Path) -> None:
    """A worker declaring 3 cores (``--resources CPU=3``) and one thread, started with
    ``CUDA_VISIBLE_DEVICES=5``: its kernels see 3 threads (not the nanny's 1) and GPU 5."""
    distributed = pytest.importorskip("distributed")

    settings, _ = cohort
    folder = write_submission(tmp_path / "env", "one", ENV_CELLS)
    results: list[Any] = []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, resources={"CPU": 3},
                                  env={"CUDA_VISIBLE_DEVICES": "5"}) as cluster:
        _grade_directly(settings, [folder], results.append, executor="dask",
                        scheduler=cluster.scheduler_address)
    (outcome,) = results
    assert outcome.error is None and outcome.result is not None
    assert outcome.result.notebooks[0].new_images[0].prediction == "5/3"


def test_a_cancelled_result_is_not_cached(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    from grader.intake.submissions import discover
    from grader.pipeline.batch import grade_cohort
    from grader.pipeline.grade import GradeOptions
    from grader.pipeline.job import CohortOptions, Job

    settings = make_toy()
    folder = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    cancel = threading.Event()
    cancel.set()  # no notebook starts: a fast run

    def grade(options: GradeOptions) -> list[str]:
        outcomes = grade_cohort([Job(1, discover(folder), "alpha")], settings, options, CohortOptions(),
                                write=lambda outcome: None)
        return [nb.execution.status for o in outcomes if o.result for nb in o.result.notebooks] + [
            "cached" for o in outcomes if o.cached]

    assert grade(GradeOptions(cancel=cancel)) == ["cancelled"]
    assert grade(GradeOptions(cancel=cancel)) == ["cancelled"]  # graded again, not reused
