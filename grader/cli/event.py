"""``grader event``: create and list the events of the event server, and change who may sign in
(``teams``, ``rotate-link``, ``add-team``, ``remove-team``, ``members``, run by
:mod:`grader.cli.event_teams`); with the parsing of their options (the teams file with its members,
``--cap``, ``--ends``) and the join links.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from pathlib import Path

from grader.cli.links import join_links
from grader.cli.options import STATE_HELP
from grader.cli.teamsfile import MAX_TEAM_NAME, read_teams_file
from grader.core import ExitStatus, Settings, UsageError

__all__ = ["add_parser", "cmd_event", "parse_cap", "parse_ends"]

_CAP = re.compile(r"^\s*(\d+)\s*(?:/\s*day)?\s*$", re.IGNORECASE)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``event`` and its commands (``create``, ``list``, the team changes) to the ``grader``
    parser's commands."""
    event = sub.add_parser("event", help="create, list and change events of the event server",
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
                        f"(unique, 1 to {MAX_TEAM_NAME} characters); or, to list members, one row per member "
                        "with columns team,name,email,student_id (the gradebooks for Canvas and Moodle have a row "
                        "per member)")
    create.add_argument("--cap", metavar="N/day",
                        help="submissions a team may send per day (UTC), e.g. 5/day (default: no cap)")
    create.add_argument("--ends", metavar="TIME",
                        help="when submissions close, ISO 8601, e.g. 2026-12-24T18:00Z (no offset: UTC)")
    create.add_argument("--title", help="title shown on the pages (default: NAME)")
    create.add_argument("--state", metavar="DIR", help=STATE_HELP)
    create.add_argument("--database-url", metavar="URL",
                        help="SQLAlchemy database URL, e.g. postgresql+psycopg://USER@HOST/DB (default: SQLite "
                        "in the state folder)")
    create.add_argument("--host", default="127.0.0.1", help="host in the printed links (default 127.0.0.1)")
    create.add_argument("--port", type=int, default=8000, help="port in the printed links (default 8000)")
    create.add_argument("--base-url", type=_base_url, metavar="URL",
                        help="the address teams open, in the printed links, e.g. https://grader.example.org behind "
                        "an HTTPS proxy (default http://HOST:PORT)")
    listing = event_sub.add_parser("list", help="list the events of the state folder")
    listing.add_argument("--state", metavar="DIR", help=STATE_HELP)
    listing.add_argument("--database-url", metavar="URL", help="SQLAlchemy database URL (default: SQLite)")
    _add_admin_parsers(event_sub, STATE_HELP)


