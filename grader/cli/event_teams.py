"""``grader event teams``, ``rotate-link``, ``add-team`` and ``remove-team``: the coach's changes to
who may sign in while an event runs (:mod:`grader.server.store.teams`). Each returns the lines the CLI
prints (only the CLI prints); a new link is shown this once, as ``grader event create`` shows them.
"""

from __future__ import annotations

import argparse

from grader.cli.links import join_link
from grader.server.store import (
    Store,
    add_team,
    remove_team,
    resolve_state_dir,
    rotate_coach_link,
    rotate_team_link,
    team_rows,
)

__all__ = ["ADMIN_COMMANDS", "run_admin"]

ADMIN_COMMANDS = ("teams", "rotate-link", "add-team", "remove-team")
_SECRET = "secret: shown only this once, the server keeps only its hash"


def run_admin(args: argparse.Namespace) -> list[str]:
    """Run ``grader event <args.event_command>`` (one of :data:`ADMIN_COMMANDS`) on the state folder
    (or database) of ``args``; the lines to print.

    Raises:
        UsageError: no such event or team (the message names the known ones), a bad team name,
            a team of that name exists, an unknown command.
        ConfigError: the state folder or database cannot be opened.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    store = Store(resolve_state_dir(args.state), args.database_url)
    try:
        return _run(store, args)
    finally:
        store.close()


def _run(store: Store, args: argparse.Namespace) -> list[str]:
    event = store.event(args.name).name
    command = args.event_command
    if command == "teams":
        live, removed = team_rows(store, event), team_rows(store, event, removed=True)
        return ([f"{t.name}" for t in live] + [f"{t.name} (removed)" for t in removed]
                or [f"event {event} has no team"])
    base = getattr(args, "base_url", "")
    if command == "rotate-link":
        link = rotate_coach_link(store, event) if args.coach else rotate_team_link(store, event, args.team)
        who = "the coach" if args.coach else f"team {link.who}"
        return [f"{who} of {event} has a new join link; the old one is refused from now on and "
                f"{link.ended} session(s) signed in with it have ended",
                f"  {link.who}: {join_link(base, link.token, coach=args.coach)}   ({_SECRET})"]
    if command == "add-team":
        link = add_team(store, event, args.team)
        said = (f"team {link.who} of {event} is back (it was removed): its submissions are on the boards again"
                if link.restored else f"team {link.who} added to {event}")
        return [said, f"  {link.who}: {join_link(base, link.token, coach=False)}   ({_SECRET})"]
    if command == "remove-team":
        ended = remove_team(store, event, args.team)
        return [f"team {args.team.strip()} removed from {event}: its link no longer signs in, {ended} session(s) "
                "ended; its submissions and scorecards stay on the coach's page, off the leaderboards and exports "
                f"(grader event add-team {event} {args.team.strip()!r} brings it back with a new link)"]
    from grader.core import UsageError

    raise UsageError(f"grader event {command}: not one of {', '.join(ADMIN_COMMANDS)}")
