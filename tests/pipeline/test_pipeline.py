"""The pipeline as a long-lived server needs it: one job cancelled on its own, a runner that
lives as long as the grading process (not the thread that started it), per-class figures per
part of the hidden test set."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import psutil
import pytest

from grader.core.settings import Settings
from grader.execute.run import lifeline_fd
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.sandbox.mounts import clean_stale_mounts
from grader.sandbox.session import resolve_sandbox
from grader.score.measure import class_hits, measure
from grader.score.scorecard import ModelReport, PartReport
from tests.support.toy import GOOD_TOY_CELLS, write_submission

REPO = Path(__file__).resolve().parents[2]
SLEEP_CELL = "import time\ntime.sleep(60)"


def _bwrap_or_skip() -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    try:
        resolve_sandbox("bwrap")
    except Exception as err:  # UsageError: it cannot run here
        pytest.skip(str(err))


def test_a_cancel_set_before_grading_starts_no_notebook(make_toy: Callable[..., Settings],
                                                        tmp_path: Path) -> None:
    settings = make_toy()
    cancel = threading.Event()
    cancel.set()
    result = grade_submission(discover(write_submission(tmp_path, "team", GOOD_TOY_CELLS)), settings,
                              GradeOptions(cancel=cancel))
    nb = result.notebooks[0]
    assert result.verdict == "fail"
    assert (nb.execution.status, nb.execution.message) == (
        "cancelled", "cancelled by the coach before this notebook started")
    runs = nb.criteria[0]
    assert (runs.id, runs.status) == ("runs", "fail")
    assert runs.message == "cancelled by the coach before this notebook started"
    accuracy = next(c for c in nb.criteria if c.id == "accuracy")
    assert accuracy.status == "not_measured"


@pytest.mark.kernel
@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_the_kernel_runs_at_the_niceness_asked(make_toy: Callable[..., Settings], tmp_path: Path, mode: str) -> None:
    """``GradeOptions.nice`` (``grader serve`` asks 10): the kernel runs at that niceness; the
    same notebook asked at 0 fails its assertion, so the check can fail."""
    if mode == "bwrap":
        _bwrap_or_skip()
    settings = make_toy()
    cells = [GOOD_TOY_CELLS[0], "import os\nassert os.nice(0) == 7, os.nice(0)", *GOOD_TOY_CELLS[1:]]
    folder = write_submission(tmp_path, "nice", cells)
    asked = grade_submission(discover(folder), settings, GradeOptions(nice=7, sandbox=resolve_sandbox(mode)))
    assert asked.notebooks[0].execution.status == "ok", asked.notebooks[0].execution.message
    plain = grade_submission(discover(folder), settings, GradeOptions(sandbox=resolve_sandbox(mode)))
    assert plain.notebooks[0].execution.status == "cell_error"
    assert "AssertionError" in plain.notebooks[0].execution.message


@pytest.mark.kernel
def test_cancel_stops_the_running_notebook_and_starts_no_other(make_toy: Callable[..., Settings],
                                                               tmp_path: Path) -> None:
    settings = make_toy(deadline=120, cell_timeout=100)
    pid_file = tmp_path / "kernel.pid"
    sleeper = f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n{SLEEP_CELL}"
    folder = write_submission(tmp_path, "team", [GOOD_TOY_CELLS[0], sleeper], challenge="toy")
    (folder / "toy.ipynb").rename(folder / "a_sleeps.ipynb")
    nb = nbformat.read(str(folder / "a_sleeps.ipynb"), as_version=4)
    nb.cells = [nb.cells[0], *[nbformat.v4.new_code_cell(c) for c in GOOD_TOY_CELLS]]
    nbformat.write(nb, str(folder / "b_good.ipynb"))
    # intake grades one notebook per challenge, and the toy project has one: both, by hand
    submission = dataclasses.replace(discover(folder), notebooks=(folder / "a_sleeps.ipynb", folder / "b_good.ipynb"))
    cancel = threading.Event()
    progress: list[str] = []

    def watch(line: str) -> None:  # cancel once the sleeping cell runs
        progress.append(line)
        if "cell 3" in line:
            cancel.set()

    timer = threading.Timer(8.0, cancel.set)  # at the latest
    timer.start()
    started = time.monotonic()
    try:
        result = grade_submission(submission, settings, GradeOptions(cancel=cancel, on_progress=watch))
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    first, second = result.notebooks
    assert elapsed < 10, elapsed
    assert first.execution.status == "cancelled"
    assert first.execution.message == "the run was cancelled by the coach while cell 3 was running", progress
    assert [c.status for c in first.execution.cells if not c.injected][-1] == "cancelled"
    assert second.execution.status == "cancelled"
    assert second.execution.message == "cancelled by the coach before this notebook started"
    assert result.verdict == "fail"
    kernel = int(pid_file.read_text())  # killed with its run, as at the deadline
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE


def _runner_job(tmp_path: Path, source: str) -> Path:
    workdir, run_dir = tmp_path / "work", tmp_path / "run"
    workdir.mkdir()
    run_dir.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), run_dir / "input.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    job = {
        "notebook": str(run_dir / "input.ipynb"), "executed": str(run_dir / "executed.ipynb"),
        "facts": str(run_dir / "facts.json"), "workdir": str(workdir), "kernel_name": "python3",
        "connection_file": str(run_dir / "kernel.json"), "cell_timeout_s": 60,
        "probe_timeout_s": 60, "max_output_bytes": 100_000, "env": env,
        "probe": {"out": str(run_dir / "probe.json")},
    }
    (run_dir / "job.json").write_text(json.dumps(job))
    return run_dir


@pytest.mark.kernel
def test_a_runner_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    # PR_SET_PDEATHSIG fires when the forking *thread* exits: the runner used to die here
    run_dir = _runner_job(tmp_path, "import time\ntime.sleep(2)\nprint('finished')")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        fd = lifeline_fd()
        started.append(subprocess.Popen(
            [sys.executable, "-m", "grader.student.runner", str(run_dir / "job.json"), "--lifeline", str(fd)],
            pass_fds=(fd,), stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO))
        stop = time.monotonic() + 30
        while not (run_dir / "kernel.json").exists() and time.monotonic() < stop:  # the runner is up
            time.sleep(0.05)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()  # the thread that forked the runner is gone
    proc = started[0]
    assert proc.wait(timeout=60) == 0
    facts = json.loads((run_dir / "facts.json").read_text())
    assert facts["status"] == "ok"
    assert facts["cells"][0]["status"] == "ok"
    executed = nbformat.read(str(run_dir / "executed.ipynb"), as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "finished\n"


def _matching(tag: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(tag in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _live(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes of `procs` still running (a zombie has ended; its parent has not reaped it)."""
    live = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
        except psutil.NoSuchProcess:
            continue
    return live


