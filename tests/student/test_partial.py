"""Partial results when time runs out: a cell past its limit is stopped as Jupyter's Stop button
stops it, the cells after it run, and the model is scored as it stood; at the notebook's limit the
running cell is stopped and the probe still calls the contract. The scorecard says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.core.settings import Settings
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.report.render import render_scorecard
from grader.student.runner import last_line
from tests.support.toy import GOOD_TOY_CELLS, write_submission

# prints "epoch n of 1000" ten times a second; bounded: ends by itself after 100 s
SLOW_TRAINING = ("import time\n"
                 "for epoch in range(1, 1001):\n"
                 "    print(f'epoch {epoch} of 1000', flush=True)\n"
                 "    time.sleep(0.1)")


def grade(settings: Settings, folder: Path):
    return grade_submission(discover(folder), settings, GradeOptions())


@pytest.mark.kernel
def test_a_cell_past_its_limit_is_stopped_and_the_rest_of_the_notebook_still_scores(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy(deadline=90, cell_timeout=4)
    cells = [GOOD_TOY_CELLS[0], SLOW_TRAINING, *GOOD_TOY_CELLS[1:]]  # predict defined after the slow cell
    result = grade(settings, write_submission(tmp_path, "slow", cells))
    nb = result.notebooks[0]
    ex = nb.execution
    assert ex.status == "cell_timeout" and ex.partial, ex.message
    assert ex.message.startswith("cell 3 ran past its 4 s limit (its last line: 'epoch ")
    assert ex.message.endswith("of 1000'); it was stopped there and the cells after it ran")
    rows = {c.id: c for c in nb.criteria}
    assert rows["runs"].status == "fail"  # the notebook did not run within its limits
    # every other criterion measured on what the cells built after the stop
    assert {cid: c.status for cid, c in rows.items() if cid != "runs"} == dict.fromkeys(
        [cid for cid in rows if cid != "runs"], "pass")
    assert [c.status for c in ex.cells if c.status != "skipped"][-4:] == ["timeout", "ok", "ok", "ok"]
    html = render_scorecard(result, audience="team")
    assert "Scored as the run stood when time ran out" in html


@pytest.mark.kernel
def test_at_the_notebooks_limit_the_running_cell_is_stopped_and_the_model_scored_as_it_stood(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy(deadline=12, cell_timeout=100)
    cells = [*GOOD_TOY_CELLS, SLOW_TRAINING, "LATER = 1"]
    result = grade(settings, write_submission(tmp_path, "late", cells))
    nb = result.notebooks[0]
    ex = nb.execution
    assert ex.status == "deadline" and ex.partial, ex.message
    assert "ran past the notebook's 12 s limit (its last line: 'epoch " in ex.message
    assert ex.message.endswith("of 1000'); it was stopped there")
    assert [c.status for c in ex.cells][-2:] == ["timeout", "not_run"]  # nothing after the stopped cell
    accuracy = next(c for c in nb.criteria if c.id == "accuracy")
    assert accuracy.status == "pass" and ex.wall_s < 60


@pytest.mark.kernel
def test_a_cut_run_without_the_contract_is_not_measured_and_says_so_once(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy(deadline=10, cell_timeout=100)
    cells = [GOOD_TOY_CELLS[0], SLOW_TRAINING, *GOOD_TOY_CELLS[1:]]  # predict after the cut: never defined
    result = grade(settings, write_submission(tmp_path, "cut", cells))
    nb = result.notebooks[0]
    assert nb.execution.status == "deadline" and not nb.execution.partial
    accuracy = next(c for c in nb.criteria if c.id == "accuracy")
    assert accuracy.status == "not_measured" and accuracy.of_run
    html = render_scorecard(result)
    assert "ran past the notebook" in nb.execution.message
    assert html.count("ran past the notebook") == 1 and "Scored as the run stood" not in html


def test_the_last_line_is_what_a_terminal_shows() -> None:
    def stream(text: str, name: str = "stdout") -> dict[str, str]:
        return {"output_type": "stream", "name": name, "text": text}

    bar = stream("Epoch 3/30\n 10/94 [==>....] - loss: 0.9\r 94/94 [========] - loss: 0.5\n")
    assert last_line([bar]) == "94/94 [========] - loss: 0.5"
    cut = stream("\n[grader] output of this cell cut at 100 bytes\n", "stderr")
    assert last_line([stream("epoch 7 of 30\n"), cut]) == "epoch 7 of 30"
    assert last_line([{"output_type": "display_data", "data": {}}]) == ""
    long = last_line([stream("x" * 500)])
    assert len(long) == 160 and long.endswith("…")
    # Keras 3's bar in a kernel: bold and colour codes, backspaces over the last state, then "\r"
    keras = stream("\x1b[1m 5/23\x1b[0m \x1b[32m━━━\x1b[0m - loss: 0.9\b\b\b\b\r\x1b[1m 9/23\x1b[0m ━━━━ - loss: 0.7")
    assert last_line([keras]) == "9/23 ━━━━ - loss: 0.7"


def _tagged(folder: Path) -> Path:
    """Tag ``grader-restore`` every cell of ``folder``'s notebook that says ``# restore``."""
    import nbformat

    path = folder / "toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "# restore" in cell.source:
            cell.metadata.setdefault("tags", []).append("grader-restore")
    nbformat.write(nb, path)
    return folder


