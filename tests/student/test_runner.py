"""The runner's kernel: the early one adopted when it is the kernel jupyter_client would start,
and shut down by itself even when its last output flush cannot get through."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grader.student import runner

pytestmark = pytest.mark.kernel


PRINT_KERNEL = "import os, sys\nprint(os.getpid(), os.getcwd(), sys.argv[-1])"


def _job(tmp_path: Path, *cells: str) -> dict[str, object]:
    workdir, run_dir = tmp_path / "work", tmp_path / "run"
    workdir.mkdir()
    run_dir.mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(cell) for cell in cells or (PRINT_KERNEL,)])
    nbformat.write(nb, run_dir / "input.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    return {
        "notebook": str(run_dir / "input.ipynb"), "executed": str(run_dir / "executed.ipynb"),
        "facts": str(run_dir / "facts.json"), "workdir": str(workdir), "kernel_name": "python3",
        "connection_file": str(run_dir / "kernel.json"), "cell_timeout_s": 60,
        "probe_timeout_s": 60, "max_output_bytes": 100_000, "env": env,
        "probe": {"out": str(run_dir / "probe.json")},
    }


def _printed(job: dict[str, object]) -> list[str]:
    executed = nbformat.read(str(job["executed"]), as_version=4)
    return executed.cells[0].outputs[0]["text"].split()


def test_early_kernel_is_the_one_that_runs_the_notebook(tmp_path: Path) -> None:
    job = _job(tmp_path)
    early = runner.start_kernel_early(job)
    assert early is not None
    assert early.argv[-3:-1] == ["-f", os.path.realpath(str(job["connection_file"]))]
    assert oct(Path(str(job["connection_file"])).stat().st_mode & 0o777) == "0o600"
    runner.run(job, early)
    facts = json.loads(Path(str(job["facts"])).read_text())
    assert facts["status"] == "ok", facts
    pid, cwd, last_arg = _printed(job)
    assert int(pid) == early.process.pid
    assert cwd == job["workdir"] and last_arg == runner.HISTORY_ARG
    assert early.process.poll() is not None  # shut down at the end, by jupyter_client
    assert not Path(str(job["connection_file"])).exists()  # and its file cleaned up


def test_early_kernel_with_another_command_is_replaced(tmp_path: Path) -> None:
    job = _job(tmp_path)
    early = runner.start_kernel_early(job)
    assert early is not None
    # as if the python3 kernelspec on the Jupyter path ran another command
    other = early._replace(argv=[*early.argv[:-1], "--some-other-option"])
    runner.run(job, other)
    facts = json.loads(Path(str(job["facts"])).read_text())
    assert facts["status"] == "ok", facts
    pid, _, _ = _printed(job)
    assert int(pid) != early.process.pid
    assert early.process.poll() is not None  # killed, not left running


def test_no_connection_file_means_no_early_kernel(tmp_path: Path) -> None:
    job = _job(tmp_path)
    del job["connection_file"]
    assert runner.start_kernel_early(job) is None
    runner.run(job, None)
    assert json.loads(Path(str(job["facts"])).read_text())["status"] == "ok"


# At shutdown, what ipykernel's race leaves when the main thread stops the IOPub thread while the
# control thread still sends through it: the thread takes no more work (the flush of sys.stdout
# waits), or the control thread's wake-up pipe has no reader left (its zmq send blocks).
STUCK_AT_SHUTDOWN = {
    "flush": "for stream in (sys.stdout, sys.stderr):\n"
             "        stream.pub_thread.schedule = lambda f: None",
    "send": "import zmq\n"
            "    sys.stdout.pub_thread._local.event_pipe = zmq.Context.instance().socket(zmq.PUSH)",
}


@pytest.mark.parametrize("stuck", sorted(STUCK_AT_SHUTDOWN))
def test_kernel_ends_by_itself_when_its_last_sends_cannot_get_through(
        tmp_path: Path, stuck: str) -> None:
    job = _job(tmp_path, "import sys\n"
               "_kernel = get_ipython().kernel\n"
               "_shutdown = _kernel.do_shutdown\n"
               "def _stuck_shutdown(restart):\n"
               f"    {STUCK_AT_SHUTDOWN[stuck]}\n"
               "    return _shutdown(restart)\n"
               "_kernel.do_shutdown = _stuck_shutdown\n")
    early = runner.start_kernel_early(job)
    assert early is not None
    t0 = time.monotonic()
    runner.run(job, early)
    seconds = time.monotonic() - t0
    assert json.loads(Path(str(job["facts"])).read_text())["status"] == "ok"
    # exit status 0: it ended on its own, exit handlers run; -15 is jupyter_client's SIGTERM,
    # sent 2.5 s after the shutdown request to a kernel still waiting
    assert early.process.returncode == 0, (early.process.returncode, seconds)


def _kernelspec_with_env(root: Path) -> Path:
    """A python3 kernelspec with this interpreter's command and an ``env`` of its own."""
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "another python3", "language": "python",
        "env": {"KERNELSPEC_MARK": "from JUPYTER_PATH"}}))
    return spec.parent.parent


