"""A throwaway PostgreSQL server for the event server's tests (issue 17).

:func:`postgres_server` (session scope) starts one with Debian's ``initdb`` and ``pg_ctl`` into a
temporary folder owned by the ``postgres`` user (``initdb`` refuses to run as root; uid 65534,
``nobody``, where there is no such user), listening on 127.0.0.1 at a free port and on a Unix
socket in that folder, ``fsync=off``, in time zone UTC+14, trust authentication for its one role ``grader``; it stops
it (``pg_ctl stop -m fast``) and removes the folder at the end. A test may stop and start it
again (:meth:`PostgresServer.stop`, :meth:`PostgresServer.start`: a database restart; a test
that does so must start it again, in a ``finally``). :func:`postgres_url` gives each test its
own fresh database. Where PostgreSQL cannot be found or started the tests that need it
skip with the reason, unless ``GRADER_REQUIRE_POSTGRES=1`` (CI), where they fail.

:func:`database_url` runs a test twice: on SQLite (``None``: the store's embedded default) and
on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.net import free_port

__all__ = ["PostgresServer", "database_url", "postgres_server", "postgres_url"]

START_TIMEOUT_S = 60
SERVER_TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: a day ahead of UTC for ten hours of each day
_numbers = itertools.count(1)


@dataclass(frozen=True)
class PostgresServer:
    """A running server: ``url(db)`` is the SQLAlchemy URL of database ``db`` on it."""

    port: int
    folder: Path

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
                     "-o", _options(self.folder, self.port), "start")
        _wait_ready(self.port)

    def _pg_ctl(self, *args: str) -> None:
        bin_dir = _bin_dir()
        assert bin_dir is not None
        done = _run([*_user()[0], str(bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), *args])
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")


def _options(folder: Path, port: int) -> str:
    # a time zone far from UTC: times must come back as UTC whatever the server's zone
    return (f"-k {folder} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c max_connections=200 "
            f"-c timezone={SERVER_TIME_ZONE}")


def _wait_ready(port: int) -> bool:
    """Whether the server on ``port`` accepts connections within ``START_TIMEOUT_S`` (``pg_isready``)."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while _run([str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _unavailable(reason: str) -> None:
    if os.environ.get("GRADER_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"GRADER_REQUIRE_POSTGRES=1 but PostgreSQL cannot be used: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL cannot be used: {reason} (set GRADER_REQUIRE_POSTGRES=1 to fail instead)")


def _bin_dir() -> Path | None:
    """The folder of ``pg_ctl`` and ``initdb``: Debian's newest ``/usr/lib/postgresql/<N>/bin``,
    else wherever ``pg_ctl`` is on the PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (see the module's docstring); skips (or fails under
    ``GRADER_REQUIRE_POSTGRES=1``) where none can be started."""
    try:
        import psycopg  # noqa: F401
    except ImportError as err:
        _unavailable(f"the psycopg driver is not installed ({err})")
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        _unavailable("initdb and pg_ctl are not installed (apt-get install postgresql; setup.sh does it as root)")
        return
    as_user, uid, gid = _user()
    if as_user and shutil.which("setpriv") is None:
        _unavailable("setpriv (util-linux) is missing: initdb cannot run as root")
    folder = Path(tempfile.mkdtemp(prefix="grader-pg-"))
    os.chown(folder, uid, gid)
    data = folder / "data"
    port = free_port()
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        made = _run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust",
                     "--encoding=UTF8", "--no-sync"])
        if made.returncode != 0:
            _unavailable(f"initdb failed ({made.returncode}): {(made.stderr or made.stdout).strip()[-500:]}")
        options = _options(folder, port)
        started = _run([*pg_ctl, "-w", "-t", str(START_TIMEOUT_S), "-l", str(folder / "server.log"),
                        "-o", options, "start"])
        if started.returncode != 0:
            log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
            _unavailable(f"pg_ctl start failed ({started.returncode}): {started.stderr.strip()} {log[-500:]}")
        if not _wait_ready(port):
            _unavailable(f"the server did not accept connections on 127.0.0.1:{port} in {START_TIMEOUT_S} s")
        yield PostgresServer(port=port, folder=folder)
    finally:
        if (data / "postmaster.pid").exists():
            _run([*pg_ctl, "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database ``test_N`` on the session's server; dropped after."""
    import psycopg

    name = f"test_{next(_numbers)}"
    dsn = f"host=127.0.0.1 port={postgres_server.port} user=grader dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each test twice: ``None`` (the store's SQLite file in its state folder) and the URL of a
    fresh PostgreSQL database (:func:`postgres_url`)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))
