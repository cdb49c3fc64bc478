"""The event server's database: its engine (SQLite tuned for many threads, or any SQLAlchemy
URL), its migrations run at open, and read and write transactions.

On SQLite (the embedded default: ``<state>/grader.db``): WAL mode, foreign keys on, a busy
timeout, ``synchronous=FULL``; write transactions begin ``IMMEDIATE`` so that concurrent writers
wait for each other instead of failing. On PostgreSQL (``postgresql+psycopg://...``, psycopg 3):
the server's READ COMMITTED default; the store locks what it reads to write
(``SELECT ... FOR UPDATE``) and inserts what may exist with ``ON CONFLICT DO NOTHING``. The
schema is created and upgraded by the Alembic migrations in ``grader/server/migrations`` each
time a database opens (on PostgreSQL under an advisory lock, one server at a time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, select, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session

from grader.errors import ConfigError
from grader.server import models as m
from grader.server.rows import SubmissionRow, submission_row
from grader.server.state import ensure_state_dir

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATION_LOCK", "Database", "shown_url"]

BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK = 0x67726164  # PostgreSQL advisory lock key held while migrating ("grad")
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _engine(url: str) -> Engine:
    """An engine for ``url``; on SQLite with WAL, foreign keys, a busy timeout and explicit
    ``BEGIN`` (``BEGIN IMMEDIATE`` for writes), after SQLAlchemy's documented pysqlite recipe
    ("Serializable isolation / Savepoints / Transactional DDL")."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000})

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


def shown_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


class Database:
    """An open database at its newest schema, with the state folder beside it (the base of
    :class:`grader.server.store.Store`).

    Args:
        state_dir: the state folder (see :mod:`grader.server.state`); created if missing.
        database_url: a SQLAlchemy URL; None is ``sqlite:///<state_dir>/grader.db``.

    Raises:
        ConfigError: the state folder cannot be created or written; the database cannot be
            opened (a malformed URL, a missing driver, a server that refuses or is not there;
            the message shows the URL without its password).
    """

    def __init__(self, state_dir: Path, database_url: str | None = None) -> None:
        from alembic import command
        from alembic.config import Config

        self.state_dir = ensure_state_dir(Path(state_dir))
        self.database_url = database_url or f"sqlite:///{self.state_dir / 'grader.db'}"
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            self._engine = _engine(self.database_url)
            self._writer = self._engine.execution_options(grader_write=True)
            with self._writer.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # servers starting at once on one database migrate it one after the other (the
                    # lock is held until this transaction ends; PostgreSQL manual, 9.27.10 "Advisory
                    # Lock Functions"); on SQLite BEGIN IMMEDIATE does the same
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except (ArgumentError, NoSuchModuleError, ImportError, OperationalError) as err:
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            raise ConfigError(f"the database {shown_url(self.database_url)} cannot be opened: {reason}",
                              fix="check --database-url (postgresql+psycopg://USER@HOST:PORT/DB; is the server "
                                  "running?), or leave it out for SQLite in the state folder") from err

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction, committed on leaving (durable: WAL with ``synchronous=FULL``)."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def _rows(self, s: Session, where: Sequence[Any], *, newest_first: bool = True) -> list[SubmissionRow]:
        order = m.Submission.id.desc() if newest_first else m.Submission.id
        query = (select(m.Submission, m.Team.name, m.Event.name).join(m.Team, m.Submission.team_id == m.Team.id)
                 .join(m.Event, m.Submission.event_id == m.Event.id).where(*where).order_by(order))
        return [submission_row(sub, team, ev) for sub, team, ev in s.execute(query)]

    def submission(self, submission_id: int) -> SubmissionRow | None:
        """Submission ``submission_id``, or None."""
        with self._read() as s:
            rows = self._rows(s, [m.Submission.id == submission_id])
        return rows[0] if rows else None