GRADING = """
import sys, threading
from pathlib import Path
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.sandbox.session import resolve_sandbox
from grader.core.settings import Settings
project, data, cache, folder, mode = sys.argv[1:6]
settings = Settings(project_dir=Path(project), data_dir=Path(data), cache_dir=Path(cache), python=sys.executable)
# graded in a thread, as a server's worker grades
worker = threading.Thread(target=grade_submission, args=(discover(Path(folder)), settings,
                          GradeOptions(sandbox=resolve_sandbox(mode))))
worker.start()
worker.join()
"""


@pytest.mark.kernel
@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_a_killed_grading_process_leaves_no_runner_or_kernel(make_toy: Callable[..., Settings],
                                                             tmp_path: Path, mode: str) -> None:
    if mode == "bwrap":
        _bwrap_or_skip()
    settings = make_toy(deadline=120, cell_timeout=100)
    name = f"lifeline{uuid.uuid4().hex[:12]}"  # in the run's working folder: grader-<name>-XXXX
    folder = write_submission(tmp_path, name, [GOOD_TOY_CELLS[0], SLEEP_CELL])
    tag = f"grader-{name}-"
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADING, str(settings.project_dir), str(settings.data_dir),
         str(settings.cache_dir), str(folder), mode], cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        stop = time.monotonic() + 60
        kernels: list[psutil.Process] = []
        while time.monotonic() < stop and not kernels:
            kernels = [p for p in _matching(tag) if "ipykernel_launcher" in " ".join(p.cmdline())]
            time.sleep(0.2)
        assert kernels, "the kernel never started"
        run = _matching(tag)
        assert any("grader.student.runner" in " ".join(p.cmdline()) for p in run)
        grader.send_signal(signal.SIGKILL)
        grader.wait(timeout=10)
        stop = time.monotonic() + 10
        while time.monotonic() < stop and _matching(tag):
            time.sleep(0.2)
        assert _matching(tag) == []
        # a process that is exiting has already lost its command line: give it the same 10 s to go
        stop = time.monotonic() + 10
        while time.monotonic() < stop and _live(run):
            time.sleep(0.2)
        assert _live(run) == []
    finally:
        if grader.poll() is None:
            grader.kill()
        for proc in _matching(tag):
            proc.kill()
        clean_stale_mounts()  # the killed grader's tmpfs mounts (as root), as its next start would
        for box in Path(tempfile.gettempdir()).glob(f"{tag}*"):
            shutil.rmtree(box, ignore_errors=True)


