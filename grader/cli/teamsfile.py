"""``teams.csv``, as ``grader event create --teams`` and ``grader event add-team --members`` read
it: a header row with a ``team`` column, then one team name per row, or one row per member with
columns ``team,name,email,student_id``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import UsageError

if TYPE_CHECKING:
    from grader.server.store import MemberRow

__all__ = ["MAX_TEAM_NAME", "TeamsFile", "read_teams", "read_teams_file"]

MAX_TEAM_NAME = 64

# teams.csv's columns (header names compared without case, spaces and hyphens as underscores)
_MEMBER_COLUMNS = {"name": ("name", "member"), "email": ("email", "e_mail", "email_address"),
                   "student_id": ("student_id", "studentid", "student_number")}
_MEMBER_LIMITS = {"name": 200, "email": 254, "student_id": 64}  # the lengths the database keeps
_TEAMS_FORMAT = ("a header row with a `team` column, then one team name per row; to list members, one row per "
                 "member with columns team,name,email,student_id (email and student_id may be blank)")


@dataclass(frozen=True)
class TeamsFile:
    """A teams file read (:func:`read_teams_file`).

    Attributes:
        teams: the team names, in file order (first appearance).
        members: team name -> its members in file order; a team without members is absent.
    """

    teams: tuple[str, ...]
    members: dict[str, tuple[MemberRow, ...]]


def read_teams_file(path: Path) -> TeamsFile:
    """The teams, and their members where listed, of a teams file (``teams.csv``).

    The format: a CSV file (UTF-8, a BOM allowed) whose header row holds a ``team`` column and
    optionally ``name``, ``email`` and ``student_id`` (header names in any case; ``member``,
    ``email address`` and ``student number`` also read); other columns are ignored. Without member
    columns (today's files) each row names a team, once. With them, each row is a member of the
    team in its ``team`` cell (the team repeated on every member's row); a row whose member cells
    are blank names a team without listing anyone. Blank rows are skipped.

    Raises:
        UsageError: the file cannot be read, has no ``team`` column, or lists no team; or rows that
            break the format, each named with its line: a member without a team or without a
            name, a team name over 64 characters or repeated (without member columns), a student
            id or email given twice, an email without ``@``, a cell longer than the database keeps.
    """
    from grader.server.store import MemberRow  # here for start-up time

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"cannot read the teams file: {err}", path=path) from err
    header = [re.sub(r"[\s-]+", "_", h.strip().lower()) for h in rows[0][1]] if rows else []
    if "team" not in header:
        raise UsageError("the teams file has no `team` column in its header row", path=path, fix=_TEAMS_FORMAT)
    column = {"team": header.index("team")} | {
        key: next(header.index(a) for a in names if a in header)
        for key, names in _MEMBER_COLUMNS.items() if any(a in header for a in names)}
    problems: list[str] = []
    teams: list[str] = []
    members: dict[str, list[MemberRow]] = {}
    seen: dict[tuple[str, str], int] = {}  # (column, value) -> the line that gave it
    for line, row in rows[1:]:
        cell = {key: row[i].strip() if i < len(row) else "" for key, i in column.items()}
        team, given = cell.pop("team"), {k: v for k, v in cell.items() if v}
        if not team:
            if given:
                who = given.get("name") or given.get("email") or given.get("student_id")
                problems.append(f"line {line}: member {who!r} has no team: fill its `team` cell")
            continue
        if len(team) > MAX_TEAM_NAME:
            problems.append(f"line {line}: team names over {MAX_TEAM_NAME} characters: {team}")
        elif team in teams and len(column) == 1:
            problems.append(f"line {line}: team names repeated: {team} (give each team one row)")
        if team not in teams:
            teams.append(team)
        if not given:
            continue
        problems += _member_problems(line, given, seen)
        members.setdefault(team, []).append(MemberRow(name=given.get("name", ""), email=given.get("email", ""),
                                                      student_id=given.get("student_id", "")))
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise UsageError(f"the teams file has {len(problems)} problem(s):\n  " + "\n  ".join(problems[:20]) + more,
                         path=path, fix=f"correct those rows; the format: {_TEAMS_FORMAT}")
    if not teams:
        raise UsageError("the teams file lists no team", path=path, fix=_TEAMS_FORMAT)
    return TeamsFile(tuple(teams), {t: tuple(found) for t, found in members.items()})


def _member_problems(line: int, given: dict[str, str], seen: dict[tuple[str, str], int]) -> list[str]:
    """What is wrong with the member cells ``given`` of line ``line`` (each said with the line);
    records its student id and email in ``seen``."""
    problems = []
    if "name" not in given:
        problems.append(f"line {line}: a member without a name: fill its `name` cell")
    problems += [f"line {line}: {key} over {limit} characters" for key, limit in _MEMBER_LIMITS.items()
                 if len(given.get(key, "")) > limit]
    email = given.get("email", "")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        problems.append(f"line {line}: {email!r} is not an email address")
    for key, value in (("student_id", given.get("student_id", "")), ("email", email.casefold())):
        if value and (key, value) in seen:
            said = "student id" if key == "student_id" else "email"
            problems.append(f"line {line}: {said} {given[key]!r} is given twice (also on line {seen[key, value]}): "
                            "each student belongs to one team, on one row")
        elif value:
            seen[key, value] = line
    return problems


def read_teams(path: Path) -> list[str]:
    """The team names of a teams file, in file order (:func:`read_teams_file`, which also reads the
    members).

    Raises:
        UsageError: as :func:`read_teams_file`.
    """
    return list(read_teams_file(path).teams)
