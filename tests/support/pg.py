"""A throwaway PostgreSQL server for the event server's tests (issue 17).

:func:`postgres_server` (session scope) starts one with :func:`tests.support.pgserver.start_postgres`
(Debian's ``initdb`` and ``pg_ctl`` into a temporary folder owned by the ``postgres`` user,
listening on 127.0.0.1 at a free port and on a Unix socket in that folder, trust authentication
for its one role ``grader``) with ``fsync=off``, in time zone UTC+14; it stops it
(``pg_ctl stop -m fast``) and removes the folder at the end. A test may stop and start it
again (:meth:`PostgresServer.stop`, :meth:`PostgresServer.start`: a database restart; a test
that does so must start it again, in a ``finally``). :func:`postgres_url` gives each test its
own fresh database. Where PostgreSQL cannot be found or started the tests that need it
skip with the reason, unless ``GRADER_REQUIRE_POSTGRES=1`` (CI), where they fail.

:func:`database_url` runs a test twice: on SQLite (``None``: the store's embedded default) and
on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator

import pytest

from tests.support.pgserver import PostgresServer, PostgresUnavailable, create_database, start_postgres

__all__ = ["SERVER_TIME_ZONE", "PostgresServer", "database_url", "postgres_server", "postgres_url"]

SERVER_TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: a day ahead of UTC for ten hours of each day
_numbers = itertools.count(1)


def _unavailable(reason: str) -> None:
    if os.environ.get("GRADER_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"GRADER_REQUIRE_POSTGRES=1 but PostgreSQL cannot be used: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL cannot be used: {reason} (set GRADER_REQUIRE_POSTGRES=1 to fail instead)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (see the module's docstring); skips (or fails under
    ``GRADER_REQUIRE_POSTGRES=1``) where none can be started."""
    try:
        # a time zone far from UTC: times must come back as UTC whatever the server's zone
        server = start_postgres(fsync=False, max_connections=200, time_zone=SERVER_TIME_ZONE)
    except PostgresUnavailable as err:
        _unavailable(str(err))
        return
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database ``test_N`` on the session's server; dropped after."""
    import psycopg

    name = f"test_{next(_numbers)}"
    yield create_database(postgres_server.port, name)
    dsn = f"host=127.0.0.1 port={postgres_server.port} user=grader dbname=postgres"
    with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each test twice: ``None`` (the store's SQLite file in its state folder) and the URL of a
    fresh PostgreSQL database (:func:`postgres_url`)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))
