"""``grader event teams``, ``rotate-link``, ``add-team``, ``remove-team`` and ``members``: the coach's
changes to who may sign in while an event runs (:mod:`grader.server.store.teams`), and to the members
of its teams (:mod:`grader.server.store.members`, read from a teams file by
:func:`grader.cli.event.read_teams_file`). Each returns the lines the CLI prints (only the CLI
prints); a new link is shown this once, as ``grader event create`` shows them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.cli.links import join_link
from grader.cli.teamsfile import read_teams_file
from grader.core import UsageError
from grader.server.store import (
    MemberRow,
    Store,
    add_team,
    members_of,
    remove_team,
    resolve_state_dir,
    rotate_coach_link,
    rotate_team_link,
    set_members,
    team_rows,
)

__all__ = ["ADMIN_COMMANDS", "run_admin"]

ADMIN_COMMANDS = ("teams", "rotate-link", "add-team", "remove-team", "members")
_SECRET = "secret: shown only this once, the server keeps only its hash"


def run_admin(args: argparse.Namespace) -> list[str]:
    """Run ``grader event <args.event_command>`` (one of :data:`ADMIN_COMMANDS`) on the state folder
    (or database) of ``args``; the lines to print.

    Raises:
        UsageError: no such event or team (the message names the known ones), a bad team name,
            a team of that name exists, a teams file that does not read (its rows named), an unknown
            command.
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
        known = members_of(store, event)

        def listed(team_id: int) -> str:
            names = [m.name for m in known.get(team_id, [])]
            return f" ({len(names)} members: {', '.join(names)})" if names else ""

        return ([f"{t.name}{listed(t.id)}" for t in live] + [f"{t.name} (removed){listed(t.id)}" for t in removed]
                or [f"event {event} has no team"])
    if command == "members":
        teams_file = read_teams_file(Path(args.teams))
        set_members(store, event, {t: teams_file.members.get(t, ()) for t in teams_file.teams})
        count = sum(map(len, teams_file.members.values()))
        return [f"{event}: {count} member(s) of {len(teams_file.teams)} team(s) set from {args.teams}"]
    base = getattr(args, "base_url", "")
    if command == "rotate-link":
        link = rotate_coach_link(store, event) if args.coach else rotate_team_link(store, event, args.team)
        who = "the coach" if args.coach else f"team {link.who}"
        return [f"{who} of {event} has a new join link; the old one is refused from now on and "
                f"{link.ended} session(s) signed in with it have ended",
                f"  {link.who}: {join_link(base, link.token, coach=args.coach)}   ({_SECRET})"]
    if command == "add-team":
        given = _members_for(Path(args.members), args.team.strip()) if args.members else ()
        link = add_team(store, event, args.team)
        if given:
            set_members(store, event, {link.who: given})
        said = (f"team {link.who} of {event} is back (it was removed): its submissions are on the boards again"
                if link.restored else f"team {link.who} added to {event}")
        return [said, f"  {link.who}: {join_link(base, link.token, coach=False)}   ({_SECRET})"]
    if command == "remove-team":
        ended = remove_team(store, event, args.team)
        return [f"team {args.team.strip()} removed from {event}: its link no longer signs in, {ended} session(s) "
                "ended; its submissions and scorecards stay on the coach's page, off the leaderboards and exports "
                f"(grader event add-team {event} {args.team.strip()!r} brings it back with a new link)"]
    raise UsageError(f"grader event {command}: not one of {', '.join(ADMIN_COMMANDS)}")


def _members_for(path: Path, team: str) -> tuple[MemberRow, ...]:
    """The members the teams file ``path`` lists for ``team``.

    Raises:
        UsageError: the file does not read (:func:`grader.cli.event.read_teams_file`) or has no row
            for ``team`` (the message names the teams it has).
    """
    teams_file = read_teams_file(path)
    if team not in teams_file.teams:
        raise UsageError(f"the teams file has no row for team {team!r}; its teams: {', '.join(teams_file.teams)}",
                         path=path, fix="give the team's members one row each: team,name,email,student_id")
    return teams_file.members.get(team, ())
