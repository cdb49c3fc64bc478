"""The notebook runner: one process per notebook, on the student's side of the trust boundary.

Started by :mod:`grader.execute.run` as ``python -m grader.student.runner JOB.json``. It starts a kernel,
runs the setup cell (``kernel/capture.py`` and ``kernel/shutdown.py``), every cell of the
notebook, then the probe's visible step, and writes the executed notebook and ``facts.json``
(the cell timeline), rewritten after every cell so that a run killed at its deadline still
tells which cell was running. Then it asks the grader for the gate of the hidden images
(``--gate W,R``: one byte written on W, the answer read on R; :mod:`grader.sandbox.gate`) and, once it
is open, runs the probe's hidden step, whose answers alone the grader reads from then on. It
never sees hidden labels.

The kernel is started first, before the runner imports nbclient and jupyter_client (about
0.15 s), so that the kernel's own start overlaps them: see :func:`start_kernel_early`. It is
taken as ready as soon as it answers, without jupyter_client's 0.2 s wait for a silent IOPub
channel: see :func:`wait_until_ready`.

The runner makes itself a child subreaper, so processes the kernel orphans (double forks,
``start_new_session``) stay its descendants; at its end it kills every one of them. The parent
enforces the hard deadline by killing this whole process tree from outside. The runner holds
the read end of the grading process's *lifeline* (``--lifeline FD``, see
:func:`grader.execute.run.lifeline_fd`): when it reads end-of-file, the grading process is gone, and
the runner kills its own process tree and exits (see :func:`watch_lifeline`).

It stays one module, over the house's 400 lines: it is the whole of the student's side of the
grader's protocol (the job file in, the timeline and the gate's handshake out, the lifeline), read
top to bottom as the runner's process lives it; split, each handshake would have its halves in
two files.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple, cast

__all__ = ["become_subreaper", "cell_numbers", "kill_tree", "main", "run", "start_kernel_early", "watch_lifeline"]

PR_SET_CHILD_SUBREAPER = 36
LIFELINE_ARG = "--lifeline"
GATE_ARG = "--gate"
GATE_WAIT_S = 300  # how long the runner waits for the grader to open the gate
KERNEL_DIR = Path(__file__).resolve().parent / "kernel"
SETUP_CELLS = ("capture.py", "shutdown.py")  # run as one hidden cell before the notebook's
# how long a kernel may take to stop a cell after its interrupt (SIGINT, as Jupyter's Stop button)
INTERRUPT_GRACE_S = 15
LAST_LINE_CHARS = 160  # the longest last output line a timeout's message quotes
# what a terminal acts on and does not show: ANSI CSI sequences (ECMA-48: colours, cursor moves, as
# Keras 3's progress bar writes them) and backspaces
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x08")
PROGRESS_EVERY_S = 1.0  # how often a running cell's last printed line is written to the timeline
RESTORE_TAG = "grader-restore"  # the cells that load the saved model and define the contract
INJECTED_TAG = "injected-parameters"


def become_subreaper() -> None:
    """Make orphaned descendants re-parent to this process (Linux ``prctl``
    ``PR_SET_CHILD_SUBREAPER``; no-op elsewhere).

    The runner does not set ``PR_SET_PDEATHSIG``: Linux sends that signal when the *thread*
    that forked the process exits (``prctl(2)``), so a server's worker thread that ends, or a
    thread pool recycling its threads, would kill a healthy run. :func:`watch_lifeline` ties
    the runner to the grading *process* instead.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def watch_lifeline(fd: int) -> threading.Thread:
    """Watch the lifeline's read end ``fd`` in a daemon thread: the grading process keeps the
    write end open for its whole life and never writes, so a read returns only at end-of-file,
    when that process is gone (killed, crashed: the kernel closes its descriptors). Then kill
    every descendant of this runner (:func:`kill_tree`) and exit at once with status 137.

    The descriptor is made close-on-exec here, so the kernel and what it starts do not hold it.

    Returns:
        the started watcher thread.
    """
    os.set_inheritable(fd, False)

    def watch() -> None:
        while True:
            try:
                data = os.read(fd, 1)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                break
        try:
            kill_tree(os.getpid(), include_root=False)
        finally:
            os._exit(128 + signal.SIGKILL)

    thread = threading.Thread(target=watch, name="grader-lifeline", daemon=True)
    thread.start()
    return thread


