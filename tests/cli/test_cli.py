"""The command line: exit statuses, help, listing and validation, a light start-up path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.cli.main import main
from tests.conftest import REPO


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("check", "challenges", "checks", "validate"):
        assert command in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check"])  # no paths, no --out
    assert exit_info.value.code == 2
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path))
    assert main(["check", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()  # a team's failure (tests/intake/test_intake.py), but a missing path stops all
    assert main(["check", str(tmp_path / "empty"), str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_data_dir_exits_2_and_says_how(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    assert main(["check", str(REPO / "examples" / "team3"), "--out", str(tmp_path)]) == 2
    assert "export GRADER_DATA_DIR=" in capsys.readouterr().err


def test_validate_and_list(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "ok  gear-cnn: 9 criteria, 14 points, hidden test set of 424 images" in out
    assert "ok  cifar10-kaggle: 6 criteria, 12 points, hidden test set: cifar10/test" in out
    assert main(["challenges"]) == 0
    assert "gear-cnn             Into the deep" in capsys.readouterr().out
    assert main(["checks"]) == 0
    assert "hidden_accuracy (model, threshold, allow_same_model, decision)" in capsys.readouterr().out


def test_listing_commands_import_no_heavy_library() -> None:
    code = ("import sys; from grader.cli.main import main; main(['challenges']); "
            "heavy = [m for m in ('nbclient', 'torch', 'tensorflow', 'matplotlib', 'sklearn') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")


def test_console_entry_flushes_output_and_keeps_exit_status(tmp_path: Path) -> None:
    """``python -m grader`` ends with ``os._exit`` (no interpreter teardown): everything printed
    must still arrive through a pipe, and the exit status must be main's."""
    done = subprocess.run([sys.executable, "-m", "grader", "checks"], capture_output=True,
                          text=True)
    assert done.returncode == 0
    assert "hidden_accuracy (model, threshold, allow_same_model, decision)" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "grader", "check", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "out")],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert "grader: error:" in missing.stderr


def test_plain_progress_lines_say_each_cell_once_and_its_last_line_at_most_every_30_s(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import grader.cli.check as check

    clock = [100.0]
    monkeypatch.setattr(check.time, "monotonic", lambda: clock[0])
    job = types.SimpleNamespace(number=1, submission=types.SimpleNamespace(name="team3", notebooks=["a"]))
    lines = check._display(1, 1, tmp_path)  # stderr is no terminal here: plain lines
    lines.started(job, None)
    for second, status in [(1, "cell 3 of 9: model.fit(x)"), (2, "cell 3 of 9: model.fit(x) · 1/30"),
                           (20, "cell 3 of 9: model.fit(x) · 9/30"), (32, "cell 3 of 9: model.fit(x) · 14/30"),
                           (33, "cell 4 of 9: plt.plot(h)")]:
        clock[0] = 100.0 + second
        lines.progress(job, status)
    said = [line.split("s  ", 1)[1] for line in capsys.readouterr().err.splitlines()[1:]]
    assert said == ["cell 3 of 9: model.fit(x)", "cell 3 of 9: model.fit(x) · 14/30", "cell 4 of 9: plt.plot(h)"]
