"""The event server's database: its engine (SQLite tuned for many threads, or any SQLAlchemy
URL), its migrations run at open, and read and write transactions.

On SQLite (the embedded default: ``<state>/grader.db``): WAL mode, foreign keys on, a busy
timeout, ``synchronous=FULL``; write transactions begin ``IMMEDIATE`` so that concurrent writers
wait for each other instead of failing. On PostgreSQL (``postgresql+psycopg://...``, psycopg 3):
the server's READ COMMITTED default; the store locks what it reads to write
(``SELECT ... FOR UPDATE``) and inserts what may exist with ``ON CONFLICT DO NOTHING``. The
schema is created and upgraded by the Alembic migrations in ``grader/server/store/migrations`` each
time a database opens (on PostgreSQL under an advisory lock, one server at a time).

Connections: one pool per process (SQLAlchemy's ``QueuePool``, on SQLite files as on
PostgreSQL), sized by :func:`pool_sizes` from what the process runs, so that a request never
waits for a connection while a thread to serve it is free. A database that cannot be reached or
written (a PostgreSQL restart, a lost connection, SQLite locked past its busy timeout, a full
disk, every connection of the pool in use) raises :class:`DatabaseUnavailable`: the pages answer
503 (507 for a full disk) with that message, the workers try again.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, select, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from grader.core import ConfigError, HarnessError
from grader.server.store import models as m
from grader.server.store.rows import SubmissionRow, submission_row
from grader.server.store.state import ensure_state_dir

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "MIGRATION_LOCK", "POOL_TIMEOUT_S", "WEB_THREADS", "Database",
           "DatabaseUnavailable", "pool_sizes", "shown_url", "unavailable"]

BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK = 0x67726164  # PostgreSQL advisory lock key held while migrating ("grad")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# the threads uvicorn serves requests from: Starlette runs sync routes and run_in_threadpool
# through AnyIO's default thread limiter, 40 tokens (anyio.to_thread.current_default_thread_limiter)
WEB_THREADS = 40
WEB_KEPT = 10  # connections kept open for the pages; the rest of WEB_THREADS are opened on demand
POOL_TIMEOUT_S = 10.0  # the longest a thread waits for a free connection before DatabaseUnavailable
_DISK_FULL = ("database or disk is full", "no space left on device", "disk full")


class DatabaseUnavailable(HarnessError):
    """The database cannot be reached or written now: PostgreSQL restarting or away, a lost
    connection, SQLite locked past its busy timeout, a full disk, or every pooled connection in
    use. Nothing was changed by the transaction that raised it; trying again later is safe.

    Attributes:
        disk_full: the disk under the database is full (not a moment's outage).
    """

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message, fix="try again in a moment" if not disk_full else
                         "free space on the server's disk (the state folder), then try again")
        self.disk_full = disk_full


def pool_sizes(workers: int) -> tuple[int, int]:
    """``(pool_size, max_overflow)`` of the connection pool of a process with ``workers``
    grading threads.

    Each worker thread holds at most one connection, and so does its heartbeat: ``2 * workers``;
    the web side at most one per thread of AnyIO's limiter (:data:`WEB_THREADS`, 40), of which
    :data:`WEB_KEPT` stay open and the rest are opened when needed and closed when returned; 2 more
    for the server's own sweeps. So a thread never waits for a connection; only a leak exhausts the
    pool (after :data:`POOL_TIMEOUT_S`). SQLAlchemy's ``QueuePool`` defaults, 5 + 10, are below
    that: its documentation ("Connection Pooling", ``QueuePool``) leaves sizing to the application.
    On PostgreSQL, ``max_connections`` (default 100) must exceed the sum over every server and
    worker process on the database: two servers of one worker each hold at most 2 x 44.

    Raises:
        ValueError: ``workers`` below 0.
    """
    if workers < 0:
        raise ValueError(f"workers={workers}: need 0 or more")
    return 2 * workers + WEB_KEPT + 2, WEB_THREADS - WEB_KEPT


def _reason(err: Exception) -> str:
    """The first line of the driver's message behind ``err`` (SQLAlchemy wraps it as ``.orig``)."""
    return (str(getattr(err, "orig", None) or err).strip().splitlines() or [type(err).__name__])[0]


def unavailable(err: Exception, url: str) -> DatabaseUnavailable:
    """The :class:`DatabaseUnavailable` that driver or pool error ``err`` stands for (its first line
    quoted; a full disk said so)."""
    reason = _reason(err)
    if isinstance(err, PoolTimeout):
        return DatabaseUnavailable(f"every connection to the database {shown_url(url)} is in use: {reason}")
    if any(words in reason.lower() for words in _DISK_FULL):
        return DatabaseUnavailable(f"the server's disk is full: the database {shown_url(url)} cannot be written "
                                   f"({reason})", disk_full=True)
    return DatabaseUnavailable(f"the database {shown_url(url)} is unavailable ({reason})")


def _engine(url: str, *, workers: int) -> Engine:
    """An engine for ``url`` with a pool of :func:`pool_sizes` ``(workers)``; on SQLite with WAL,
    foreign keys, a busy timeout and explicit ``BEGIN`` (``BEGIN IMMEDIATE`` for writes), after
    SQLAlchemy's documented pysqlite recipe ("Serializable isolation / Savepoints / Transactional
    DDL"); on PostgreSQL each connection is tested when taken from the pool (``pool_pre_ping``:
    after a server restart the pool's dead connections are replaced, not handed out)."""
    size, overflow = pool_sizes(workers)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=size, max_overflow=overflow,
                             pool_timeout=POOL_TIMEOUT_S)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
                           pool_size=size, max_overflow=overflow, pool_timeout=POOL_TIMEOUT_S)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver starts no transactions of its own
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")  # acknowledged means durable, power loss included
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("grader_write") else "BEGIN")

    return engine