def kill_tree(pid: int, *, include_root: bool) -> int:
    """SIGKILL every descendant of ``pid`` (and ``pid`` itself if ``include_root``).

    Every process is stopped (SIGSTOP) before any is killed, the root first, so that none can
    fork away or, for the runner, write its files after its kernel died.

    Returns:
        how many processes were signalled.
    """
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0
    if include_root:
        try:
            root.send_signal(signal.SIGSTOP)
        except psutil.Error:
            pass
    stopped: dict[int, psutil.Process] = {}
    for _ in range(20):  # a process may fork between listing and stopping: list again
        try:
            fresh = [p for p in root.children(recursive=True) if p.pid not in stopped]
        except psutil.NoSuchProcess:
            break
        if not fresh:
            break
        for proc in fresh:
            try:
                proc.send_signal(signal.SIGSTOP)
            except psutil.Error:
                pass
            stopped[proc.pid] = proc
    victims = list(stopped.values()) + ([root] if include_root else [])
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=5)
    return len(victims)


PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
# what nbclient adds to the kernel's command line (NotebookClient.ipython_hist_file)
HISTORY_ARG = "--HistoryManager.hist_file=:memory:"


class EarlyKernel(NamedTuple):
    """A kernel started by :func:`start_kernel_early`, for the kernel manager to adopt."""

    argv: list[str]
    env: dict[str, str]  # without JPY_PARENT_PID, which jupyter_client adds at the launch too
    cwd: str
    info: dict[str, Any]
    connection_file: str
    process: subprocess.Popen[bytes]
    started: float  # time.monotonic() at its launch


def start_kernel_early(job: dict[str, Any]) -> EarlyKernel | None:
    """Start the ``python3`` kernel (this interpreter's ipykernel) as jupyter_client would.

    The same command (see :func:`_kernel_command`), environment (``job["env"]`` plus
    ``JPY_PARENT_PID``, without ``PYTHONEXECUTABLE``), working folder and new session as
    jupyter_client 8's ``LocalProvisioner``; the connection file (TCP on 127.0.0.1, five free ports, an HMAC-SHA256
    key) is written at ``job["connection_file"]``, mode 0600. The kernel manager of :func:`run`
    adopts this process only if it would have started the same (a ``python3`` kernelspec on the
    Jupyter path with another command or its own ``env``, for one, makes it start its own).

    Started before nbclient and jupyter_client are imported (0.11-0.16 s here), so that the
    kernel's start (its interpreter and ipykernel's imports) overlaps them.

    Returns:
        the started kernel, or None when the job names no connection file or another kernel,
        or the kernel could not be started here (then nbclient starts it, and reports why not).
    """
    path = job.get("connection_file")
    if not path or job.get("kernel_name") != "python3":
        return None
    try:
        return _start_kernel(job, path)
    except OSError:
        return None


def _kernel_command(connection_file: str) -> list[str]:
    """The ``python3`` kernel's command as jupyter_client will most likely find it: the
    kernelspec installed in this environment (setup.sh's ``ipykernel install --sys-prefix``
    writes ``-Xfrozen_modules=off`` into it), else ipykernel's own; formatted as jupyter_client
    does (``python`` is this interpreter). A guess only: the kernel manager adopts the early
    kernel only when its own command is the same.

    Raises:
        OSError: the kernelspec names an ``env``, templates or a provisioner of its own, which
            jupyter_client would apply: the kernel is then left to it.
    """
    spec_file = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    except (OSError, ValueError) as err:
        raise OSError(f"{spec_file}: {err}") from err
    argv = spec.get("argv") if isinstance(spec, dict) else None
    if (not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv)
            or spec.get("env") or "kernel_provisioner" in (spec.get("metadata") or {})):
        raise OSError(f"{spec_file}: a kernelspec this runner does not start itself")
    major, minor = sys.version_info[:2]
    if argv[0] in {"python", f"python{major}", f"python{major}.{minor}"}:
        argv = [sys.executable, *argv[1:]]
    argv = [a.replace("{connection_file}", connection_file) for a in argv]
    if any("{" in a for a in argv):
        raise OSError(f"{spec_file}: templates other than {{connection_file}}")
    return argv