PRINT_MARK = "import os\nprint(os.getpid(), os.environ.get('KERNELSPEC_MARK', 'native'))"


def test_early_kernel_is_not_adopted_for_a_kernelspec_with_its_own_env(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec_with_env(tmp_path)))
    job = _job(tmp_path, PRINT_MARK)
    early = runner.start_kernel_early(job)
    assert early is not None
    runner.run(job, early)
    pid, *words = _printed(job)
    mark = " ".join(words)
    assert mark == "from JUPYTER_PATH"  # the kernelspec jupyter_client found, as without us
    assert int(pid) != early.process.pid and early.process.poll() is not None


def test_unsandboxed_runner_ignores_the_graders_jupyter_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the sandbox, the kernel is still this interpreter's own python3, whatever
    kernelspec the grader's JUPYTER_PATH holds (bubblewrap clears that variable itself)."""
    from grader.execute.request import RunRequest
    from grader.execute.run import run_notebook

    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec_with_env(tmp_path)))
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PRINT_MARK)])
    result = run_notebook(RunRequest(
        notebook=nb, workdir=workdir, run_dir=tmp_path / "run", cell_timeout_s=60,
        deadline_s=120, probe_timeout_s=60, max_output_bytes=100_000,
        probe={"class_names": ["a"], "models": {}}, python=sys.executable))
    assert result.facts.status == "ok", result.facts.message
    assert result.executed is not None
    assert result.executed.cells[0].outputs[0]["text"].split()[1] == "native"


