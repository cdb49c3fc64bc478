"""Choosing the sandbox, its command line, and the warning when there is none."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader import sandbox as sandbox_module
from grader.cli import main
from grader.errors import UsageError
from grader.grade import GradeOptions, discover, grade_submission
from grader.report import render_scorecard
from grader.sandbox import Limits, Sandbox, SandboxSession, resolve_sandbox
from grader.settings import Settings
from tests.conftest import GOOD_TOY_CELLS, REPO, write_submission


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine without bubblewrap: ``shutil.which('bwrap')`` finds nothing."""
    real = shutil.which
    monkeypatch.setattr(sandbox_module.shutil, "which",
                        lambda name, *a, **k: None if name == "bwrap" else real(name, *a, **k))
    resolve_sandbox.cache_clear()
    yield
    resolve_sandbox.cache_clear()


def test_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown sandbox 'docker'"):
        resolve_sandbox("docker")


def test_auto_without_bubblewrap_warns(no_bwrap: None) -> None:
    chosen = resolve_sandbox("auto")
    assert chosen.kind == "none" and not chosen.sandboxed
    assert chosen.warning is not None and "bubblewrap (bwrap) is not installed" in chosen.warning
    assert "apt-get install bubblewrap" in chosen.warning


def test_bwrap_without_bubblewrap_is_refused(no_bwrap: None) -> None:
    with pytest.raises(UsageError, match="--sandbox bwrap: bubblewrap"):
        resolve_sandbox("bwrap")


def test_cli_bwrap_without_bubblewrap_exits_2(no_bwrap: None, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path))
    folder = write_submission(tmp_path, "team", GOOD_TOY_CELLS)
    code = main(["check", str(folder), "--out", str(tmp_path / "out"), "--sandbox", "bwrap"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bubblewrap (bwrap) is not installed" in err and "fix:" in err
    assert not (tmp_path / "out").exists()


def test_scorecard_carries_the_warning(no_bwrap: None, make_toy: Callable[..., Settings],
                                       tmp_path: Path) -> None:
    settings = make_toy()
    options = GradeOptions(sandbox=resolve_sandbox("auto"))
    result = grade_submission(discover(write_submission(tmp_path, "good", GOOD_TOY_CELLS)),
                              settings, options)
    assert result.verdict == "pass"  # still graded, only not sandboxed
    assert result.environment.sandbox.startswith("none")
    html = render_scorecard(result)
    assert "This run was not sandboxed" in html
    assert "bubblewrap (bwrap) is not installed" in html


def _argv(readonly: list[Path], writable: list[Path]) -> list[str]:
    session = SandboxSession(Sandbox("bwrap", "test", bwrap="/usr/bin/bwrap", uid=65534),
                             Limits(memory_mb=512, processes=64, file_mb=8, tmp_mb=32), tuple(readonly),
                             "cpu")
    session.workdir, session.writable = writable[0], tuple(writable)  # hand_over would chown
    return session.wrap(["python", "-m", "grader.runner", "job.json"],
                        {"GRADER_DATA_DIR": "/secret", "PYTHONUNBUFFERED": "1"})


def test_command_binds_only_what_the_kernel_needs(tmp_path: Path) -> None:
    view, hidden, work, run = (tmp_path / n for n in ("view", "hidden", "work", "run"))
    argv = _argv([view, hidden], [work, run])
    pairs = {(argv[i], argv[i + 1]) for i in range(len(argv) - 1)}
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in argv
    assert ("--ro-bind", str(view)) in pairs and ("--ro-bind", str(hidden)) in pairs
    assert ("--bind", str(work)) in pairs and ("--bind", str(run)) in pairs
    bound = {argv[i + 1] for i in range(len(argv) - 1) if argv[i] in ("--bind", "--ro-bind")}
    assert str(REPO) not in bound  # the project (hidden split lists) is not in the sandbox
    assert str(REPO / "grader") in bound  # only the package is
    assert not any(path == "/" or path.startswith(("/work/shared", "/home")) for path in bound)
    assert "/secret" not in " ".join(argv)  # environment is rebuilt, not passed on
    assert argv[-4:] == ["python", "-m", "grader.runner", "job.json"]
    assert "--nproc=64" in argv and f"--fsize={8 * 2**20}" in argv
    if os.geteuid() == 0:  # root: bubblewrap as root, then setpriv drops to the uid
        assert "setpriv" in argv and "--reuid=65534" in argv
    else:
        assert ("--uid", "65534") in pairs


def test_limits_come_from_the_challenge() -> None:
    from grader.challenge import ExecutionSpec

    limits = ExecutionSpec(memory_mb=2048, max_processes=99, max_file_mb=5, tmp_mb=17,
                           disk_mb=300).limits()
    assert limits == Limits(memory_mb=2048, processes=99, file_mb=5, tmp_mb=17, disk_mb=300)