def _start_kernel(job: dict[str, Any], path: str) -> EarlyKernel:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in PORT_NAMES]
    try:
        for sock in sockets:  # all bound at once, so that the five ports differ
            sock.bind(("127.0.0.1", 0))
        ports = {name: sock.getsockname()[1] for name, sock in zip(PORT_NAMES, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()
    info: dict[str, Any] = {**ports, "ip": "127.0.0.1", "transport": "tcp",
                            "key": str(uuid.uuid4()), "signature_scheme": "hmac-sha256",
                            "kernel_name": "python3"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    argv = [*_kernel_command(os.path.realpath(path)), HISTORY_ARG]
    env = {k: v for k, v in job["env"].items() if k != "PYTHONEXECUTABLE"}
    started = time.monotonic()
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, cwd=job["workdir"],
                               env={**env, "JPY_PARENT_PID": str(os.getpid())},
                               start_new_session=True)
    assert process.stdin is not None
    process.stdin.close()
    return EarlyKernel(argv, env, job["workdir"], info, path, process, started)


IOPUB_CHECK_S = 0.2  # how long jupyter_client waits for IOPub after a kernel_info reply


async def wait_until_ready(client: Any, timeout: float | None = None) -> None:
    """Wait until the kernel has answered ``kernel_info`` on its shell channel and published
    the ``idle`` status of such a request on IOPub: the kernel is then ready and IOPub connected.

    jupyter_client's ``wait_for_ready`` checks the same (a reply, then any IOPub message within
    0.2 s, else it asks again), then reads IOPub until 0.2 s pass without a message, so every
    kernel start waits 0.2 s after the kernel is ready. Here the wait ends at that ``idle``
    status. What may follow it on IOPub (the messages of a request asked again) is left there:
    nbclient reads only the messages whose parent is the request it sent. Measured with
    jupyter_client's blocking client (3 starts): the reply and its ``idle`` arrived 0.20-0.25 s
    after the launch, and ``wait_for_ready`` returned at 0.40-0.45 s.

    Args:
        client: a started ``jupyter_client`` ``AsyncKernelClient`` (channels started).
        timeout: seconds before giving up; None waits as long as the kernel lives.

    Raises:
        RuntimeError: the kernel died or did not answer within ``timeout``, with
            jupyter_client's messages.
    """
    limit = float("inf") if timeout is None else timeout
    deadline = time.monotonic() + limit
    asked: set[str] = set()
    reply: dict[str, Any] | None = None
    while True:
        asked.add(client.kernel_info())
        # an answer to any request asked counts: a loaded kernel may answer late
        reply = await _next_of(client.shell_channel, asked, "kernel_info_reply", 1.0) or reply
        if reply is not None and await _next_of(client.iopub_channel, asked, "status",
                                                IOPUB_CHECK_S, state="idle") is not None:
            client._handle_kernel_info_reply(reply)
            return
        if not await client.is_alive():
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {limit:.0f} seconds")


async def _next_of(channel: Any, parents: set[str], msg_type: str, window_s: float,
                   state: str | None = None) -> dict[str, Any] | None:
    """The first message on ``channel`` of ``msg_type`` answering one of ``parents`` (message
    ids) and, given ``state``, with that ``execution_state``, within ``window_s`` seconds, else
    None; the messages before it are read and dropped."""
    from queue import Empty

    end = time.monotonic() + window_s
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await channel.get_msg(timeout=left)
        except Empty:
            return None
        if (msg.get("msg_type") == msg_type
                and msg.get("parent_header", {}).get("msg_id") in parents
                and (state is None or msg.get("content", {}).get("execution_state") == state)):
            return cast(dict[str, Any], msg)
    return None


def _prompt_kernel_manager(early: EarlyKernel | None) -> type:
    """jupyter_client's kernel manager, adopting ``early``, with clients that take the kernel
    as ready as soon as it is (:func:`wait_until_ready`) and with its graceful shutdown
    checking every 10 ms.

    Adopting: the manager takes ``early``'s connection file (no new ports, no new file) and,
    when the command, environment and folder it would launch with are ``early``'s, its process
    instead of launching one; otherwise (a kernelspec with another command or its own ``env``,
    another provisioner than jupyter_client's local one, Curve transport encryption asked for,
    the early kernel already dead) it kills ``early`` and launches as usual.

    The shutdown itself is jupyter_client's (interrupt, ``shutdown_request``, wait, then SIGTERM
    and SIGKILL), so a kernel still runs its exit handlers (open files flushed); only the wait
    for the process polls every 10 ms instead of 100 ms (the shutdown of an idle kernel measured
    0.11 s with 100 ms polling, 0.07 s with 10 ms). ``_async_pre_start_kernel``,
    ``_async_launch_kernel`` and ``_async_finish_shutdown`` are private: jupyter_client is pinned
    by constraints.txt; recheck them on an upgrade (tests/student/test_runner.py runs both paths).
    """
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.connect import KernelConnectionInfo
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner
    from traitlets import default

    class PromptKernelClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            await wait_until_ready(self, timeout)

    class PromptKernelManager(AsyncKernelManager):
        adopting: EarlyKernel | None = None

        @default("client_factory")
        def _prompt_client_factory(self) -> type:
            return PromptKernelClient

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            # with transport encryption, jupyter_client would make Curve keys it lacks
            if (early is not None and early.process.poll() is None
                    and kw.get("transport_encryption", self.transport_encryption) == "disabled"):
                self.adopting = early
                self.cache_ports = False
                self.connection_file = early.connection_file
                self.load_connection_info(cast(KernelConnectionInfo, early.info))
                self._connection_file_written = True
            elif early is not None:
                _discard(early)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            adopted, self.adopting = self.adopting, None
            provisioner = self.provisioner
            if (adopted is None or kernel_cmd != adopted.argv or kw.get("env") != adopted.env
                    or str(kw.get("cwd")) != adopted.cwd
                    or not isinstance(provisioner, LocalProvisioner)):
                if adopted is not None:
                    _discard(adopted)
                await super()._async_launch_kernel(kernel_cmd, **kw)
                return
            # what LocalProvisioner.launch_kernel records of the process it starts
            provisioner.process = adopted.process
            provisioner.pid = adopted.process.pid
            provisioner.pgid = os.getpgid(adopted.process.pid)
            provisioner.cwd = kw.get("cwd")
            self._reconcile_connection_info(provisioner.connection_info)

        async def _async_finish_shutdown(self, waittime: float | None = None,
                                         pollinterval: float = 0.01,
                                         restart: bool = False) -> None:
            await super()._async_finish_shutdown(waittime=waittime, pollinterval=pollinterval,
                                                 restart=restart)

    return PromptKernelManager


def _discard(early: EarlyKernel) -> None:
    """Kill a kernel that will not be adopted; its ports and connection file are reused."""
    early.process.kill()
    early.process.wait()


def _make_client(nb: Any, job: dict[str, Any], early: EarlyKernel | None = None) -> Any:
    from nbclient import NotebookClient

    cap = int(job["max_output_bytes"])

    class CappedClient(NotebookClient):
        """nbclient with a per-cell output budget (nbgrader's LimitOutput, applied live)."""

        used: dict[int, int] = {}
        on_stream: Any = None  # called with (cell index, text) for every stream message, cut or not

        def output(self, outs: list[Any], msg: dict[str, Any], display_id: Any, cell_index: int) -> Any:
            if self.on_stream is not None and msg.get("msg_type") == "stream":
                self.on_stream(cell_index, str(msg.get("content", {}).get("text", "")))
            used = self.used.get(cell_index, 0)
            if used > cap:
                return None  # this cell's output was cut already
            content = msg.get("content", {})
            size = len(json.dumps(content, default=str))
            if used + size <= cap:
                self.used[cell_index] = used + size
                return super().output(outs, msg, display_id, cell_index)
            self.used[cell_index] = cap + 1
            if msg.get("msg_type") == "stream" and cap > used:
                kept = {**content, "text": str(content.get("text", ""))[: cap - used]}
                super().output(outs, {**msg, "content": kept}, display_id, cell_index)
            from nbformat.v4 import new_output

            outs.append(new_output("stream", name="stderr",
                                   text=f"\n[grader] output of this cell cut at {cap} bytes\n"))
            return None

    return CappedClient(
        nb,
        kernel_manager_class=_prompt_kernel_manager(early),
        timeout=int(job["cell_timeout_s"]),
        kernel_name=job["kernel_name"],
        allow_errors=False,
        record_timing=True,
        interrupt_on_timeout=False,
        resources={"metadata": {"path": job["workdir"]}},
    )


class Timeline:
    """The cell timeline, written to ``facts.json`` after every change."""

    def __init__(self, path: Path, n_cells: int) -> None:
        self.path = path
        self.facts: dict[str, Any] = {
            "schema": 1,
            "status": "starting",
            "message": "",
            "failed_cell": None,
            "kernel_start_s": None,
            "cells": [
                {"index": i, "status": "not_run", "seconds": None, "error": None,
                 "execution_count": None}
                for i in range(n_cells)
            ],
            "probe": {"status": "not_run", "seconds": None, "message": ""},
        }
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.facts), encoding="utf-8")
        os.replace(tmp, self.path)