@contextmanager
def _one_opener(url: str) -> Iterator[None]:
    """On an SQLite file, hold an exclusive ``flock`` on ``<database>.open-lock`` (created beside
    it): processes and threads opening one new database at once turn it to WAL and migrate it one
    after the other. Without it, one of several openers could get "database is locked" at once:
    changing the journal mode takes an exclusive lock for which SQLite's busy handler is not
    always called (measured: 3 of 40 rounds of 8 threads opening a new database failed). Elsewhere
    (PostgreSQL's advisory lock does the same, an in-memory SQLite has one opener) it does nothing."""
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.open-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def shown_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


class Database:
    """An open database at its newest schema, with the state folder beside it (the base of
    :class:`grader.server.store.store.Store`).

    Args:
        state_dir: the state folder (see :mod:`grader.server.store.state`); created if missing.
        database_url: a SQLAlchemy URL; None is ``sqlite:///<state_dir>/grader.db``.
        workers: the grading threads of this process (:func:`pool_sizes` sizes the pool for them).

    Raises:
        ConfigError: the state folder cannot be created or written; the database cannot be
            opened (a malformed URL, a missing driver, a server that refuses or is not there;
            the message shows the URL without its password).
    """

    def __init__(self, state_dir: Path, database_url: str | None = None, *, workers: int = 1) -> None:
        from alembic import command
        from alembic.config import Config

        self.state_dir = ensure_state_dir(Path(state_dir))
        self.database_url = database_url or f"sqlite:///{self.state_dir / 'grader.db'}"
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            self._engine = _engine(self.database_url, workers=workers)
            self._writer = self._engine.execution_options(grader_write=True)
            with _one_opener(self.database_url), self._writer.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # servers starting at once on one database migrate it one after the other (the
                    # lock is held until this transaction ends; PostgreSQL manual, 9.27.10 "Advisory
                    # Lock Functions"); on SQLite _one_opener does the same
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except (ArgumentError, NoSuchModuleError, ImportError, OperationalError, OSError) as err:
            raise ConfigError(f"the database {shown_url(self.database_url)} cannot be opened: {_reason(err)}",
                              fix="check --database-url (postgresql+psycopg://USER@HOST:PORT/DB; is the server "
                                  "running?), or leave it out for SQLite in the state folder") from err

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read session.

        Raises:
            DatabaseUnavailable: the database cannot be reached (see :func:`unavailable`).
        """
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                yield session
        except (OperationalError, PoolTimeout) as err:
            raise unavailable(err, self.database_url) from err

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A read on a plain connection (SQLAlchemy Core, no ORM session): for the one short query
        made on every request (the session's lookup), a quarter of :meth:`_read`'s CPU (0.08
        against 0.33 ms here, 2,000 lookups of 50 sessions).

        Raises:
            DatabaseUnavailable: the database cannot be reached (see :func:`unavailable`).
        """
        try:
            with self._engine.connect() as conn:
                yield conn
        except (OperationalError, PoolTimeout) as err:
            raise unavailable(err, self.database_url) from err

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction, committed on leaving (durable: WAL with ``synchronous=FULL``).

        Raises:
            DatabaseUnavailable: the database cannot be reached or written (see
                :func:`unavailable`); the transaction is rolled back (or was never begun).
        """
        try:
            with Session(self._writer, expire_on_commit=False) as session, session.begin():
                yield session
        except (OperationalError, PoolTimeout) as err:
            raise unavailable(err, self.database_url) from err

    def _rows(self, s: Session, where: Sequence[Any], *, newest_first: bool = True,
              limit: int | None = None) -> list[SubmissionRow]:
        order = m.Submission.id.desc() if newest_first else m.Submission.id
        query = (select(m.Submission, m.Team.name, m.Event.name).join(m.Team, m.Submission.team_id == m.Team.id)
                 .join(m.Event, m.Submission.event_id == m.Event.id).where(*where).order_by(order).limit(limit))
        return [submission_row(sub, team, ev) for sub, team, ev in s.execute(query)]

    def submission(self, submission_id: int) -> SubmissionRow | None:
        """Submission ``submission_id``, or None."""
        with self._read() as s:
            rows = self._rows(s, [m.Submission.id == submission_id])
        return rows[0] if rows else None
