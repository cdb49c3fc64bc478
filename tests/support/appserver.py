"""The event server's app under uvicorn in a process of its own, without grading workers: what the
upload tests and ``benchmarks/uploads.py`` measure (the receiving, checking, storing and committing
of uploads), with nothing else in the process. No pytest import.

``python -m tests.support.appserver --state DIR --port N [--max-upload-bytes N] [--max-uploads N]``: the
store's only event, the project from ``GRADER_PROJECT_DIR`` (:func:`grader.core.settings.resolve_settings`);
:func:`start` runs it and waits until it listens.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port, listening

ROOT = Path(__file__).resolve().parents[2]
START_S = 40.0


@dataclass
class AppServer:
    """A running app server: its process, port and log."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (``VmRSS``, ``VmHWM``: the peak resident set)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


def start(state: Path, project: Path, log: Path, *, max_upload_bytes: int | None = None,
          max_uploads: int | None = None) -> AppServer:
    """Start the app server on a free port of 127.0.0.1 and wait until it listens (``START_S``).

    Raises:
        RuntimeError: it exited or did not listen in time (with its log's tail).
    """
    port = free_port()
    argv = [sys.executable, "-m", "tests.support.appserver", "--state", str(state), "--port", str(port)]
    argv += ["--max-upload-bytes", str(max_upload_bytes)] if max_upload_bytes else []
    argv += ["--max-uploads", str(max_uploads)] if max_uploads else []
    env = {**os.environ, "GRADER_PROJECT_DIR": str(project), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = AppServer(proc, port, log)
    deadline = time.monotonic() + START_S
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the app server did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return server


def main() -> None:
    import uvicorn

    from grader.core.settings import resolve_settings
    from grader.server.store.store import Store
    from grader.server.web.app import create_app
    from grader.server.web.options import AppOptions

    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-upload-bytes", type=int, default=AppOptions.max_upload_bytes)
    parser.add_argument("--max-uploads", type=int, default=AppOptions.max_uploads)
    args = parser.parse_args()
    store = Store(Path(args.state))
    options = AppOptions(max_upload_bytes=args.max_upload_bytes, max_uploads=args.max_uploads, join_delay_s=0.1)
    app = create_app(store, resolve_settings(), workers=None, options=options)
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    finally:
        store.close()


if __name__ == "__main__":
    main()