def _error_of(err: BaseException) -> dict[str, str]:
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    return {"ename": str(ename)[:200], "evalue": str(evalue)[:2000]}


def cell_numbers(nb: Any) -> list[int | None]:
    """The student's number of each cell, for messages: its 1-based position in the notebook
    as the student sees it, the cell tagged ``injected-parameters`` not counted (None), as
    :func:`grader.evidence.records.cell_number` (not imported: the runner starts light)."""
    numbers: list[int | None] = []
    seen = 0
    for cell in nb.cells:
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            numbers.append(None)
        else:
            seen += 1
            numbers.append(seen)
    return numbers


def _cell_name(numbers: list[int | None], index: int) -> str:
    number = numbers[index]
    return "the cell injected by the grader" if number is None else f"cell {number}"


def last_line(outputs: list[Any]) -> str:
    """The last line a cell printed (its stdout and stderr streams, in order), as a terminal
    shows it: a progress bar's last state after its carriage returns, its colour codes and
    backspaces removed, the grader's own notes left out; "" when it printed nothing. Cut to ``LAST_LINE_CHARS``."""
    text = "".join(str(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    text = _TERMINAL_CONTROL.sub("", text)
    for line in reversed(text.splitlines()):  # str.splitlines splits at "\r" too
        shown = line.strip()
        if shown and not shown.startswith("[grader]"):
            return shown if len(shown) <= LAST_LINE_CHARS else shown[: LAST_LINE_CHARS - 1] + "…"
    return ""


def _stop_cell(client: Any) -> bool:
    """Interrupt the kernel's running cell (SIGINT, as Jupyter's Stop button) and wait up to
    ``INTERRUPT_GRACE_S`` for it to be idle again: True when it is, False when the cell ignored
    the interrupt (nothing more runs in that kernel: the run may be restored, :func:`_restore`)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    from nbclient.util import run_sync

    try:
        run_sync(client.km.interrupt_kernel)()
        _run_hidden(client, "pass", INTERRUPT_GRACE_S)  # answered once the interrupted cell ended
    except (CellTimeoutError, CellExecutionError):
        return False
    return True


def _run_hidden(client: Any, source: str, timeout_s: int) -> None:
    """Execute a cell that is not part of the notebook (capture, probe) in the same kernel."""
    import nbformat

    # as nbformat.v4.new_code_cell makes it, without validating it (see run)
    cell = nbformat.from_dict({"cell_type": "code", "id": "grader-hidden", "metadata": {},
                               "execution_count": None, "outputs": [], "source": source})
    client.nb.cells.append(cell)
    old_timeout, client.timeout = client.timeout, timeout_s
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    finally:
        client.timeout = old_timeout
        client.nb.cells.pop()


def run(job: dict[str, Any], early: EarlyKernel | None = None) -> None:
    """Execute the job described in ``job`` (see :mod:`grader.execute.run` for its fields), in
    ``early`` when it is given (see :func:`start_kernel_early`)."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    # written by the grader from a notebook it validated: not validated again here (the
    # validator's first use costs about 0.025 s); the grader validates what comes back
    nb = nbformat.v4.nbjson.reads(Path(job["notebook"]).read_text(encoding="utf-8"))
    timeline = Timeline(Path(job["facts"]), len(nb.cells))
    facts = timeline.facts
    numbers = cell_numbers(nb)
    client = _make_client(nb, job, early)
    # from the early kernel's launch, when there is one (adopted or not: the time it took)
    started = early.started if early is not None else time.monotonic()
    try:
        restore = False
        try:
            with client.setup_kernel(env=job["env"], cwd=job["workdir"]):
                facts["kernel_start_s"] = time.monotonic() - started
                _run_hidden(client, _setup_source(), 120)
                facts["status"] = "running"
                responsive = _run_cells(client, nb, job, timeline, numbers, started)
                if facts["status"] == "running":
                    facts["status"] = "ok"
                if responsive:
                    _probe(client, job, facts)
                    if "gate" in job:
                        _probe_hidden(client, job, nb, timeline)
                restore = not responsive
        except DeadKernelError as err:
            facts.update(status="kernel_died", message=f"the kernel died: {err}"[:2000])
            for record in facts["cells"]:
                if record["status"] == "running":
                    record.update(status="error", error={"ename": "DeadKernelError", "evalue": str(err)})
                    facts["failed_cell"] = record["index"]
                    restore = True  # died in a cell of the notebook, not in the probe
        if restore:
            _restore(job, nb, timeline, numbers)
    except Exception as err:  # kernel could not start, zmq failure: reported, not raised
        facts.update(status="kernel_failed", message=f"{type(err).__name__}: {err}"[:2000])
    finally:
        timeline.write()
        Path(job["executed"]).write_text(nbformat.v4.nbjson.writes(nb), encoding="utf-8")


def _setup_source() -> str:
    return "\n".join((KERNEL_DIR / name).read_text() for name in SETUP_CELLS)


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _restore(job: dict[str, Any], nb: Any, timeline: Timeline, numbers: list[int | None]) -> None:
    """After the kernel died in a cell, or a cell would not stop at its limit: run the cells the
    notebook tags ``grader-restore`` (its imports, its model's class, a cell that loads the model
    it saved under ``MODEL_DIR`` and defines ``predict``), after the injected parameters, in a
    fresh kernel, within ``probe_timeout_s`` together; then probe that kernel as usual. What it
    loads is unpickled in the sandbox, by the notebook's own code. The executed notebook the team
    reads stays the first kernel's. Nothing when no cell is tagged."""
    import copy

    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    chosen = [i for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and (RESTORE_TAG in _tags(c) or INJECTED_TAG in _tags(c))]
    if not any(RESTORE_TAG in _tags(nb.cells[i]) for i in chosen):
        return
    facts = timeline.facts
    restored: dict[str, Any] = {"status": "running", "message": "",
                                "cells": [n for n in (numbers[i] for i in chosen) if n is not None]}
    facts["restore"] = restored
    facts["probe"].update(status="not_run", seconds=None, message="")
    timeline.write()
    fresh = nbformat.v4.new_notebook(metadata=nb.metadata)
    fresh.cells = [copy.deepcopy(nb.cells[i]) for i in chosen]
    limit = int(job["probe_timeout_s"])
    client = _make_client(fresh, job)
    position = 0
    try:
        with client.setup_kernel(env=job["env"], cwd=job["workdir"]):
            _run_hidden(client, _setup_source(), 120)
            ends = time.monotonic() + limit
            for position, cell in enumerate(fresh.cells):
                client.timeout = max(1, int(ends - time.monotonic()))
                client.execute_cell(cell, position)
            restored["status"] = "ok"
            timeline.write()
            _probe(client, job, facts)
            if "gate" in job:
                _probe_hidden(client, job, nb, timeline)
    except CellTimeoutError:
        restored.update(status="timeout", message=f"the cells tagged {RESTORE_TAG} ran past {limit} s")
    except CellExecutionError as err:
        restored.update(status="error", message=f"{_cell_name(numbers, chosen[position])} raised {err.ename}: "
                        f"{err.evalue}"[:2000])
    except DeadKernelError:
        restored.update(status="kernel_died",
                        message=f"the fresh kernel died in {_cell_name(numbers, chosen[position])}")
    except Exception as err:  # the fresh kernel failed (could not start): the run stands as it ended
        restored.update(status="error", message=f"the fresh kernel failed: {type(err).__name__}")
    finally:
        timeline.write()


def _run_cells(client: Any, nb: Any, job: dict[str, Any], timeline: Timeline, numbers: list[int | None],
               started: float) -> bool:
    """Run the notebook's cells in order, the timeline updated around each; False when the
    kernel is left busy (a cell that ignored its interrupt), True when it can still be probed.

    A cell that errs ends the cells. A cell that runs past its limit (``cell_timeout_s``) is
    stopped as Jupyter's Stop button stops it and the cells after it still run; at the whole
    notebook's limit (``deadline_s`` from the kernel's launch) the running cell is stopped and
    no cell after it runs. Either way the kernel keeps what the cells built (the model as it
    stood), which the probe then calls: the scorecard says it was scored that way. The first
    problem is the run's status (``cell_timeout``, ``deadline``, ``cell_error``)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    facts = timeline.facts
    cell_limit = int(job["cell_timeout_s"])
    ends_at = started + float(job.get("deadline_s", 1e9))
    tail: dict[str, Any] = {"text": "", "at": 0.0}

    def on_stream(index: int, text: str) -> None:
        """Keep the running cell's last printed line in the timeline, at most once a second: the
        grader shows it beside the cell's number while it runs (an epoch line, a progress bar)."""
        tail["text"] = (tail["text"] + text)[-4096:]
        now = time.monotonic()
        if now - tail["at"] < PROGRESS_EVERY_S or not 0 <= index < len(facts["cells"]):
            return
        tail["at"] = now
        line = last_line([{"output_type": "stream", "text": tail["text"]}])
        if line:
            facts["cells"][index]["progress"] = line
            timeline.write()

    client.on_stream = on_stream
    for index, cell in enumerate(nb.cells):
        record = facts["cells"][index]
        if cell.cell_type != "code":
            record["status"] = "skipped"
            continue
        left = ends_at - time.monotonic()
        if left < 1:
            if facts["status"] == "running":
                facts.update(status="deadline", failed_cell=index,
                             message=f"the notebook reached its {job['deadline_s']} s limit before "
                             f"{_cell_name(numbers, index)}; the cells from there on did not run")
            return True
        client.timeout = min(cell_limit, max(1, int(left)))
        tail.update(text="", at=time.monotonic())  # the first line after a second of running
        record["status"] = "running"
        timeline.write()
        t0 = time.monotonic()
        try:
            client.execute_cell(cell, index)
            record["status"] = "ok"
        except CellTimeoutError as err:
            whole = client.timeout < cell_limit  # the notebook's limit came first
            record.update(status="timeout", error=_error_of(err))
            stopped = _stop_cell(client)
            line = last_line(cell.get("outputs", []))
            said = f" (its last line: {line!r})" if line else ""
            limit = (f"the notebook's {job['deadline_s']} s limit" if whole else f"its {cell_limit} s limit")
            if not stopped:
                after = "; it did not stop when interrupted, so nothing after it ran"
            elif whole:
                after = "; it was stopped there"
            else:
                after = "; it was stopped there and the cells after it ran"
            if facts["status"] == "running":
                facts.update(status="deadline" if whole else "cell_timeout", failed_cell=index,
                             message=f"{_cell_name(numbers, index)} ran past {limit}{said}{after}"[:2000])
            if not stopped:
                return False
            if whole:
                return True
        except CellExecutionError as err:
            record.update(status="error", error=_error_of(err))
            if facts["status"] == "running":
                facts.update(status="cell_error", failed_cell=index,
                             message=f"{_cell_name(numbers, index)} raised {err.ename}: {err.evalue}"[:2000])
            return True
        finally:
            record["seconds"] = time.monotonic() - t0
            record["execution_count"] = cell.get("execution_count")
            timeline.write()
    return True


def _probe(client: Any, job: dict[str, Any], facts: dict[str, Any]) -> None:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    source = (KERNEL_DIR / "probe.py").read_text()
    call = f"\n_grader_probe(__import__('json').loads({json.dumps(job['probe'])!r}))\n"
    t0 = time.monotonic()
    facts["probe"]["status"] = "running"
    try:
        _run_hidden(client, source + call, int(job["probe_timeout_s"]))
        facts["probe"]["status"] = "ok"
    except CellTimeoutError:
        facts["probe"].update(status="timeout", message=f"ran past {job['probe_timeout_s']} s")
    except CellExecutionError as err:
        facts["probe"].update(status="error", message=f"{err.ename}: {err.evalue}"[:2000])
    finally:
        facts["probe"]["seconds"] = time.monotonic() - t0


def _write_hidden_status(job: dict[str, Any], status: str) -> None:
    Path(job["probe"]["hidden_out"]).write_text(json.dumps({"schema": 1, "status": status}), encoding="utf-8")


def _probe_hidden(client: Any, job: dict[str, Any], nb: Any, timeline: Timeline) -> None:
    """Write what may reach a team (the executed notebook, the timeline), ask the grader for the
    gate of the hidden images, and once it is open run the probe's hidden step (its status, when
    the step itself cannot write its answers: ``timeout``, ``error``, ``kernel_died`` or
    ``gate_closed``, into ``hidden_out``)."""
    import select

    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    Path(job["executed"]).write_text(nbformat.v4.nbjson.writes(nb), encoding="utf-8")
    timeline.write()
    want, answer = job["gate"]
    try:
        os.write(want, b"g")
        ready, _, _ = select.select([answer], [], [], GATE_WAIT_S)
        opened = bool(ready) and os.read(answer, 1) == b"o"
    except OSError:
        opened = False
    if not opened:
        _write_hidden_status(job, "gate_closed")
        return
    source = (KERNEL_DIR / "probe.py").read_text()
    call = f"\n_grader_probe_hidden(__import__('json').loads({json.dumps(job['probe'])!r}))\n"
    try:
        _run_hidden(client, source + call, int(job["probe_timeout_s"]))
    except CellTimeoutError:
        _write_hidden_status(job, "timeout")
    except CellExecutionError:
        _write_hidden_status(job, "error")
    except DeadKernelError:
        _write_hidden_status(job, "kernel_died")
        raise


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m grader.student.runner JOB.json [--lifeline FD] [--gate W,R]``."""
    args = sys.argv[1:] if argv is None else argv
    become_subreaper()
    if LIFELINE_ARG in args[1:]:
        watch_lifeline(int(args[args.index(LIFELINE_ARG) + 1]))
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    if GATE_ARG in args[1:]:
        job["gate"] = [int(fd) for fd in args[args.index(GATE_ARG) + 1].split(",")]
    try:
        run(job, start_kernel_early(job))
    finally:
        kill_tree(os.getpid(), include_root=False)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # its files are written and renamed into place; the interpreter's teardown (zmq threads,
    # nbclient's modules: about 0.05 s) would only delay the grader
    os._exit(status)
