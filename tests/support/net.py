"""Ports on 127.0.0.1 for the servers the tests and benchmarks start (no pytest import: the
benchmarks use it too)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["free_port", "listening", "stop_group", "wait_listening"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` (within 0.5 s)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, *, timeout_s: float = 60) -> None:
    """Wait until ``proc`` (a server) listens on ``port``.

    Raises:
        AssertionError: it exited, or did not listen within ``timeout_s`` (with its ``log``'s tail).
    """
    deadline = time.monotonic() + timeout_s
    while not listening(port):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


def stop_group(proc: subprocess.Popen[bytes], *, timeout_s: float = 20) -> None:
    """SIGTERM ``proc``'s process group (started with ``start_new_session``), SIGKILL it after
    ``timeout_s``; reaped either way."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