def test_parts_carry_per_class_recall_with_intervals() -> None:
    classes = ["cat", "dog"]
    labels = ["cat", "cat", "dog", "dog", "cat", "dog"]
    predictions = ["cat", "dog", "dog", "dog", "cat", "cat"]
    public = [True, True, True, False, False, False]
    m = measure(labels, predictions, classes)
    correct = [p == label for p, label in zip(predictions, labels, strict=True)]
    report = ModelReport.of("predict", "predict", m, 1.0, correct=correct, public=public,
                            predictions=predictions, labels=labels)
    public_part, private_part = report.parts
    assert public_part.part == "public"
    assert [(c.name, c.k, c.n) for c in public_part.per_class] == [("cat", 1, 2), ("dog", 1, 1)]
    assert [(c.name, c.k, c.n) for c in private_part.per_class] == [("cat", 1, 1), ("dog", 1, 2)]
    cat = public_part.per_class[0]
    assert cat.recall == 0.5 and cat.low is not None and cat.high is not None
    assert cat.low < 0.5 < cat.high
    # the two parts add up to the whole table
    whole = {r.name: (round(r.recall * r.support), r.support) for r in m.rows}
    for name in classes:
        k = sum(c.k for part in report.parts for c in part.per_class if c.name == name)
        n = sum(c.n for part in report.parts for c in part.per_class if c.name == name)
        assert (k, n) == whole[name]


def test_a_class_without_images_in_a_part_has_no_recall() -> None:
    hits = class_hits(["cat", "dog"], ["cat", "cat"], ["cat", "dog", "bird"], [True, False])
    assert [(h.name, h.k, h.n) for h in hits] == [("cat", 1, 1), ("dog", 0, 0), ("bird", 0, 0)]
    m = measure(["cat", "dog"], ["cat", "cat"], ["cat", "dog"])
    report = ModelReport.of("predict", "predict", m, None, correct=[True, False], public=[True, False],
                            predictions=["cat", "cat"], labels=["cat", "dog"])
    dog = report.parts[0].per_class[1]
    assert (dog.name, dog.k, dog.n, dog.recall, dog.low, dog.high) == ("dog", 0, 0, None, None, None)
    with pytest.raises(ValueError, match="2 predictions, 2 labels, 1 flags"):
        class_hits(["cat", "dog"], ["cat", "cat"], ["cat"], [True])


def test_parts_of_older_results_still_load() -> None:
    part = PartReport.model_validate({"part": "public", "accuracy": {"value": 0.5, "low": 0.1, "high": 0.9,
                                                                     "k": 1, "n": 2}})
    assert part.per_class == []
    # without labels (an older caller) the parts have no per-class rows
    m = measure(["cat", "dog"], ["cat", "cat"], ["cat", "dog"])
    report = ModelReport.of("predict", "predict", m, None, correct=[True, False], public=[True, False])
    assert [p.per_class for p in report.parts] == [[], []]