SAVE = "np.save(os.path.join(MODEL_DIR, 'order.npy'), np.array([0, 1, 2]))"
RESTORE = ("# restore: the saved model, and predict around it\n"
           "order = np.load(os.path.join(MODEL_DIR, 'order.npy'))\n"
           "def predict(images):\n"
           "    names = ['red', 'green', 'blue']\n"
           "    return [names[order[int(np.argmax(np.asarray(im.convert('RGB')).reshape(-1, 3).mean(0)))]]\n"
           "            for im in images]\n"
           "predict_transfer = predict")


@pytest.mark.kernel
def test_a_dead_kernel_is_restored_from_the_cells_the_notebook_tags(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    cells = [GOOD_TOY_CELLS[0] + "  # restore", SAVE, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
             RESTORE]
    result = grade(settings, _tagged(write_submission(tmp_path, "died", cells)))
    nb = result.notebooks[0]
    ex = nb.execution
    assert ex.status == "kernel_died" and ex.partial and ex.restored_cells == [2, 5], ex
    rows = {c.id: c.status for c in nb.criteria}
    assert rows["runs"] == "fail" and rows["accuracy"] == "pass" and rows["saved-model"] == "pass"
    assert rows["loss-history"] == "fail"  # HISTORY was never built: failed, not estimated
    assert [c.status for c in ex.cells if c.status != "skipped"][-2:] == ["error", "not_run"]  # as the team saw it
    assert "Scored from the saved model: the grader ran the cells tagged grader-restore (cells 2, 5)" in (
        render_scorecard(result, audience="team"))


@pytest.mark.kernel
def test_a_restore_that_fails_says_why_and_without_tags_the_fix_says_how(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    died = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    broken = [GOOD_TOY_CELLS[0] + "  # restore", died, RESTORE]  # nothing saved: the load fails
    result = grade(settings, _tagged(write_submission(tmp_path, "broken", broken)))
    ex = result.notebooks[0].execution
    assert ex.status == "kernel_died" and not ex.partial and ex.restored_cells == []
    assert "; the cells tagged grader-restore did not restore the model: cell 4 raised FileNotFoundError" in ex.problem
    untagged = grade(settings, write_submission(tmp_path, "untagged", [GOOD_TOY_CELLS[0], died]))
    fix = untagged.notebooks[0].execution.problem_fix
    assert fix.endswith("Tag the cells that load your saved model and define predict (with their imports) "
                        "grader-restore: when the kernel dies or a cell cannot be stopped, the grader runs them in a "
                        "fresh kernel and scores that model.")


@pytest.mark.kernel
def test_a_long_cells_last_printed_line_is_shown_beside_its_number_while_it_runs(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    seen: list[str] = []
    training = ("import time\nfor epoch in range(1, 61):\n"
                "    print(f'\\r{epoch}/60 [' + '=' * (epoch // 6) + ']', end='', flush=True)\n    time.sleep(0.1)")
    folder = write_submission(tmp_path, "progress", [GOOD_TOY_CELLS[0], training, *GOOD_TOY_CELLS[1:]])
    result = grade_submission(discover(folder), settings, GradeOptions(on_progress=seen.append))
    assert result.verdict == "pass"
    shown = [line for line in seen if line.startswith("cell 3 of 6: import time · ")]
    assert shown, seen  # a progress bar's last state, after its carriage returns
    assert all(re_fullmatch(r"cell 3 of 6: import time · \d+/60 \[=*\]", line) for line in shown), shown


def re_fullmatch(pattern: str, text: str) -> bool:
    import re

    return re.fullmatch(pattern, text) is not None
