"""The event server's database: its engine (SQLite tuned for many threads, or any SQLAlchemy
URL), its migrations run at open, and read and write transactions.

On SQLite (the embedded default: ``<state>/grader.db``): WAL mode, foreign keys on, a busy
timeout, ``synchronous=FULL``; write transactions begin ``IMMEDIATE`` so that concurrent writers
wait for each other instead of failing. The schema is created and upgraded by the Alembic
migrations in ``grader/server/migrations`` each time a database opens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session

from grader.server import models as m
from grader.server.rows import SubmissionRow, submission_row
from grader.server.state import ensure_state_dir

__all__ = ["BUSY_TIMEOUT_MS", "Database"]

BUSY_TIMEOUT_MS = 30_000
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


class Database:
    """An open database at its newest schema, with the state folder beside it (the base of
    :class:`grader.server.store.Store`).

    Args:
        state_dir: the state folder (see :mod:`grader.server.state`); created if missing.
        database_url: a SQLAlchemy URL; None is ``sqlite:///<state_dir>/grader.db``.

    Raises:
        ConfigError: the state folder cannot be created or written.
        sqlalchemy.exc.OperationalError: the database cannot be opened.
    """

    def __init__(self, state_dir: Path, database_url: str | None = None) -> None:
        from alembic import command
        from alembic.config import Config

        self.state_dir = ensure_state_dir(Path(state_dir))
        self.database_url = database_url or f"sqlite:///{self.state_dir / 'grader.db'}"
        self._engine = _engine(self.database_url)
        self._writer = self._engine.execution_options(grader_write=True)
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._writer.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

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