def _add_admin_parsers(event_sub: argparse._SubParsersAction[argparse.ArgumentParser], state_help: str) -> None:
    """``event teams``, ``rotate-link``, ``add-team``, ``remove-team``, ``members``
    (:mod:`grader.cli.event_teams`)."""
    link_help = ("the address teams open, in the printed link, e.g. https://grader.example.org (default "
                 "http://127.0.0.1:8000)")

    def common(parser: argparse.ArgumentParser, *, links: bool) -> None:
        parser.add_argument("name", metavar="NAME", help="the event (grader event list)")
        parser.add_argument("--state", metavar="DIR", help=STATE_HELP)
        parser.add_argument("--database-url", metavar="URL", help="SQLAlchemy database URL (default: SQLite)")
        if links:
            parser.add_argument("--base-url", type=_base_url, default="http://127.0.0.1:8000", metavar="URL",
                                help=link_help)

    common(event_sub.add_parser("teams", help="list an event's teams (removed ones marked)"), links=False)
    rotate = event_sub.add_parser(
        "rotate-link", help="give a team or the coach a new join link, ending the sessions of the old one",
        description="Print a new join link for team TEAM (or the coach) of event NAME. The old link is\n"
        "refused from then on, and every browser signed in with it is signed out at its next page.\n"
        "Works while grader serve runs.", epilog="example:\n  grader event rotate-link hackday --team 'Team 3'\n"
        "  grader event rotate-link hackday --coach --base-url https://grader.example.org",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(rotate, links=True)
    who = rotate.add_mutually_exclusive_group(required=True)
    who.add_argument("--team", metavar="TEAM", help="the team's name, as grader event teams lists it")
    who.add_argument("--coach", action="store_true", help="the coach's link")
    add = event_sub.add_parser(
        "add-team", help="add a team to an event and print its join link",
        description="Add team TEAM to event NAME and print its join link (shown this once). A removed team's "
        "name brings that team back, its submissions with it, under a new link.")
    common(add, links=True)
    add.add_argument("team", metavar="TEAM", help=f"the team's name (1 to {MAX_TEAM_NAME} characters)")
    add.add_argument("--members", metavar="CSV", help="a teams file (as event create's --teams) whose rows for TEAM "
                     "list its members")
    members = event_sub.add_parser(
        "members", help="set the members of teams from a teams file (for the gradebooks per student)",
        description="Set the members of the teams that the teams file CSV names (one row per member:\n"
        "team,name,email,student_id), replacing what they had; a team the file names without\n"
        "members then has none. Teams it does not name keep theirs. The gradebooks for Canvas\n"
        "and Moodle (/coach/export/) have a row per member.",
        epilog="example:\n  grader event members hackday --teams teams.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(members, links=False)
    members.add_argument("--teams", required=True, metavar="CSV", help="the teams file: team,name,email,student_id")
    remove = event_sub.add_parser(
        "remove-team", help="remove a team: its link stops working and its sessions end",
        description="Remove team TEAM from event NAME: its link no longer signs in or uploads, and its "
        "browsers are signed out. Its submissions and scorecards are kept on the coach's page; it is left "
        "off the leaderboards and the exports. add-team with its name brings it back.")
    common(remove, links=False)
    remove.add_argument("team", metavar="TEAM", help="the team's name, as grader event teams lists it")


def _base_url(text: str) -> str:
    """``--base-url``'s value: an http(s) URL without a query (argparse reports the error)."""
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r}: give the address teams open, e.g. https://grader.example.org")
    return text.strip().rstrip("/")


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


def cmd_event(args: argparse.Namespace, settings: Settings) -> int:
    """``grader event create`` (prints the join links, shown only once) and ``grader event list``."""
    from grader.core import challenge_ids  # here for start-up time
    from grader.server.store import Store, resolve_state_dir, set_members, shown_url, team_rows

    if args.event_command in ("teams", "rotate-link", "add-team", "remove-team", "members"):
        from grader.cli.event_teams import run_admin  # here for start-up time

        print("\n".join(run_admin(args)))
        return ExitStatus.PASSED
    state = resolve_state_dir(args.state)
    if args.event_command == "list":
        store = Store(state, args.database_url)
        try:
            for ev in store.events():
                print(f"{ev.name:20} {ev.title}: {', '.join(ev.challenges)}; {len(team_rows(store, ev.name))} teams"
                      + (f", {ev.cap_per_day}/day" if ev.cap_per_day else "")
                      + (f", ends {ev.ends_at:%Y-%m-%d %H:%M} UTC" if ev.ends_at else ""))
        finally:
            store.close()
        return ExitStatus.PASSED
    known = challenge_ids(settings.project_dir)
    unknown = [c for c in args.challenge if c not in known]
    if unknown:
        raise UsageError(f"--challenge {', '.join(unknown)}: no such challenge; known: {', '.join(known) or 'none'}",
                         fix="pass ids that `grader challenges` lists")
    teams_file = read_teams_file(Path(args.teams))
    teams = list(teams_file.teams)
    cap, ends = parse_cap(args.cap), parse_ends(args.ends)
    store = Store(state, args.database_url)
    try:
        created = store.create_event(args.name, challenges=args.challenge, teams=teams, cap_per_day=cap,
                                     ends_at=ends, title=args.title)
        if teams_file.members:
            set_members(store, args.name, teams_file.members)
    finally:
        store.close()
    listed = sum(map(len, teams_file.members.values()))
    print(f"event {args.name}: {', '.join(args.challenge)}; {len(teams)} teams"
          + (f" ({listed} members)" if listed else "")
          + (f"; {cap} submissions a day each" if cap else "")
          + (f"; ends {ends:%Y-%m-%d %H:%M} UTC" if ends else "") + f"; state in {state}")
    print("join links (secret: each is shown only this once, the server keeps only hashes):")
    base = args.base_url or f"http://{args.host}:{args.port}"
    for who, link in join_links(base, created.team_tokens, created.coach_token):
        print(f"  {who}: {link}")
    print(f"start it with: grader serve --event {args.name} --host {args.host} --port {args.port}"
          + (f" --state {state}" if args.state else "")
          + (f" --database-url {shown_url(args.database_url)}" if args.database_url else ""))
    return ExitStatus.PASSED
