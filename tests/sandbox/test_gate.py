"""The gate of the hidden images (grader/sandbox/gate.py) and what crosses back once it is open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader.evidence.records import HiddenProbeOutput, ProbeOutput
from grader.evidence.runfacts import without_folders
from grader.sandbox.gate import make_gate
from grader.score.score import NOT_A_CLASS, answers_as_classes
from tests.support.toy import build_toy


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_closed_gate_keeps_another_uid_out_until_it_opens() -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="grader-gate-test-"))  # pytest's are 0700: nobody is out anyway
    try:
        _check_gate(tmp_path)
    finally:
        os.chmod(tmp_path, 0o700)
        shutil.rmtree(tmp_path)


def _check_gate(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "0001.png").write_bytes(b"not really a png")
    box = tmp_path / "box"
    box.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    gate = make_gate(box, [hidden], mounted=False)
    target = gate.path_of(hidden)
    assert target.parent == gate.root and target.name == "s0"  # a neutral name
    assert not gate.is_open
    for argv in (("ls", str(target)), ("cat", str(target / "0001.png")), ("ls", str(gate.root))):
        closed = _as_nobody(*argv)
        assert closed.returncode != 0 and "Permission denied" in closed.stderr, closed
    gate.open()
    assert gate.is_open
    assert _as_nobody("cat", str(target / "0001.png")).stdout == "not really a png"
    with pytest.raises(KeyError):
        gate.path_of(tmp_path)


def test_a_mounted_gate_holds_empty_mount_points(tmp_path: Path) -> None:
    sources = [tmp_path / "a", tmp_path / "b"]
    for source in sources:
        source.mkdir()
    gate = make_gate(tmp_path, sources, mounted=True)
    assert oct(os.stat(gate.root).st_mode & 0o777) == "0o0"
    gate.open()
    assert [t.name for _, t in gate.folders] == ["s0", "s1"]
    assert all(t.is_dir() and not t.is_symlink() and not any(t.iterdir()) for _, t in gate.folders)


def _visible(**fields: object) -> ProbeOutput:
    return ProbeOutput.model_validate({"schema": 1, "class_names": ["red", "green", "blue"], **fields})


def test_the_hidden_step_is_read_as_answers_and_fixed_error_kinds() -> None:
    hidden = HiddenProbeOutput.model_validate({
        "schema": 1, "status": "ok",
        "models": {"predict": {"predictions": ["red", "green"]}, "transfer": {"error": "raised"}},
        "extra_sets": {"added": {"error": "wrong_count"}}})
    # a visible step's file the kernel forged with answers before the gate: dropped
    forged = _visible(models={"predict": {"predictions": ["blue", "blue"]}})
    merged = hidden.merged_into(forged, {"predict": "predict", "transfer": "predict_transfer"})
    assert merged.models["predict"].predictions == ["red", "green"]
    assert merged.models["transfer"].error is not None
    assert merged.models["transfer"].error.startswith("raised an exception on the hidden test images")
    assert "different number of answers" in (merged.extra_sets["added"].error or "")
    assert merged.class_names == ["red", "green", "blue"]


@pytest.mark.parametrize("bad", [
    {"schema": 1, "status": "ok", "models": {"predict": {"error": "ValueError: 9f86d081884c7d65"}}},
    {"schema": 1, "status": "ok", "models": {"predict": {"predictions": ["red"], "seconds": 0.5}}},
    {"schema": 1, "status": "the kernel's own words"},
])
def test_kernel_text_in_the_hidden_step_is_not_valid(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        HiddenProbeOutput.model_validate(bad)


def test_a_failed_hidden_step_fails_every_contract_function() -> None:
    hidden = HiddenProbeOutput.model_validate({"schema": 1, "status": "timeout"})
    merged = hidden.merged_into(_visible(), {"predict": "predict", "transfer": "predict_transfer"})
    assert set(merged.models) == {"predict", "transfer"}
    assert all("time limit" in (run.error or "") for run in merged.models.values())


def test_answers_that_are_no_class_name_are_counted_not_kept(tmp_path: Path) -> None:
    settings = build_toy(tmp_path)
    from grader.core.challenge import load_challenge

    challenge = load_challenge(settings.project_dir, "toy")
    probe = _visible(models={"predict": {"predictions": ["red", "9f86d081884c7d65", "blue"]}},
                     extra_sets={"mnist": {"predictions": ["7", "<img src=x>"]}})
    cleaned = answers_as_classes(probe, challenge)
    assert cleaned.models["predict"].predictions == ["red", NOT_A_CLASS, "blue"]
    assert cleaned.extra_sets["mnist"].predictions == ["7", NOT_A_CLASS]


def test_messages_name_no_folder_of_the_server() -> None:
    text = ('File "/work/main/.venv/lib/python3.11/site-packages/zmq/x.py", line 3: '
            "PermissionError: '/tmp/grader-team-abc/gate/s0/0001.png' (see https://docs.python.org/3/x)")
    cleaned = without_folders(text)
    assert "/work" not in cleaned and "/tmp" not in cleaned and "gate" not in cleaned
    assert "…/x.py" in cleaned and "…/0001.png" in cleaned and "https://docs.python.org/3/x" in cleaned


_NESTED = """
import os, shutil, subprocess, sys, tempfile
from pathlib import Path
from grader.sandbox.gate import make_gate
from grader.core.challenge import Limits
from grader.sandbox.session import Sandbox, SandboxSession
assert os.geteuid() != 0
box = Path(sys.argv[1])
src = box / "src"
src.mkdir()
(src / "0001.png").write_text("SECRET-HIDDEN")
gate = make_gate(box, [src], mounted=True)
session = SandboxSession(Sandbox("bwrap", "", bwrap=shutil.which("bwrap"), uid=65534), Limits(), (), "cpu",
                         gate=gate)
image = gate.path_of(src) / "0001.png"
argv = session.wrap(["/bin/sh", "-c", f"cat {image}; unshare -Ur cat {image}"], {"PATH": "/usr/bin:/bin"})
done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
gate.open()
print(done.stdout, done.stderr)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(c) for c in ("bwrap", "unshare")),
                    reason="needs root (to act as a non-root grader in a user namespace), bwrap and unshare")
def test_a_non_root_graders_sandbox_cannot_pass_the_gate_from_a_nested_user_namespace(tmp_path: Path) -> None:
    """Without root, bubblewrap maps the kernel's uid to the grader's, which owns the gate: a user
    namespace of the kernel's own would make it root over the gate (the red team's attack on
    issue 25). The grader runs here as uid 1000 of a user namespace (``unshare --map-user``)."""
    os.chmod(tmp_path, 0o755)
    done = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", sys.executable, "-c",
                           _NESTED, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    if "bubblewrap" in done.stderr and "Operation not permitted" in done.stderr:
        pytest.skip(f"no unprivileged bubblewrap here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Permission denied" in done.stdout, done.stdout  # the closed gate, as the kernel's uid
    assert "SECRET-HIDDEN" not in done.stdout, "a nested user namespace passed the closed gate"
