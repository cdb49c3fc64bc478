"""Whole runs of small notebooks on the toy challenge: good, crashing, hanging, malformed."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from grader.cli.main import main
from grader.core.settings import Settings
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from tests.support.toy import GOOD_TOY_CELLS, write_submission

pytestmark = pytest.mark.kernel


def grade(settings: Settings, folder: Path, **options: object):
    return grade_submission(discover(folder), settings, GradeOptions(**options))  # type: ignore[arg-type]


def statuses(result) -> dict[str, str]:
    return {c.id: c.status for c in result.notebooks[0].criteria}


def test_good_notebook_passes_every_criterion(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    result = grade(settings, write_submission(tmp_path, "good", GOOD_TOY_CELLS))
    assert result.verdict == "pass", statuses(result)
    assert set(statuses(result).values()) == {"pass"}
    nb = result.notebooks[0]
    assert nb.models[0].accuracy == 1.0
    assert nb.history is not None and nb.history.loss == [1.0, 0.6, 0.4]
    assert [im.prediction is not None for im in nb.new_images] == [True, True]


def test_crashing_cell_fails_and_names_the_cell(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    cells = [GOOD_TOY_CELLS[0], "x = 1 / 0", *GOOD_TOY_CELLS[1:]]
    result = grade(settings, write_submission(tmp_path, "crash", cells))
    nb = result.notebooks[0]
    assert result.verdict == "fail"
    assert nb.execution.status == "cell_error"
    # the student's numbers: parameters 1, (injected: not counted), first cell 2, crash 3
    assert nb.execution.failed_cell == 3
    runs = next(c for c in nb.criteria if c.id == "runs")
    assert runs.status == "fail" and "cell 3 raised ZeroDivisionError" in runs.message
    accuracy = next(c for c in nb.criteria if c.id == "accuracy")  # predict was never defined
    assert (accuracy.status, accuracy.message) == ("not_measured", "not measured: cell 3 raised "
                                                    "ZeroDivisionError: division by zero")


def _hang_cells(pid_file: Path) -> list[str]:
    return [
        *GOOD_TOY_CELLS,
        "import os, signal, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "stop = time.time() + 300  # bounded: ends by itself even if nothing stops it\n"
        "while time.time() < stop:\n"
        "    pass",
    ]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigint_ignoring_loop_is_stopped_at_the_deadline(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_toy(deadline=15, cell_timeout=100)
    pid_file = tmp_path / "kernel.pid"
    started = time.monotonic()
    result = grade(settings, write_submission(tmp_path, "hang", _hang_cells(pid_file)))
    elapsed = time.monotonic() - started
    nb = result.notebooks[0]
    assert result.verdict == "fail"
    assert nb.execution.status == "deadline"
    assert nb.execution.message == ("cell 6 ran past the notebook's 15 s limit; it did not stop when interrupted, "
                                    "so nothing after it ran")
    assert elapsed < 60
    assert _gone(int(pid_file.read_text()))


def test_sigint_ignoring_loop_hits_the_cell_timeout(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_toy(deadline=40, cell_timeout=5)
    pid_file = tmp_path / "kernel.pid"
    result = grade(settings, write_submission(tmp_path, "slow", _hang_cells(pid_file)))
    nb = result.notebooks[0]
    assert result.verdict == "fail"
    assert nb.execution.status in ("cell_timeout", "deadline")
    assert nb.execution.cells[nb.execution.failed_cell].status == "timeout"
    assert _gone(int(pid_file.read_text()))


def test_malformed_notebook_gives_a_failing_scorecard(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_toy()
    result = grade(settings, write_submission(tmp_path, "broken", [], raw='{"cells": [}'))
    nb = result.notebooks[0]
    assert result.verdict == "fail"
    assert nb.execution.status == "malformed"
    assert "not valid JSON" in nb.criteria[0].message


def test_missing_predict_is_named(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    cells = [GOOD_TOY_CELLS[0], GOOD_TOY_CELLS[2], GOOD_TOY_CELLS[3]]
    result = grade(settings, write_submission(tmp_path, "nopredict", cells))
    accuracy = next(c for c in result.notebooks[0].criteria if c.id == "accuracy")
    assert result.verdict == "fail"
    assert (accuracy.status, accuracy.message) == (
        "not_measured", "not measured: the notebook ran, but does not define predict")
    runs = result.notebooks[0].criteria[0]
    assert (runs.status, runs.message) == ("fail", "the notebook ran, but does not define predict")


def test_wrong_predictions_are_clear_failures(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_toy()
    cells = [*GOOD_TOY_CELLS, "def predict(images):\n    return [0 for _ in images]"]
    result = grade(settings, write_submission(tmp_path, "ints", cells))
    accuracy = next(c for c in result.notebooks[0].criteria if c.id == "accuracy")
    # a fixed sentence: nothing the kernel returns once it holds the hidden images is echoed (grader.sandbox.gate)
    assert accuracy.status == "fail" and "returned something other than class names (str)" in accuracy.message


def test_batch_with_bad_submissions_still_grades_the_good_one(
    make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_toy(deadline=15, cell_timeout=100)
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    subs = tmp_path / "subs"
    folders = [
        write_submission(subs, "broken", [], raw="not a notebook"),
        write_submission(subs, "crash", ["raise RuntimeError('boom')"]),
        write_submission(subs, "hang", _hang_cells(tmp_path / "pid")),
        write_submission(subs, "good", GOOD_TOY_CELLS),
    ]
    out = tmp_path / "out"
    code = main(["check", *map(str, folders), "--out", str(out)])
    assert code == 1
    verdicts = {f.name: json.loads((out / f.name / "result.json").read_text())["verdict"]
                for f in folders}
    assert verdicts == {"broken": "fail", "crash": "fail", "hang": "fail", "good": "pass"}
    assert (out / "good" / "scorecard.html").is_file()
    assert "good" in (out / "index.html").read_text()


def test_all_passing_batch_exits_zero(
    make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    folder = write_submission(tmp_path, "good", GOOD_TOY_CELLS)
    assert main(["check", str(folder), "--out", str(tmp_path / "out")]) == 0


def test_hidden_labels_never_reach_the_kernel(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_toy()
    cells = [*GOOD_TOY_CELLS,
             "import json, os\nseen = sorted(os.listdir(DATA_DIR + '/toy/red'))\n"
             f"json.dump(seen, open({str(tmp_path / 'seen.json')!r}, 'w'))"]
    grade(settings, write_submission(tmp_path, "peek", cells))
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen == ["red2.png", "red3.png", "red4.png", "red5.png"]  # red0, red1 are hidden


def test_kernel_death_is_a_clear_failure(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    cells = [*GOOD_TOY_CELLS, "import os\nos._exit(3)"]
    result = grade(settings, write_submission(tmp_path, "dies", cells))
    nb = result.notebooks[0]
    assert result.verdict == "fail"
    assert nb.execution.status == "kernel_died"
    assert nb.execution.failed_cell == len(cells) + 1
    assert "the kernel died" in nb.criteria[0].message


def test_huge_output_is_cut(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()  # max_output_bytes = 100000
    cells = [*GOOD_TOY_CELLS, "for i in range(2000):\n    print('x' * 1000)"]
    folder = write_submission(tmp_path, "loud", cells)
    result = grade(settings, folder, keep_workdir=True)
    assert result.verdict == "pass"
    runs = sorted(Path(tempfile.gettempdir()).glob("grader-loud-*/run"), key=lambda p: p.stat().st_mtime)
    import nbformat

    outputs = nbformat.read(runs[-1] / "executed.ipynb", as_version=4).cells[-1].outputs
    for run in Path(tempfile.gettempdir()).glob("grader-loud-*"):
        shutil.rmtree(run)
    text = "".join(o.get("text", "") for o in outputs)
    assert 50_000 < len(text) < 200_000
    assert "output of this cell cut at 100000 bytes" in text


def test_printed_accuracy_is_compared_with_the_measurement(
    make_toy: Callable[..., Settings], tmp_path: Path
) -> None:
    from grader.report.render import render_scorecard

    settings = make_toy()
    cells = [*GOOD_TOY_CELLS, "def predict(images):\n    return ['red'] * len(images)\n"
             "print('Test accuracy: 0.99')"]
    result = grade(settings, write_submission(tmp_path, "boast", cells))
    nb = result.notebooks[0]
    assert nb.models[0].accuracy == pytest.approx(1 / 3)
    assert nb.claimed_accuracy == 0.99 and nb.claim_flagged
    assert "the claim lies above the interval's upper end by 29.0 points" in render_scorecard(result)


@pytest.mark.parametrize("user_value", ["3", None])
def test_kernel_keeps_the_users_blas_threads(make_toy: Callable[..., Settings], tmp_path: Path,
                                             user_value: str | None) -> None:
    """``grader`` gives its own process one OpenBLAS thread; the kernel still gets the user's
    value, or none where the user set none."""
    import os
    import subprocess
    import sys

    settings = make_toy()
    expected = repr(user_value)
    folder = write_submission(tmp_path, "env", [
        *GOOD_TOY_CELLS,
        f"seen = os.environ.get('OPENBLAS_NUM_THREADS')\nassert seen == {expected}, seen"])
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env.update({"GRADER_PROJECT_DIR": str(settings.project_dir),
                "GRADER_DATA_DIR": str(settings.data_dir),
                "GRADER_CACHE_DIR": str(settings.cache_dir)})
    if user_value is not None:
        env["OPENBLAS_NUM_THREADS"] = user_value
    done = subprocess.run([sys.executable, "-m", "grader", "check", str(folder), "--out",
                           str(tmp_path / "out"), "--sandbox", "auto"],
                          capture_output=True, text=True, env=env)
    result = json.loads((tmp_path / "out" / "env" / "result.json").read_text())
    execution = result["notebooks"][0]["execution"]
    assert execution["status"] == "ok", (execution, done.stderr[-2000:])
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_process_started_while_grading_is_given_its_environment(
        make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started without ``env=``, a child execs with C's ``environ`` as it is during ``vfork``,
    which a library importing in another thread may be rewriting (scikit-learn sets variables):
    ``execv`` then fails with EFAULT, a harness fault. See ``settings.environ_snapshot``."""
    import subprocess

    from grader.sandbox.session import resolve_sandbox

    started: list[tuple[str, object]] = []
    real = subprocess.Popen.__init__

    def record(self: subprocess.Popen[bytes], args: Any, *rest: Any, **kwargs: Any) -> None:
        started.append((str(args[0]), kwargs.get("env")))
        real(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", record)
    settings = make_toy()
    result = grade(settings, write_submission(tmp_path, "good", GOOD_TOY_CELLS),
                   sandbox=resolve_sandbox("auto"))
    assert result.verdict == "pass", statuses(result)
    assert started
    assert [name for name, env in started if env is None] == []


def test_a_model_saved_beside_the_notebook_is_named_with_the_fix(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    cells = [*GOOD_TOY_CELLS[:3], "np.save('weights.npy', np.arange(1000.0))"]  # not under MODEL_DIR
    result = grade(settings, write_submission(tmp_path, "beside", cells))
    saved = next(c for c in result.notebooks[0].criteria if c.id == "saved-model")
    assert saved.status == "fail"
    assert saved.message.startswith("no model file was saved under MODEL_DIR during this run, but the notebook "
                                    "saved weights.npy (NumPy array (np.save), ")
    assert saved.message.endswith("outside it: save it under MODEL_DIR instead, "
                                  "os.path.join(MODEL_DIR, 'weights.npy')")


def test_no_grader_folder_in_a_cells_error(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    """A library's error naming its file in the grader's installation, or the working copy's
    folder, reaches every audience without the folders (the file's own name is kept)."""
    settings = make_toy()
    cells = [GOOD_TOY_CELLS[0], "raise ValueError(f'bad layer in {np.__file__}, run from {os.getcwd()}')"]
    result = grade(settings, write_submission(tmp_path, "paths", cells))
    ex = result.notebooks[0].execution
    assert ex.status == "cell_error"
    assert ex.message.startswith("cell 3 raised ValueError: bad layer in …/__init__.py, run from …/")
    assert "site-packages" not in ex.message and str(tmp_path) not in ex.message
    assert "site-packages" not in ex.cells[ex.failed_cell].error
