"""The event server's command-line options and their parsing (``grader event``, ``grader serve``).

Used by :mod:`grader.cli`, which prints; nothing here prints or imports the server's heavy
libraries, so ``grader --help`` stays fast.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from grader.errors import UsageError
from grader.server.state import STATE_DIR_ENV

__all__ = ["add_parsers", "join_links", "parse_cap", "parse_ends", "read_teams"]

DEFAULT_LEASE_S = 60.0  # as grader.server.jobs.DEFAULT_LEASE_S (not imported: it loads SQLAlchemy)
_CAP = re.compile(r"^\s*(\d+)\s*(?:/\s*day)?\s*$", re.IGNORECASE)
MAX_TEAM_NAME = 64


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], *,
                sandbox_option: Callable[[argparse.ArgumentParser], None],
                executor_options: Callable[..., None]) -> None:
    """Add ``event create``, ``event list`` and ``serve`` to the ``grader`` parser's commands;
    ``sandbox_option`` and ``executor_options`` add the options ``grader check`` shares."""
    state_help = (f"state folder: the database and the uploads (default: ${STATE_DIR_ENV}, else "
                  "$XDG_DATA_HOME/grader or ~/.local/share/grader)")
    event = sub.add_parser("event", help="create and list events of the event server",
                           description="Events of the event server: teams submit notebooks through "
                           "its web pages (grader serve).")
    event_sub = event.add_subparsers(dest="event_command", required=True, metavar="EVENT_COMMAND")
    create = event_sub.add_parser(
        "create", help="create an event and print its join links",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create event NAME in the state folder with its challenges and teams, and print\n"
        "each team's join link and the coach's. The links hold secret tokens that are stored\n"
        "only as hashes: they are shown this once, so keep them.",
        epilog="example:\n  grader event create hackday --challenge gear-cnn --challenge gear-deep \\\n"
        "      --teams teams.csv --cap 5/day --ends 2026-12-24T18:00Z\n"
        "  grader serve --event hackday")
    create.add_argument("name", metavar="NAME", help="event name: letters, digits, '.', '_', '-' (up to 64)")
    create.add_argument("--challenge", action="append", required=True, metavar="ID",
                        help="a challenge of the event (repeat for several; `grader challenges` lists them)")
    create.add_argument("--teams", required=True, metavar="CSV",
                        help="CSV file with a header row and a `team` column: one team name per row "
                        f"(unique, 1 to {MAX_TEAM_NAME} characters)")
    create.add_argument("--cap", metavar="N/day",
                        help="submissions a team may send per day (UTC), e.g. 5/day (default: no cap)")
    create.add_argument("--ends", metavar="TIME",
                        help="when submissions close, ISO 8601, e.g. 2026-12-24T18:00Z (no offset: UTC)")
    create.add_argument("--title", help="title shown on the pages (default: NAME)")
    create.add_argument("--state", metavar="DIR", help=state_help)
    create.add_argument("--database-url", metavar="URL",
                        help="SQLAlchemy database URL, e.g. postgresql+psycopg://USER@HOST/DB (default: SQLite "
                        "in the state folder)")
    create.add_argument("--host", default="127.0.0.1", help="host in the printed links (default 127.0.0.1)")
    create.add_argument("--port", type=int, default=8000, help="port in the printed links (default 8000)")
    listing = event_sub.add_parser("list", help="list the events of the state folder")
    listing.add_argument("--state", metavar="DIR", help=state_help)
    listing.add_argument("--database-url", metavar="URL", help="SQLAlchemy database URL (default: SQLite)")

    serve = sub.add_parser(
        "serve", help="serve an event's pages and grade its submissions",
        description="Serve event NAME on http://HOST:PORT/ (teams upload notebooks and see their scorecards; "
        "the coach's pages are under /coach) and grade queued submissions in worker threads through the "
        "same pipeline as grader check. Jobs a killed server left running are queued again at start; "
        "SIGINT or SIGTERM stops it, putting running jobs back in the queue.")
    serve.add_argument("--event", required=True, metavar="NAME", help="the event to serve (grader event create)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="submissions graded at once (default: one per GPU of --gpus, else 1); each kernel "
                       "gets cores/N threads")
    serve.add_argument("--state", metavar="DIR", help=state_help)
    serve.add_argument("--database-url", metavar="URL",
                       help="SQLAlchemy database URL, e.g. postgresql+psycopg://USER@HOST/DB (default: SQLite "
                       "in the state folder, with this server its only worker)")
    serve.add_argument("--lease", type=_seconds, default=DEFAULT_LEASE_S, metavar="SECONDS",
                       help="advanced: how long a running job stays this server's without a heartbeat (renewed "
                       "every third of it) before another server, or this one, queues it again; its worker is "
                       f"presumed dead (default {DEFAULT_LEASE_S:g})")
    serve.add_argument("--profile", default="full",
                       help="profile the notebooks run with, one the challenges declare (default: full)")
    serve.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="passed as DEVICE (auto: cuda when an NVIDIA GPU is present)")
    serve.add_argument("--gpus", metavar="IDS",
                       help="GPU ids for the workers, worker n the n-th (CUDA_VISIBLE_DEVICES; run as many workers "
                       "as GPUs for one submission per GPU); default: every GPU nvidia-smi lists when the device "
                       "is cuda")
    executor_options(serve, local="the worker threads of this server")
    sandbox_option(serve)


def _seconds(text: str) -> float:
    """``--lease``'s value: a number of seconds above 0 (argparse reports the error)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, e.g. 60")
    return value


