"""``teams.csv``: team names only (the format every event so far was made from) or one row per member
(team, name, email, student id); bad rows named with their line; the members reach the store through
``event create``, ``event add-team --members`` and ``event members``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.cli.teamsfile import read_teams, read_teams_file
from grader.core import UsageError
from grader.core.settings import Settings
from grader.server.store import MemberRow, Store, members_of, team_rows


def write(tmp_path: Path, text: str, name: str = "teams.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_of_team_names_reads_as_before(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffteam,room\nRed Team,1\n\nBlue,2\n")
    roster = read_teams_file(path)
    assert roster.teams == ("Red Team", "Blue") and roster.members == {}
    assert read_teams(path) == ["Red Team", "Blue"]
    with pytest.raises(UsageError, match="line 3: team names repeated: Red"):
        read_teams(write(tmp_path, "team\nRed\nRed\n"))


def test_one_row_per_member_gives_each_team_its_members_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "Team,Name,E-mail,Student ID,notes\n"
                           "Red,Ann Lee,ann@uni.example,s1,x\n"
                           "Blue,Cy,,,\n"
                           "Red,\"Bo, Jr.\",,s2,\n"
                           "Green,,,,\n")
    roster = read_teams_file(path)
    assert roster.teams == ("Red", "Blue", "Green")
    assert roster.members == {"Red": (MemberRow("Ann Lee", "ann@uni.example", "s1"), MemberRow("Bo, Jr.", "", "s2")),
                              "Blue": (MemberRow("Cy"),)}


@pytest.mark.parametrize(("text", "said"), [
    ("team,name\nRed,Ann\n,Bo\n", "line 3: member 'Bo' has no team: fill its `team` cell"),
    ("team,name,student_id\nRed,Ann,s1\nBlue,Bo,s1\n",
     "line 3: student id 's1' is given twice (also on line 2)"),
    ("team,name,email\nRed,Ann,ann@x.org\nRed,Bo,ANN@x.org\n",
     "line 3: email 'ANN@x.org' is given twice (also on line 2)"),
    ("team,name,email\nRed,,ann@x.org\n", "line 2: a member without a name: fill its `name` cell"),
    ("team,name,email\nRed,Ann,ann at x\n", "line 2: 'ann at x' is not an email address"),
    ("team,name\n" + "x" * 65 + ",Ann\n", "line 2: team names over 64 characters"),
    ("team,name,student_id\nRed,Ann," + "9" * 65 + "\n", "line 2: student_id over 64 characters"),
])
def test_bad_rows_are_named_with_their_line_and_the_fix(tmp_path: Path, text: str, said: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        read_teams_file(path)
    message = str(caught.value)
    assert said in message and str(path) in message
    assert "fix: correct those rows; the format:" in message and "team,name,email,student_id" in message


def test_every_bad_row_is_listed_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "team,name,student_id\n,Ann,\nRed,Bo,s1\nRed,Cy,s1\n")
    with pytest.raises(UsageError, match=r"2 problem\(s\):\n  line 2: .*\n  line 4: "):
        read_teams_file(path)
    with pytest.raises(UsageError, match="no `team` column"):
        read_teams_file(write(tmp_path, "name\nAnn\n"))
    with pytest.raises(UsageError, match="lists no team"):
        read_teams_file(write(tmp_path, "team,name\n\n"))
    (tmp_path / "latin1.csv").write_bytes("team\nK\xf6ln\n".encode("latin-1"))
    with pytest.raises(UsageError, match="cannot read the teams file: 'utf-8' codec"):
        read_teams_file(tmp_path / "latin1.csv")


def test_members_reach_the_event_through_its_commands(make_toy: Callable[..., Settings], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    state = str(tmp_path / "st")
    teams = write(tmp_path, "team,name,email,student_id\nRed,Ann,ann@x.org,s1\nRed,Bo,,s2\nBlue,,,\n")
    assert main(["event", "create", "hack", "--challenge", "toy", "--teams", str(teams), "--state", state]) == 0
    assert capsys.readouterr().out.startswith("event hack: toy; 2 teams (2 members);")

    def members() -> dict[str, list[str]]:
        store = Store(Path(state))
        try:
            found = members_of(store, "hack")
            return {t.name: [m.name for m in found.get(t.id, [])] for t in team_rows(store, "hack")}
        finally:
            store.close()

    assert members() == {"Red": ["Ann", "Bo"], "Blue": []}
    more = write(tmp_path, "team,name,student_id\nGreen,Di,s9\n", "green.csv")
    assert main(["event", "add-team", "hack", "Green", "--members", str(more), "--state", state]) == 0
    assert members()["Green"] == ["Di"]
    assert main(["event", "add-team", "hack", "Gold", "--members", str(more), "--state", state]) == 2
    assert "the teams file has no row for team 'Gold'; its teams: Green" in capsys.readouterr().err
    later = write(tmp_path, "team,name\nBlue,Ed\nRed,\n", "later.csv")
    assert main(["event", "members", "hack", "--teams", str(later), "--state", state]) == 0
    assert "hack: 1 member(s) of 2 team(s) set" in capsys.readouterr().out
    assert members() == {"Red": [], "Blue": ["Ed"], "Green": ["Di"]}
    assert main(["event", "teams", "hack", "--state", state]) == 0
    assert capsys.readouterr().out.splitlines() == ["Red", "Blue (1 members: Ed)", "Green (1 members: Di)"]
    unknown = write(tmp_path, "team,name\nPink,Fay\n", "pink.csv")
    assert main(["event", "members", "hack", "--teams", str(unknown), "--state", state]) == 2
    assert "no team 'Pink' in event 'hack'" in capsys.readouterr().err
