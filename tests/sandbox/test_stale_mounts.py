"""The disk-limit tmpfs mounts of a grading process killed with SIGKILL, and their cleaning.

Real mounts (root only: skipped where ``mount`` cannot mount a tmpfs), all under ``tmp_path`` so
that other graders' folders in ``/tmp`` are never touched; every mount made is unmounted at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.core.challenge import Limits
from grader.core.settings import Settings
from grader.sandbox import mounts as mounts_module
from grader.sandbox.mounts import clean_stale_mounts
from grader.sandbox.session import Sandbox, resolve_sandbox
from tests.conftest import REPO
from tests.support.toy import GOOD_TOY_CELLS, write_submission

# a grading process as grader.pipeline.grade makes its run folders: a grader-* folder in the temp folder, its
# working copy and run folder mounted by the sandbox's own function; then it waits to be killed
_CHILD = """
import sys, tempfile, time
from pathlib import Path
from grader.sandbox.mounts import mount_tmpfs
box = Path(tempfile.mkdtemp(prefix="grader-child-", dir=sys.argv[1]))
for name in ("submission", "run"):
    (box / name).mkdir()
    assert mount_tmpfs(box / name, 1), name
print(box, flush=True)
time.sleep(600)
"""


def _mount_points() -> list[str]:
    """Mount points of /proc/self/mountinfo (field 5), read here without the grader's parser."""
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def _unmount_under(folder: Path) -> None:
    for point in reversed(_mount_points()):
        if point.startswith(f"{folder}/"):
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, where a tmpfs can be mounted (skips where it cannot); unmounts what is left."""
    if os.geteuid() != 0:
        pytest.skip("tmpfs mounts need root")
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    subprocess.run(["umount", str(probe)], capture_output=True, check=True)
    try:
        yield tmp_path
    finally:
        _unmount_under(tmp_path)


def _start_child(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp)], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    box = Path(child.stdout.readline().strip())
    assert box.parent == tmp and box.name.startswith("grader-child-"), box
    return child, box


def _own_mount(box: Path, *, owner: bool = True) -> Path:
    box.mkdir()
    folder = box / "submission"
    folder.mkdir()
    if owner:
        assert mounts_module.mount_tmpfs(folder, 1)
    else:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                       check=True)
    return folder


def test_the_mounts_of_a_killed_grader_are_cleaned_and_no_others(mounts: Path) -> None:
    killed, killed_box = _start_child(mounts)
    live, live_box = _start_child(mounts)
    try:
        mine = _own_mount(mounts / "grader-mine")  # its owner: this test's process, alive
        reused = _own_mount(mounts / "grader-reused")  # this pid, but another process's start time
        owner_file = reused.parent / ".submission.grader-owner"
        pid, started = owner_file.read_text().split()
        assert (int(pid), started) == (os.getpid(), mounts_module.start_time(os.getpid()))
        owner_file.write_text(f"{pid} {int(started) - 1}\n")
        unowned = _own_mount(mounts / "grader-unowned", owner=False)  # not provably ours
        other = _own_mount(mounts / "other-name")  # not a grader-* folder: never looked at
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=10) == -signal.SIGKILL
        (other.parent / ".submission.grader-owner").write_text(f"{killed.pid} 1\n")  # a dead owner
        stale = [killed_box / "submission", killed_box / "run", reused]
        assert set(map(str, stale)) <= set(_mount_points())  # SIGKILL left them

        cleaned = clean_stale_mounts(tmp_dir=mounts)

        assert sorted(cleaned) == sorted(stale)
        points = set(_mount_points())
        assert not set(map(str, stale)) & points
        assert not killed_box.exists() and not reused.parent.exists()  # empty after the unmount: removed
        alive = [live_box / "submission", live_box / "run", mine, unowned, other]
        assert set(map(str, alive)) <= points
        assert (live_box / ".run.grader-owner").read_text() == f"{live.pid} {mounts_module.start_time(live.pid)}\n"
        assert clean_stale_mounts(tmp_dir=mounts) == []  # nothing more to clean: the rest is alive
    finally:
        for child in (killed, live):
            child.kill()
            child.wait(timeout=10)
            assert child.stdout is not None
            child.stdout.close()


# grades one submission in a thread, as a server's worker does (tests/pipeline/test_pipeline.py's lifeline test)
_GRADING = """
import sys, threading
from pathlib import Path
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.sandbox.session import resolve_sandbox
from grader.core.settings import Settings
project, data, cache, folder = sys.argv[1:5]
settings = Settings(project_dir=Path(project), data_dir=Path(data), cache_dir=Path(cache), python=sys.executable)
threading.Thread(target=grade_submission, args=(discover(Path(folder)), settings,
                 GradeOptions(sandbox=resolve_sandbox("bwrap")))).start()