def parse_cap(text: str | None) -> int | None:
    """``5/day`` (or ``5``) as 5; None for None.

    Raises:
        UsageError: not a whole number of at least 1, optionally followed by ``/day``.
    """
    if text is None:
        return None
    match = _CAP.match(text)
    if not match or int(match.group(1)) < 1:
        raise UsageError(f"--cap {text}: give submissions per day as N/day, N at least 1",
                         fix="e.g. --cap 5/day")
    return int(match.group(1))


def parse_ends(text: str | None) -> datetime | None:
    """An ISO 8601 time (``2026-12-24T18:00Z``, ``2026-12-24 18:00+01:00``) as aware UTC; a time
    without an offset is UTC. None for None.

    Raises:
        UsageError: not an ISO 8601 date and time.
    """
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise UsageError(f"--ends {text}: not an ISO 8601 time", fix="e.g. --ends 2026-12-24T18:00Z") from err
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def read_teams(path: Path) -> list[str]:
    """The team names of a CSV file with a header row holding a ``team`` column (any case),
    in file order; rows whose team cell is blank are skipped.

    Raises:
        UsageError: the file cannot be read, has no ``team`` column, holds no team, or a name is
            over 64 characters or repeated (each named).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"cannot read the teams file: {err}", path=path) from err
    header = [h.strip().lower() for h in rows[0]] if rows else []
    fix = "give the file a header row with a `team` column, then one team name per row"
    if "team" not in header:
        raise UsageError("the teams file has no `team` column in its header row", path=path, fix=fix)
    column = header.index("team")
    names = [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]
    if not names:
        raise UsageError("the teams file lists no team", path=path, fix=fix)
    long = [n for n in names if len(n) > MAX_TEAM_NAME]
    if long:
        raise UsageError(f"team names over {MAX_TEAM_NAME} characters: {', '.join(long)}", path=path)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"team names repeated: {', '.join(repeated)}", path=path, fix="give each team one row")
    return names


def join_links(base: str, team_tokens: dict[str, str], coach_token: str) -> list[tuple[str, str]]:
    """``(who, link)`` for each team, then the coach: ``base/join/<token>``, ``base/coach/join/<token>``."""
    base = base.rstrip("/")
    return [(team, f"{base}/join/{token}") for team, token in team_tokens.items()] + [
        ("coach", f"{base}/coach/join/{coach_token}")]