def test_early_command_is_the_one_jupyter_client_formats(tmp_path: Path) -> None:
    """The early kernel's command is what jupyter_client makes of this environment's python3
    kernelspec (setup.sh installs one with -Xfrozen_modules=off); a wrong guess would only cost
    a discarded kernel, and no time saved."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.connection_file = str(tmp_path / "kernel.json")
    km._launch_args = {}
    assert runner._kernel_command(os.path.realpath(km.connection_file)) == km.format_kernel_cmd()


class _Channel:
    """A kernel channel that hands out ``script`` (``None``: nothing came within the timeout)
    and records every read."""

    def __init__(self, *script: dict[str, object] | None) -> None:
        self.script = list(script)
        self.reads = 0

    async def get_msg(self, timeout: float | None = None) -> dict[str, object]:
        from queue import Empty

        self.reads += 1
        item = self.script.pop(0) if self.script else None
        if item is None:
            raise Empty
        return item


def _msg(msg_type: str, parent: str, state: str | None = None) -> dict[str, object]:
    content = {"execution_state": state} if state else {"protocol_version": "5.4"}
    return {"msg_type": msg_type, "parent_header": {"msg_id": parent}, "content": content}


class _Client:
    def __init__(self, shell: _Channel, iopub: _Channel, alive: bool = True) -> None:
        self.shell_channel, self.iopub_channel, self.alive = shell, iopub, alive
        self.sent: list[str] = []
        self.handled: list[dict[str, object]] = []

    def kernel_info(self) -> str:
        self.sent.append(f"k{len(self.sent) + 1}")
        return self.sent[-1]

    async def is_alive(self) -> bool:
        return self.alive

    def _handle_kernel_info_reply(self, msg: dict[str, object]) -> None:
        self.handled.append(msg)


def test_ready_at_the_idle_of_the_kernel_info_request_not_after_a_silence() -> None:
    """jupyter_client reads IOPub on until 0.2 s pass without a message; the runner stops at
    the idle status that answers its request, and leaves what follows it unread."""
    import asyncio

    after = _msg("stream", "cell")
    client = _Client(_Channel(_msg("kernel_info_reply", "k1")),
                     _Channel({"msg_type": "iopub_welcome", "parent_header": {}, "content": {}},
                              _msg("status", "", "starting"), _msg("status", "k1", "busy"),
                              _msg("status", "k1", "idle"), after))
    asyncio.run(runner.wait_until_ready(client, timeout=10))
    assert client.sent == ["k1"] and client.handled == [_msg("kernel_info_reply", "k1")]
    assert client.iopub_channel.reads == 4 and client.iopub_channel.script == [after]


def test_ready_asks_again_until_iopub_carries_an_answer() -> None:
    """A reply whose idle status does not come within 0.2 s (IOPub not connected yet, or a
    loaded kernel) is not enough: the runner asks again; the late idle of its first request
    then counts, and a reply to a request it never sent does not."""
    import asyncio

    client = _Client(_Channel(_msg("kernel_info_reply", "k0"), _msg("kernel_info_reply", "k1"),
                              _msg("kernel_info_reply", "k2")),
                     _Channel(_msg("status", "k0", "idle"), None, _msg("status", "k1", "idle"),
                              _msg("status", "k2", "busy"), _msg("status", "k2", "idle")))
    asyncio.run(runner.wait_until_ready(client, timeout=10))
    assert client.sent == ["k1", "k2"]
    assert client.handled == [_msg("kernel_info_reply", "k2")]
    assert client.shell_channel.script == []
    assert client.iopub_channel.script == [_msg("status", "k2", "busy"),
                                           _msg("status", "k2", "idle")]


def test_ready_raises_when_the_kernel_dies_or_does_not_answer() -> None:
    import asyncio

    with pytest.raises(RuntimeError, match="Kernel died before replying to kernel_info"):
        asyncio.run(runner.wait_until_ready(_Client(_Channel(), _Channel(), alive=False), 10))
    with pytest.raises(RuntimeError, match="Kernel didn't respond in 0 seconds"):
        asyncio.run(runner.wait_until_ready(_Client(_Channel(), _Channel()), timeout=0))


def test_the_runner_clients_take_the_prompt_ready_wait(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """nbclient gets its kernel client from the manager's ``client()``: that client's
    ``wait_for_ready`` is :func:`runner.wait_until_ready`, and a real kernel is ready with it."""
    import asyncio

    waited: list[object] = []
    real = runner.wait_until_ready

    async def spy(client: Any, timeout: float | None = None) -> None:
        waited.append(client)
        await real(client, timeout)

    monkeypatch.setattr(runner, "wait_until_ready", spy)
    manager = runner._prompt_kernel_manager(None)(kernel_name="python3")
    manager.connection_file = str(tmp_path / "kernel.json")

    async def start() -> list[str]:
        await manager.start_kernel(cwd=str(tmp_path))
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            assert waited == [client]
            reply = await client.execute_interactive("print('up')", timeout=60,
                                                     output_hook=lambda msg: seen.append(msg))
            assert reply["content"]["status"] == "ok"
            return [m["content"]["text"] for m in seen if m["msg_type"] == "stream"]
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    seen: list[dict[str, Any]] = []
    assert asyncio.run(start()) == ["up\n"]