"""


@pytest.mark.kernel
def test_a_grader_killed_while_its_kernel_runs_leaves_mounts_that_are_cleaned(
        mounts: Path, make_toy: Callable[..., Settings]) -> None:
    if resolve_sandbox("auto").kind != "bwrap":
        pytest.skip("the run folders are mounted only in the bubblewrap sandbox")
    settings = make_toy(deadline=120, cell_timeout=100)
    folder = write_submission(mounts, "killed", [GOOD_TOY_CELLS[0], "import time\ntime.sleep(100)"])
    tmp = mounts / "tmp"  # the grader's temp folder: its run folders are made here, not in /tmp
    tmp.mkdir()
    grader = subprocess.Popen([sys.executable, "-c", _GRADING, str(settings.project_dir), str(settings.data_dir),
                               str(settings.cache_dir), str(folder)], cwd=REPO, stdin=subprocess.DEVNULL,
                              env={**os.environ, "TMPDIR": str(tmp)})
    try:
        stop = time.monotonic() + 60
        while time.monotonic() < stop and not list(tmp.glob("grader-killed-*/run/kernel.json")):
            time.sleep(0.1)
        boxes = list(tmp.glob("grader-killed-*"))
        assert len(boxes) == 1 and (boxes[0] / "run" / "kernel.json").exists(), "the kernel never started"
        grader.send_signal(signal.SIGKILL)
        assert grader.wait(timeout=10) == -signal.SIGKILL
        stale = [boxes[0] / "submission", boxes[0] / "run"]
        assert set(map(str, stale)) <= set(_mount_points())

        assert sorted(clean_stale_mounts(tmp_dir=tmp)) == sorted(stale)
        assert not set(map(str, stale)) & set(_mount_points())
    finally:
        if grader.poll() is None:
            grader.kill()
            grader.wait(timeout=10)


def test_a_session_records_its_owner_and_removes_it(mounts: Path) -> None:
    box = mounts / "grader-session"
    box.mkdir()
    workdir, run_dir = box / "submission", box / "run"
    chosen = Sandbox("bwrap", "test", bwrap="/usr/bin/bwrap")
    with chosen.session(workdir=workdir, run_dir=run_dir, limits=Limits(disk_mb=1), readonly=[]):
        assert {str(workdir), str(run_dir)} <= set(_mount_points())
        me = f"{os.getpid()} {mounts_module.start_time(os.getpid())}\n"
        assert (box / ".submission.grader-owner").read_text() == me
        assert (box / ".run.grader-owner").read_text() == me
        assert clean_stale_mounts(tmp_dir=mounts) == []  # this process is alive
    assert not {str(workdir), str(run_dir)} & set(_mount_points())
    assert sorted(p.name for p in box.iterdir()) == ["run", "submission"]  # owner files gone


def test_start_time_is_field_22_after_any_name() -> None:
    import psutil

    renamed = "import time\nopen('/proc/self/comm', 'wb').write(b'\\xff) 1 2 (b')\nprint(flush=True)\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", renamed], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "\n"
        assert Path(f"/proc/{child.pid}/comm").read_bytes() == b"\xff) 1 2 (b\n"  # not UTF-8
        # psutil's create_time is boot time + starttime / clock ticks per second (its _pslinux.py)
        ticks = round((psutil.Process(child.pid).create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))
        assert mounts_module.start_time(child.pid) == str(ticks)
    finally:
        child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
    assert mounts_module.start_time(child.pid) is None  # reaped: gone
