"""A throwaway PostgreSQL server in a temporary folder, for the tests (tests/support/pg.py) and
``benchmarks/server.py``.

No pytest import: the benchmark uses it too. :func:`start_postgres` runs Debian's ``initdb`` and
``pg_ctl`` (the newest ``/usr/lib/postgresql/<N>/bin``, else the PATH's) into a fresh temporary
folder owned by the ``postgres`` user (``initdb`` refuses to run as root; uid 65534, ``nobody``,
where there is no such user; commands run as it through ``setpriv``), listening on 127.0.0.1 at
a free port and on a Unix socket in that folder, trust authentication for its one role
``grader``. :meth:`PostgresServer.remove` stops it (``pg_ctl stop -m fast``) and removes the folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port

__all__ = ["START_TIMEOUT_S", "PostgresServer", "PostgresUnavailable", "create_database", "start_postgres"]

START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No server could be started here; the message says why (what is missing, what failed and its output)."""


@dataclass(frozen=True)
class PostgresServer:
    """A server started by :func:`start_postgres`: ``url(db)`` is the SQLAlchemy URL of database ``db`` on it.

    Attributes:
        port: its TCP port on 127.0.0.1.
        folder: its temporary folder (``data/`` the cluster, ``server.log``, the Unix socket).
        options: the ``pg_ctl -o`` options it was started with (:meth:`start` uses them again).
    """

    port: int
    folder: Path
    options: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://grader@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``: open connections are ended), waiting for it.

        Raises:
            RuntimeError: ``pg_ctl`` failed (its output in the message).
        """
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start the stopped server again with the options it was first started with, waiting until
        it accepts connections.

        Raises:
            RuntimeError: ``pg_ctl`` failed, or no connection was accepted in ``START_TIMEOUT_S``.
        """
        self._pg_ctl("-w", "-t", str(START_TIMEOUT_S), "-l", str(self.folder / "server.log"),
                     "-o", self.options, "start")
        if not _wait_ready(self.port):
            raise RuntimeError(f"the server did not accept connections on 127.0.0.1:{self.port} in "
                               f"{START_TIMEOUT_S} s")

    def remove(self) -> None:
        """Stop the server where it runs (``pg_ctl stop -m fast``) and remove its folder; never raises."""
        _remove(self.folder)

    def _pg_ctl(self, *args: str) -> None:
        done = _run([*_user()[0], str(_require_bin_dir() / "pg_ctl"), "-D", str(self.folder / "data"), *args])
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")


def start_postgres(*, fsync: bool, max_connections: int, time_zone: str | None = None,
                   prefix: str = "grader-pg-") -> PostgresServer:
    """Start a server (see the module's docstring) and wait until it accepts connections (``pg_isready``).

    Args:
        fsync: the server's ``fsync``; off, ``initdb`` also skips its syncs (``--no-sync``): fast, not durable.
        max_connections: the server's ``max_connections``.
        time_zone: the server's ``timezone`` (an IANA name); None: PostgreSQL's default.
        prefix: the temporary folder's name prefix.

    Returns:
        The running server; the caller calls :meth:`PostgresServer.remove` when done.

    Raises:
        PostgresUnavailable: the psycopg driver, ``initdb``/``pg_ctl`` or ``setpriv`` is missing, or
            ``initdb``, ``pg_ctl start`` or the wait failed (the folder is removed then).
    """
    try:
        import psycopg  # noqa: F401
    except ImportError as err:
        raise PostgresUnavailable(f"the psycopg driver is not installed ({err})") from err
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise PostgresUnavailable("initdb and pg_ctl are not installed (apt-get install postgresql; setup.sh does "
                                  "it as root)")
    as_user, uid, gid = _user()
    if as_user and shutil.which("setpriv") is None:
        raise PostgresUnavailable("setpriv (util-linux) is missing: initdb cannot run as root")
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chown(folder, uid, gid)
        port = free_port()
        made = _run([*as_user, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "grader", "--auth=trust",
                     "--encoding=UTF8", *([] if fsync else ["--no-sync"])])
        if made.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({made.returncode}): "
                                      f"{(made.stderr or made.stdout).strip()[-500:]}")
        options = (f"-k {folder} -c listen_addresses=127.0.0.1 -p {port} -c fsync={'on' if fsync else 'off'} "
                   f"-c max_connections={max_connections}" + (f" -c timezone={time_zone}" if time_zone else ""))
        started = _run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w", "-t",
                        str(START_TIMEOUT_S), "-l", str(folder / "server.log"), "-o", options, "start"])
        if started.returncode != 0:
            log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed ({started.returncode}): {started.stderr.strip()} "
                                      f"{log[-500:]}")
        if not _wait_ready(port):
            raise PostgresUnavailable(f"the server did not accept connections on 127.0.0.1:{port} in "
                                      f"{START_TIMEOUT_S} s")
        return PostgresServer(port=port, folder=folder, options=options)
    except BaseException:  # also Ctrl-C: no server or folder left behind
        _remove(folder)
        raise


def create_database(port: int, name: str) -> str:
    """Create the empty database ``name`` on the server at 127.0.0.1:``port``; returns its SQLAlchemy URL.

    Raises:
        psycopg.Error: the server refused (``name`` exists, is not an identifier, the server is down).
    """
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=grader dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://grader@127.0.0.1:{port}/{name}"


def _remove(folder: Path) -> None:
    if (folder / "data" / "postmaster.pid").exists() and (bin_dir := _bin_dir()) is not None:
        _run([*_user()[0], str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"])
    shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(port: int) -> bool:
    """Whether the server on ``port`` accepts connections within ``START_TIMEOUT_S`` (``pg_isready``)."""
    pg_isready = str(_require_bin_dir() / "pg_isready")
    deadline = time.monotonic() + START_TIMEOUT_S
    while _run([pg_isready, "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _bin_dir() -> Path | None:
    """The folder of ``pg_ctl`` and ``initdb``: Debian's newest ``/usr/lib/postgresql/<N>/bin``,
    else wherever ``pg_ctl`` is on the PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def _require_bin_dir() -> Path:
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("pg_ctl is not installed any more")
    return bin_dir


def _user() -> tuple[list[str], int, int]:
    """How to run a command as the server's user (``setpriv`` where we are root), and its uid, gid."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam("postgres")
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid = gid = 65534
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"], uid, gid


def _run(argv: list[str], *, timeout_s: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
