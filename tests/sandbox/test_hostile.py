"""The hostile-notebook suite: submissions that attack the grader, graded in one batch per sandbox.

Each hostile notebook is bounded so that it stops by itself even if the sandbox failed: it forks
at most 3,000 processes, allocates at most 4 GiB, writes at most 3 GiB, sleeps at most 120 s and
connects only to 127.0.0.1. Those that exhaust a resource, or whose attack only a sandbox can stop
(reading files, the network, writing outside the folder), run only under ``--sandbox bwrap``.

One batch per sandbox (``grader check`` on the good submission and every hostile one), then one
test per hostile notebook reads its ``result.json``: none may pass, crash the batch, leave a
process running, or change another submission's result.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from grader.cli.main import main
from grader.sandbox.session import resolve_sandbox
from tests.support.toy import GOOD_TOY_CELLS, build_toy, write_submission

pytestmark = pytest.mark.kernel

LIMITS = """memory_mb = 1024
max_processes = 256
max_file_mb = 64
tmp_mb = 64
disk_mb = 128
"""
NONCE = f"{random.randrange(10**6):06d}"
MARKER = f"120.{NONCE}"  # argument of every `sleep` a hostile notebook leaves behind
BAD_PREDICT = ("CLASS_NAMES = ['red', 'green', 'blue']\n"
               "def predict(images):\n    return ['red'] * len(images)\n"
               "predict_transfer = predict")
Result = dict[str, Any]


@dataclass(frozen=True)
class Hostile:
    """A hostile notebook: its cells (``{NAME}`` filled from the batch's paths), the sandboxes
    it runs under, and the assertions its ``result.json`` must satisfy."""

    cells: tuple[str, ...]
    modes: tuple[str, ...]
    expect: Callable[[Result, Batch], None]


@dataclass
class Batch:
    mode: str
    root: Path
    out: Path
    paths: dict[str, str]
    exit_code: int
    seconds: float
    strays: list[str]
    connections: list[bytes]
    before: dict[str, bytes]

    def result(self, name: str) -> Result:
        data: Result = json.loads((self.out / name / "result.json").read_text())
        return data


def _criteria(result: Result) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["notebooks"][0]["criteria"]}


def _execution(result: Result) -> dict[str, Any]:
    execution: dict[str, Any] = result["notebooks"][0]["execution"]
    return execution


def _fails_accuracy(result: Result, batch: Batch) -> None:
    assert result["verdict"] == "fail"
    accuracy = _criteria(result)["accuracy"]
    assert accuracy["status"] in ("fail", "not_measured")  # not_measured: the run stopped early
    assert accuracy["measured"].get("accuracy", 0) <= 0.34, accuracy


def _stopped(status: str, *words: str) -> Callable[[Result, Batch], None]:
    def expect(result: Result, batch: Batch) -> None:
        assert result["verdict"] == "fail"
        execution = _execution(result)
        assert execution["status"] == status, execution
        runs = _criteria(result)["runs"]
        assert runs["status"] == "fail"
        for word in words:
            assert word in runs["message"], runs["message"]

    return expect


def _labels_unreachable(result: Result, batch: Batch) -> None:
    _fails_accuracy(result, batch)
    assert _criteria(result)["runs"]["status"] == "pass"
    seen = {row["prediction"] for row in result["notebooks"][0]["new_images"]}
    assert seen == {"found 0 images, 0 hashes, 0 split lines, grader visible: False"}, seen


def _fake_claim(result: Result, batch: Batch) -> None:
    _fails_accuracy(result, batch)
    nb = result["notebooks"][0]
    assert nb["claimed_accuracy"] == pytest.approx(0.991) and nb["claim_flagged"]


def _memory(result: Result, batch: Batch) -> None:
    assert result["verdict"] == "fail"
    execution = _execution(result)
    assert (execution["status"] == "kernel_died"
            or (execution["status"] == "cell_error" and "MemoryError" in execution["message"])), execution


def _no_network(result: Result, batch: Batch) -> None:
    _stopped("cell_error", "ConnectionRefusedError")(result, batch)
    assert batch.connections == []


def _nothing_written_outside(result: Result, batch: Batch) -> None:
    _fails_accuracy(result, batch)
    for target, content in batch.before.items():
        assert Path(target).read_bytes() == content, f"{target} was changed"
    for target in ("outside/pwned.txt", "project/challenges/pwned.txt", "data/pwned.txt"):
        assert not (batch.root / target).exists(), f"{target} was written"
    assert batch.result("first")["verdict"] == "pass"


def _small_scorecard(result: Result, batch: Batch) -> None:
    _fails_accuracy(result, batch)
    assert (batch.out / "output-flood" / "result.json").stat().st_size < 1_000_000
    assert (batch.out / "output-flood" / "scorecard.html").stat().st_size < 2_000_000


def _escaped(result: Result, batch: Batch) -> None:
    assert result["verdict"] == "fail"
    message = _criteria(result)["accuracy"]["message"]
    assert "not a class name" in message and "script" not in message, message  # counted, not echoed
    html = (batch.out / "script-injection" / "scorecard.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "<script>alert" not in (batch.out / "index.html").read_text()


def _no_leak(result: Result, batch: Batch) -> None:
    assert result["verdict"] == "fail"
    text = (batch.out / "forge-results" / "result.json").read_text()
    html = (batch.out / "forge-results" / "scorecard.html").read_text()
    assert "red/red0.png" not in text and "red/red0.png" not in html
    assert "toy hidden split" not in text and "toy hidden split" not in html


def _hidden_unreadable_from_cells(result: Result, batch: Batch) -> None:
    _fails_accuracy(result, batch)
    seen = {row["prediction"] for row in result["notebooks"][0]["new_images"]}
    assert seen == {"hidden seen: EACCES EACCES EACCES EROFS"}, seen


def _nothing_carried_out(result: Result, batch: Batch) -> None:
    assert result["verdict"] == "fail"
    accuracy = _criteria(result)["accuracy"]["message"]
    # predict raised only where it could read a hidden image: the attack had them in hand
    assert "raised an exception on the hidden test images; its message is not shown" in accuracy, accuracy
    for name in ("result.json", "scorecard.html"):
        text = (batch.out / "carries-hidden-out" / name).read_text()
        assert "HIDDEN-" not in text, f"a hidden image's digest reached {name}"
    nb = result["notebooks"][0]
    assert [row["prediction"] for row in nb["new_images"]] == ["red"] * len(nb["new_images"])


# where a hostile notebook finds the probe's config: the runner's job file, named on its command line
_JOB = ("import json, os\n"
        "_argv = open(f'/proc/{{os.getppid()}}/cmdline', 'rb').read().split(bytes(1))\n"
        "JOB_PATH = next(a.decode() for a in _argv if a.endswith(b'job.json'))\n"
        "JOB = json.load(open(JOB_PATH))\n"
        "HIDDEN = JOB['probe']['hidden_dir']\nHIDDEN_FILES = JOB['probe']['hidden_files']\n"
        "def read_hidden():\n"
        "    try:\n        return open(os.path.join(HIDDEN, HIDDEN_FILES[0]), 'rb').read()\n"
        "    except OSError:\n        return None\n")

BOTH, BWRAP = ("bwrap", "none"), ("bwrap",)

HOSTILE: dict[str, Hostile] = {
    "reads-labels": Hostile((
        "import glob, hashlib, json, os\nimport numpy as np\nfrom PIL import Image\n"
        "roots = {{{DATA!r}, os.environ.get('GRADER_DATA_DIR', '')}}\n"
        "grader_visible = False\n"
        "for env in glob.glob('/proc/*/environ'):\n"
        "    try:\n        items = open(env, 'rb').read().split(bytes(1))\n"
        "    except OSError:\n        continue\n"
        "    for item in items:\n"
        "        if item.startswith(b'GRADER_'):\n"
        "            grader_visible = True\n"
        "            roots.add(item.split(b'=', 1)[1].decode())\n"
        "for cmd in glob.glob('/proc/*/cmdline'):  # pytest, which runs the grader\n"
        "    try:\n        argv = open(cmd, 'rb').read().split(bytes(1))\n"
        "    except OSError:\n        continue\n"
        "    grader_visible |= any(a == b'pytest' or a.endswith(b'/pytest') for a in argv)\n"
        "table, hashes, split = {{}}, {{}}, []\n"
        "for root in filter(None, roots):\n"
        "    for path in glob.glob(os.path.join(root, '**', '*.png'), recursive=True):\n"
        "        with Image.open(path) as im:\n"
        "            key = hashlib.md5(np.asarray(im.convert('RGB')).tobytes()).hexdigest()\n"
        "        table[key] = os.path.basename(os.path.dirname(path))\n"
        "for path in glob.glob({CACHE!r} + '/phash/*.json'):\n"
        "    hashes.update(json.load(open(path)))\n"
        "for path in glob.glob({PROJECT!r} + '/challenges/splits/*.txt'):\n"
        "    split += open(path).read().split()\n"
        "found = (f'found {{len(table)}} images, {{len(hashes)}} hashes, {{len(split)}} split "
        "lines, grader visible: {{grader_visible}}')\n"
        "def predict(images):\n"
        "    out = []\n"
        "    for im in images:\n"
        "        if im.size == (64, 48):  # a new image: report what was found\n"
        "            out.append(found)\n"
        "            continue\n"
        "        out.append(table.get(hashlib.md5(np.asarray(im).tobytes()).hexdigest(), 'red'))\n"
        "    return out\n"
        "predict_transfer = predict\nCLASS_NAMES = ['red', 'green', 'blue']",
    ), BWRAP, _labels_unreachable),
    "fake-accuracy": Hostile((BAD_PREDICT, "print('Test accuracy: 0.991')"), BOTH, _fake_claim),
    "monkeypatch": Hostile((
        BAD_PREDICT,
        "import builtins, json\n"
        "class AlwaysEqual(str):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    __hash__ = str.__hash__\n"
        "def predict(images):\n    return [AlwaysEqual('red') for _ in images]\n"
        "_real_dump = json.dump\n"
        "def forged_dump(obj, fh, **kw):\n"
        "    obj['models'] = {{'predict': {{'predictions': ['green'] * 6, 'seconds': 0.1}}}}\n"
        "    return _real_dump(obj, fh, **kw)\n"
        "json.dump = forged_dump\n"
        "builtins.isinstance = lambda obj, cls: True\n"
        "_grader_probe = lambda config: None",
    ), BOTH, _fails_accuracy),
    "sigint-loop": Hostile((
        BAD_PREDICT,
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "end = time.time() + 120\nwhile time.time() < end:\n    pass",
    ), BOTH, _stopped("cell_timeout", "ran past")),
    "fork-bomb": Hostile((
        BAD_PREDICT,
        "import os\nchildren = []\n"
        "for _ in range(3000):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.execv('/bin/sleep', ['sleep', {MARKER!r}])\n"
        "    children.append(pid)",
    ), BWRAP, _stopped("cell_error", "BlockingIOError")),
    "memory-hog": Hostile((
        BAD_PREDICT,
        "import numpy as np\nblocks = []\n"
        "for _ in range(64):  # at most 4 GiB\n"
        "    blocks.append(np.ones(8 * 2**20))",
    ), BWRAP, _memory),
    "big-file": Hostile((
        BAD_PREDICT,
        "chunk = b'x' * 2**24\nwith open('big.bin', 'wb') as fh:\n"
        "    for _ in range(192):  # at most 3 GiB\n        fh.write(chunk)",
    ), BWRAP, _stopped("cell_error", "File too large")),
    "many-files": Hostile((
        BAD_PREDICT,
        "chunk = b'x' * 2**24\n"
        "for i in range(192):  # at most 3 GiB in files of 16 MiB\n"
        "    with open(f'part{{i}}.bin', 'wb') as fh:\n        fh.write(chunk)",
    ), BWRAP, _stopped("cell_error", "No space left on device")),
    "network": Hostile((
        BAD_PREDICT,
        "import socket\nwith socket.create_connection(('127.0.0.1', {PORT}), timeout=5) as s:\n"
        "    s.sendall(b'the hidden labels, please')\n    labels = s.recv(1000)",
    ), BWRAP, _no_network),
    "kill-parent": Hostile((
        BAD_PREDICT,
        "import os, signal, subprocess, time\nsubprocess.Popen(['sleep', {MARKER!r}])\n"
        "os.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(30)",
    ), BOTH, _stopped("runner_failed")),
    "new-session": Hostile((
        BAD_PREDICT,
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', {MARKER!r}], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execv('/bin/sleep', ['sleep', {MARKER!r}])\n"
        "    os._exit(0)",
    ), BOTH, _fails_accuracy),
    "write-outside": Hostile((
        BAD_PREDICT,
        "import os\n"
        "targets = [{OUTSIDE!r}, {PROJECT!r} + '/challenges/pwned.txt', {DATA!r} + '/pwned.txt',\n"
        "           {OUT!r} + '/first/result.json', {CACHE!r} + '/pwned.txt', '../pwned.txt']\n"
        "for target in targets:\n"
        "    try:\n"
        "        with open(target, 'w') as fh:\n            fh.write('{{\"verdict\": \"pass\"}}')\n"
        "    except OSError as err:\n        print(target, err)",
    ), BWRAP, _nothing_written_outside),
    "output-flood": Hostile((
        BAD_PREDICT, "for _ in range(100):  # 100 MB\n    print('x' * (2**20 - 1))",
    ), BOTH, _small_scorecard),
    "script-injection": Hostile((
        "CLASS_NAMES = ['<script>alert(1)</script>']\nprint('<script>alert(2)</script>')\n"
        "def predict(images):\n    return ['<script>alert(3)</script>'] * len(images)\n"
        "predict_transfer = predict",
    ), BOTH, _escaped),
    # the hidden images are behind a closed gate while the cells run (grader.sandbox.gate)
    "peeks-hidden": Hostile((
        _JOB,
        "import errno\nseen = []\n"
        "for attempt in (lambda: os.listdir(HIDDEN), lambda: os.listdir(os.path.dirname(HIDDEN)),\n"
        "                lambda: open(os.path.join(HIDDEN, HIDDEN_FILES[0]), 'rb').read(),\n"
        "                lambda: os.chmod(os.path.dirname(HIDDEN), 0o755) or 'opened'):\n"
        "    try:\n        seen.append(f'read {{len(attempt())}}')\n"
        "    except OSError as err:\n        seen.append(errno.errorcode.get(err.errno, '?'))\n"
        "found = 'hidden seen: ' + ' '.join(seen)\n"
        "CLASS_NAMES = ['red', 'green', 'blue']\n"
        "def predict(images):\n"
        "    return [found if im.size == (64, 48) else 'red' for im in images]\n"
        "predict_transfer = predict",
    ), BWRAP, _hidden_unreadable_from_cells),
    # once they are open, whatever the kernel writes, prints or raises stays out of the scorecard
    "carries-hidden-out": Hostile((
        _JOB,
        "import hashlib, threading, time\n"
        "state = {{}}\n"
        "def carry():\n"
        "    for _ in range(12000):\n"
        "        data = read_hidden()\n"
        "        if data is not None:\n            break\n"
        "        time.sleep(0.01)\n"
        "    else:\n        return\n"
        "    marker = 'HIDDEN-' + hashlib.md5(data).hexdigest()\n"
        "    run_dir = os.path.dirname(JOB_PATH)\n"
        "    forged = {{'schema': 1, 'class_names': [marker, 'red', 'green', 'blue'],\n"
        "              'new_images': {{'files': JOB['probe']['new_images'],\n"
        "                             'predictions': [marker] * len(JOB['probe']['new_images'])}}}}\n"
        "    for name, text in (('probe.json', json.dumps(forged)), ('runner.log', marker)):\n"
        "        with open(os.path.join(run_dir, name), 'w') as fh:\n            fh.write(text)\n"
        "    with open(os.path.join(MODEL_DIR, marker + '.pt'), 'wb') as fh:\n        fh.write(data)\n"
        "    print(marker)\n"
        "    state['marker'] = marker\n"
        "threading.Thread(target=carry, daemon=True).start()\n"
        "CLASS_NAMES = ['red', 'green', 'blue']\n"
        "def predict(images):\n"
        "    data = read_hidden()\n"
        "    if data is not None:\n"
        "        raise ValueError('HIDDEN-' + hashlib.md5(data).hexdigest())\n"
        "    return ['red'] * len(images)\n"
        "def predict_transfer(images):\n"
        "    for _ in range(500):  # the thread has written everything before the probe ends\n"
        "        if 'marker' in state:\n            return [state['marker']] * len(images)\n"
        "        time.sleep(0.01)\n"
        "    return ['red'] * len(images)",
    ), BWRAP, _nothing_carried_out),
    "sys-exit": Hostile((BAD_PREDICT, "import sys\nsys.exit(0)"), BOTH,
                        _stopped("cell_error", "SystemExit")),
    "os-exit": Hostile((BAD_PREDICT, "import os\nos._exit(0)"), BOTH,
                       _stopped("kernel_died", "the kernel died")),
    "forge-results": Hostile((
        BAD_PREDICT,
        "import builtins, os\n"
        "argv = open(f'/proc/{{os.getppid()}}/cmdline', 'rb').read().split(bytes(1))\n"
        "run_dir = os.path.dirname(next(a.decode() for a in argv if a.endswith(b'job.json')))\n"
        "probe = os.path.join(run_dir, 'probe.json')\n"
        "os.symlink({SPLIT!r}, probe)\n"
        "_real_open = builtins.open\n"
        "def guarded_open(file, *args, **kwargs):\n"
        "    if str(file) == probe:\n        raise PermissionError('the forgery stays')\n"
        "    return _real_open(file, *args, **kwargs)\n"
        "builtins.open = guarded_open",
    ), BOTH, _no_leak),
}


def _sandbox_available() -> bool:
    return resolve_sandbox("auto").kind == "bwrap"


def _listen() -> tuple[socket.socket, list[bytes]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                got.append(conn.recv(1000) or b"connected")

    threading.Thread(target=serve, daemon=True).start()
    return server, got


def _strays(since: float) -> list[str]:
    """Processes left by a run: sleepers with the marker, kernels, runners, sandbox processes."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "uids", "status"]):
        info = proc.info
        if info["create_time"] is None or info["create_time"] < since - 1:
            continue
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(info["cmdline"] or [])
        nobody = info["uids"] is not None and info["uids"].real == 65534
        if MARKER in cmd or "ipykernel" in cmd or "grader.student.runner" in cmd or "bwrap" in cmd or nobody:
            found.append(f"{info['pid']}: {cmd[:200]}")
    return found


@pytest.fixture(scope="module", params=["bwrap", "none"])
def batch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    mode: str = request.param
    if mode == "bwrap" and not _sandbox_available():
        if os.environ.get("GRADER_REQUIRE_SANDBOX"):
            pytest.fail("GRADER_REQUIRE_SANDBOX is set but bubblewrap cannot make a sandbox: "
                        f"{resolve_sandbox('auto').warning}")
        pytest.skip(f"no sandbox here: {resolve_sandbox('auto').warning}")
    root = tmp_path_factory.mktemp(f"hostile-{mode}")
    settings = build_toy(root, deadline=60, cell_timeout=10, execution=LIMITS)
    (root / "outside").mkdir()
    server, connections = _listen()
    out = root / "out"
    paths = {"DATA": str(settings.data_dir), "PROJECT": str(settings.project_dir),
             "CACHE": str(settings.cache_dir), "OUT": str(out), "MARKER": MARKER,
             "OUTSIDE": str(root / "outside" / "pwned.txt"),
             "SPLIT": str(settings.project_dir / "challenges" / "splits" / "toy-hidden.txt"),
             "PORT": str(server.getsockname()[1])}
    subs = root / "subs"
    first = write_submission(subs, "first", GOOD_TOY_CELLS)
    folders = [write_submission(subs, "good", GOOD_TOY_CELLS)]
    for name, hostile in HOSTILE.items():
        if mode in hostile.modes:
            cells = [c.format(**paths) for c in hostile.cells]
            folders.append(write_submission(subs, name, cells))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
        mp.setenv("GRADER_DATA_DIR", str(settings.data_dir))
        mp.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
        started = time.time()
        # graded before the batch, so that "write-outside" may try to overwrite its result
        code = main(["check", "--sandbox", mode, "--out", str(out), str(first)])
        before = {str(out / "first" / "result.json"): (out / "first" / "result.json").read_bytes()}
        code = max(code, main(["check", "--sandbox", mode, "--out", str(out),
                               *map(str, folders)]))
        seconds = time.time() - started
    time.sleep(1)
    strays = _strays(started)
    server.close()
    yield Batch(mode=mode, root=root, out=out, paths=paths, exit_code=code, seconds=seconds,
                strays=strays, connections=connections, before=before)
    for line in strays:  # leave nothing behind even when a test failed
        try:
            psutil.Process(int(line.split(":")[0])).kill()
        except psutil.Error:
            pass


def test_the_batch_survives_and_the_good_submission_passes(batch: Batch) -> None:
    assert batch.exit_code == 1  # some failed; no harness fault (3), no usage error (2)
    good = batch.result("good")
    assert good["verdict"] == "pass", _criteria(good)
    assert good["environment"]["sandbox"].startswith("bubblewrap" if batch.mode == "bwrap" else "none")
    index = (batch.out / "index.html").read_text()
    for name, hostile in HOSTILE.items():
        if batch.mode in hostile.modes:
            assert f"{name}/scorecard.html" in index


def test_no_process_is_left_behind(batch: Batch) -> None:
    assert batch.strays == []


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_notebook_fails_with_its_reason(batch: Batch, name: str) -> None:
    hostile = HOSTILE[name]
    if batch.mode not in hostile.modes:
        pytest.skip(f"{name} runs only under --sandbox {', '.join(hostile.modes)}")
    result = batch.result(name)
    assert result["verdict"] == "fail"
    assert result["notebooks"][0]["execution"]["sandboxed"] is (batch.mode == "bwrap")
    hostile.expect(result, batch)
