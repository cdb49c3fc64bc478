"""Intake: every form a coach receives, each team isolated; zips unpacked safely; a team's fault is
its failing scorecard, never a stop of the batch."""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.cli.main import main
from grader.core.errors import UsageError
from grader.core.settings import Settings
from grader.intake.submissions import Submission, intake, intake_upload
from grader.intake.unzip import ZipLimits, judge
from grader.intake.workcopy import copy_submission
from grader.pipeline.cache import cache_key
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.report.render import render_scorecard
from tests.support.bombs import many_entry_bomb

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LMS = ASSETS / "intake-lms"


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _folder_entries(folder: Path, prefix: str) -> dict[str, bytes | str]:
    return {f"{prefix}{rel}": (folder / rel).read_bytes() for rel in _files(folder)}


@pytest.fixture
def junk_team(tmp_path: Path) -> Path:
    """intake-junk/team7 plus what git should not hold: checkpoints, a symbolic link, a pycache,
    macOS metadata (not notebooks, though named so: linters would read them)."""
    team = shutil.copytree(ASSETS / "intake-junk" / "team7", tmp_path / "team7")
    (team / "._toy.ipynb").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (team / "__MACOSX").mkdir()
    (team / "__MACOSX" / "._toy.ipynb").write_bytes(b"\x00\x05\x16\x07")
    (team / ".ipynb_checkpoints").mkdir()
    (team / ".ipynb_checkpoints" / "toy-checkpoint.ipynb").write_text("{}")
    (team / "__pycache__").mkdir()
    (team / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"\0")
    (team / "secrets").symlink_to("/etc/passwd")
    return team


JUNK_IGNORED = (
    ".ipynb_checkpoints/ (Jupyter's checkpoint copies)",
    "__MACOSX/ (macOS zip metadata)",
    "__pycache__/ (Python bytecode)",
    "._toy.ipynb (macOS AppleDouble metadata)",
    "Untitled.ipynb (an empty scratch notebook: no code)",
    "secrets (a symbolic link; put the file itself)",
    "toy-Copy1.ipynb (another notebook for challenge toy; graded: toy.ipynb, the newest not named "
    "Untitled or a copy)",
    "Untitled1.ipynb (names no challenge, while toy.ipynb does: not graded; name its challenge in its "
    "metadata or file name to have it graded)",
)
JUNK_FILES = ("Untitled1.ipynb", "helper.py", "toy-Copy1.ipynb", "toy.ipynb")


def test_lms_bare_notebooks_each_get_a_working_copy_of_their_own(tmp_path: Path) -> None:
    alice, bob = intake([LMS / "alice.ipynb", LMS / "bob.ipynb"], workspace=tmp_path)
    assert (alice.name, bob.name) == ("alice", "bob")
    assert alice.files == ("alice.ipynb",) and bob.files == ("bob.ipynb",)
    assert alice.notebooks == (LMS / "alice.ipynb",) and alice.new_images is None
    assert alice.ignored == ("new_images/ (beside several notebooks: it belongs to none of them; put each "
                             "team's notebook and new_images/ in a folder of its own)",)
    workdir = tmp_path / "work"
    workdir.mkdir()
    assert copy_submission(alice, workdir, limit_mb=64) is None
    assert _files(workdir) == ["alice.ipynb"]


def test_a_lone_notebook_keeps_the_new_images_beside_it(tmp_path: Path) -> None:
    shutil.copy(LMS / "alice.ipynb", tmp_path / "alice.ipynb")
    (tmp_path / "new_images").mkdir()
    (tmp_path / "new_images" / "cat.png").write_bytes(b"png")
    (tmp_path / "notes.txt").write_text("not hers")
    (tmp_path / "Untitled.ipynb").write_text('{"cells": [], "metadata": {}}')  # empty scratch: no rival
    [alice] = intake([tmp_path / "alice.ipynb"], workspace=tmp_path)
    assert alice.files == ("alice.ipynb", "new_images/cat.png")
    assert alice.new_images == tmp_path / "new_images"


def test_a_notebook_one_folder_down_is_found(tmp_path: Path) -> None:
    root = ASSETS / "intake-nested" / "team3"
    [team] = intake([root], workspace=tmp_path)
    assert team.name == "team3" and team.problems == () and team.ignored == ()
    assert team.notebooks == (root / "code" / "toy.ipynb",)
    assert team.files == ("README.md", "code/toy.ipynb", "new_images/about.txt")
    assert team.new_images == root / "new_images"


def test_checkpoints_macos_files_links_and_scratch_notebooks_are_ignored_and_listed(
        junk_team: Path, tmp_path: Path) -> None:
    [team] = intake([junk_team], workspace=tmp_path, challenges=("toy",))
    assert team.ignored == JUNK_IGNORED
    assert team.files == JUNK_FILES
    # Untitled1 has code but names no challenge, while toy.ipynb does: a stray scratch, not graded
    assert team.notebooks == (junk_team / "toy.ipynb",)
    workdir = tmp_path / "work"
    workdir.mkdir()
    assert copy_submission(team, workdir, limit_mb=64) is None
    assert tuple(_files(workdir)) == JUNK_FILES


def test_of_two_notebooks_for_one_challenge_the_newest_is_graded(tmp_path: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    for name, mtime in (("toy-final.ipynb", 2_000_000_000), ("toy.ipynb", 1_900_000_000),
                        ("gear-cnn.ipynb", 1_800_000_000)):
        shutil.copy(LMS / "alice.ipynb", team / name)
        os.utime(team / name, (mtime, mtime))
    (team / "gear-cnn.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "1"}]}')
    [sub] = intake([team], workspace=tmp_path, challenges=("toy", "gear-cnn"))
    assert sub.notebooks == (team / "gear-cnn.ipynb", team / "toy-final.ipynb")  # by name, by metadata
    assert sub.ignored == ("toy.ipynb (another notebook for challenge toy; graded: toy-final.ipynb, the "
                           "newest not named Untitled or a copy)",)
    [forced] = intake([team], workspace=tmp_path, explicit="toy")  # --challenge: one notebook
    assert forced.notebooks == (team / "toy-final.ipynb",) and len(forced.ignored) == 2


def test_a_team_zip_is_one_team_named_after_the_zip(junk_team: Path, tmp_path: Path) -> None:
    entries = _folder_entries(junk_team, "team7/")
    del entries["team7/secrets"]  # the symbolic link: a zip of links is refused (below)
    entries["__MACOSX/team7/._helper.py"] = b"\0"
    path = _zip(tmp_path / "Team Seven.zip", entries)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    [team] = intake([path], workspace=workspace, challenges=("toy",))
    assert team.name == "Team Seven" and team.source == path
    assert team.root.name == "team7" and team.root.is_relative_to(workspace)
    assert team.files == JUNK_FILES
    assert team.ignored == (  # paths in the zip, not unpacked; then as in the folder
        "team7/._toy.ipynb (macOS AppleDouble metadata)",
        "team7/.ipynb_checkpoints/ (Jupyter's checkpoint copies)", "team7/__MACOSX/ (macOS zip metadata)",
        "team7/__pycache__/ (Python bytecode)", "__MACOSX/ (macOS zip metadata)",
        "Untitled.ipynb (an empty scratch notebook: no code)", *JUNK_IGNORED[-2:])
    # one upload is always one team
    upload = intake_upload(path, workspace=workspace, name="t7", challenges=("toy",))
    assert upload.name == "t7" and upload.files == JUNK_FILES


def test_a_cohort_zip_gives_one_team_per_top_level_notebook_and_folder(tmp_path: Path) -> None:
    nested = _folder_entries(ASSETS / "intake-nested" / "team3", "team3/")
    path = _zip(tmp_path / "cohort.zip", {
        "alice.ipynb": (LMS / "alice.ipynb").read_bytes(), "bob.ipynb": (LMS / "bob.ipynb").read_bytes(),
        **nested, "notes/readme.txt": "no notebook: no team", "__MACOSX/._alice.ipynb": b"\0",
        "team3/.ipynb_checkpoints/toy-checkpoint.ipynb": "{}",
    })
    alice, bob, team3 = intake([path], workspace=tmp_path)
    assert [s.name for s in (alice, bob, team3)] == ["alice", "bob", "team3"]
    assert alice.files == ("alice.ipynb",) and bob.files == ("bob.ipynb",)
    assert alice.root == bob.root and alice.source == path and alice.new_images is None
    # one folder that holds them all is a zip of one folder: looked through, then a cohort
    wrapped = _zip(tmp_path / "wrapped.zip", {f"export/{name}": data for name, data in {
        "carol/toy.ipynb": "{}", "dave/code/toy.ipynb": "{}"}.items()})
    assert [(s.name, s.files) for s in intake([wrapped], workspace=tmp_path)] == [
        ("carol", ("toy.ipynb",)), ("dave", ("code/toy.ipynb",))]
    assert team3.files == ("README.md", "code/toy.ipynb", "new_images/about.txt")
    assert team3.notebooks == (team3.root / "code" / "toy.ipynb",)
    # what unpacking left out inside a team's folder is listed on that team's scorecard
    assert team3.ignored == (".ipynb_checkpoints/ (Jupyter's checkpoint copies)",)
    assert alice.ignored == ()


def _symlink_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("team/toy.ipynb", "{}")
        link = zipfile.ZipInfo("team/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return path


def _bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("team/toy.ipynb", "{}")
        with archive.open("team/zeros.bin", "w") as out:
            block = bytes(1 << 20)
            for _ in range(200):
                out.write(block)
    return path


ZIP_FIX = "zip the team's folder itself, from inside its parent folder (`zip -r team3.zip team3`)"


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: _zip(p, {"team/toy.ipynb": "{}", "../evil.py": "x"}),
     "bad.zip: entry '../evil.py' points outside the zip's folder (an absolute path or '..'); the zip "
     f"was not unpacked. Fix: {ZIP_FIX}"),
    (lambda p: _zip(p, {"team/toy.ipynb": "{}", "team/../../evil.py": "x"}),
     "bad.zip: entry 'team/../../evil.py' points outside the zip's folder (an absolute path or '..'); "
     f"the zip was not unpacked. Fix: {ZIP_FIX}"),
    (lambda p: _zip(p, {"/etc/cron.d/evil": "x"}),
     "bad.zip: entry '/etc/cron.d/evil' points outside the zip's folder (an absolute path or '..'); "
     f"the zip was not unpacked. Fix: {ZIP_FIX}"),
    (_symlink_zip,
     "bad.zip: entry 'team/passwd' is a symbolic link; the zip was not unpacked. Fix: zip the files "
     "themselves, not links to them (`zip -r`, without -y)"),
    (lambda p: _zip(p, {f"team/f{i}.txt": "" for i in range(10_001)}),
     "bad.zip: it holds 10001 entries, over the limit of 10000; the zip was not unpacked. Fix: leave "
     "datasets and generated files out"),
    (_bomb,
     "bad.zip: entry 'team/zeros.bin' expands more than 100 times (a zip bomb?); the zip was not "
     "unpacked. Fix: zip the team's own files; leave generated data out"),
    (lambda p: p.write_bytes(b"PK\3\4 not really a zip") and p,
     "bad.zip: it is not a readable zip (File is not a zip file); the zip was not unpacked. Fix: zip "
     "the team's folder again"),
], ids=["dotdot", "dotdot-inside", "absolute", "symlink", "too-many-files", "bomb", "damaged"])
def test_unsafe_zips_are_refused_with_their_reason(make: Callable[[Path], Path], message: str,
                                                    tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    [team] = intake([make(tmp_path / "bad.zip")], workspace=workspace)
    assert team.name == "bad" and team.problems == (message,)
    assert team.notebooks == () and team.files == ()
    assert [p for p in workspace.rglob("*") if p.is_file()] == []  # nothing left unpacked
    assert not (tmp_path / "evil.py").exists()


def test_a_zip_over_the_size_limit_is_refused_from_its_declared_sizes(tmp_path: Path) -> None:
    path = _zip(tmp_path / "big.zip", {"team/toy.ipynb": "{}", "team/data.bin": bytes(3 << 20)})
    [team] = intake([path], workspace=tmp_path, limits=ZipLimits(max_bytes=2 << 20, max_ratio=1e9))
    assert team.problems == ("big.zip: it expands to 3.0 MB, over the limit of 2.0 MB; the zip was not "
                             "unpacked. Fix: leave datasets and checkpoints out; the grader gives the "
                             "data in DATA_DIR",)


def test_a_zip_of_many_one_mib_entries_is_refused_from_its_directory_with_nothing_written(tmp_path: Path) -> None:
    """1,024 entries of one MiB of zeros (each under the per-entry ratio's floor), 1 MB zipped: the
    whole zip expands 1,000 times and is refused before any entry is written (it wrote 1 GB)."""
    path = many_entry_bomb(tmp_path / "bomb.zip")
    assert path.stat().st_size < 2 << 20
    workspace = tmp_path / "ws"
    workspace.mkdir()
    [team] = intake([path], workspace=workspace)
    assert len(team.problems) == 1
    assert re.fullmatch(r"bomb\.zip: it expands to 1\.0 GB from 1\.\d MB, more than 100 times \(a zip bomb\?\); the "
                        r"zip was not unpacked\. Fix: zip the team's own files; leave generated data out",
                        team.problems[0]), team.problems
    assert [p for p in workspace.rglob("*") if p.is_file()] == []


def test_the_entry_count_is_read_before_the_directory_is_parsed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _zip(tmp_path / "many.zip", {f"team/f{i}.txt": "" for i in range(30)})
    monkeypatch.setattr(zipfile.ZipFile, "infolist", lambda self: pytest.fail("the directory was parsed"))
    assert judge(path, limits=ZipLimits(max_files=20), skip=lambda parts: None) == (
        "many.zip: it holds 30 entries, over the limit of 20; the zip was not unpacked. Fix: leave datasets "
        "and generated files out")


def test_a_missing_path_is_a_usage_error_before_anything_is_unpacked(tmp_path: Path) -> None:
    path = _zip(tmp_path / "team.zip", {"team/toy.ipynb": "{}"})
    with pytest.raises(UsageError, match="no such file or folder"):
        intake([path, tmp_path / "nope"], workspace=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.zip"]


def test_empty_folders_zips_without_notebooks_and_other_files_are_failing_scorecards(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    (tmp_path / "empty").mkdir()
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    no_nb = _zip(tmp_path / "photos.zip", {"photos/cat.jpg": b"jpg"})
    subs = intake([tmp_path / "empty", tmp_path / "report.pdf", no_nb], workspace=tmp_path)
    assert [s.problems for s in subs] == [
        ("empty: the submission holds no notebook (*.ipynb) at its top or one folder down: put the "
         "team's notebook at the top of its folder",),
        ("report.pdf is not a notebook (.ipynb), a submission folder or a .zip of one: hand in the "
         "notebook itself, or a zip of the team's folder",),
        ("photos.zip: it holds no notebook (.ipynb); the zip was not unpacked. Fix: zip the team's folder "
         "with its notebook in it",),  # judged from its central directory: nothing unpacked
    ]
    result = grade_submission(subs[0], settings, GradeOptions())
    assert (result.verdict, result.score, result.notebooks) == ("fail", 0, [])
    assert result.problems == list(subs[0].problems)
    html = render_scorecard(result.model_copy(
        update={"ignored": ["x.ipynb (an empty scratch notebook: no code)"]}))
    assert "the submission holds no notebook" in html
    assert "Ignored: x.ipynb (an empty scratch notebook: no code)" in html


def test_a_submission_pickles_and_its_cache_key_hashes_exactly_its_files(
        make_toy: Callable[..., Settings], junk_team: Path, tmp_path: Path) -> None:
    settings = make_toy()
    [team] = intake([junk_team], workspace=tmp_path, challenges=("toy",))
    assert pickle.loads(pickle.dumps(team)) == team
    options = GradeOptions()
    key = cache_key(team, settings, options)
    (junk_team / ".ipynb_checkpoints" / "toy-checkpoint.ipynb").write_text('{"cells": []}')
    assert cache_key(team, settings, options) == key  # an ignored file
    (junk_team / "helper.py").write_text("ANSWER = 43\n")
    assert cache_key(team, settings, options) != key  # a helper file the notebook may read
    [moved] = intake([shutil.copytree(junk_team, tmp_path / "elsewhere" / "team7", symlinks=True)],
                     workspace=tmp_path, challenges=("toy",))
    assert cache_key(moved, settings, options) == cache_key(team, settings, options)


def _toy_submission(tmp_path: Path, size: int) -> Submission:
    team = tmp_path / "big"
    team.mkdir()
    shutil.copy(LMS / "alice.ipynb", team / "toy.ipynb")
    with open(team / "weights.bin", "wb") as f:
        f.truncate(size)  # sparse: no disk used
    [sub] = intake([team], workspace=tmp_path)
    return sub


def test_a_submission_over_the_working_copy_limit_is_a_failing_scorecard(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy(execution="disk_mb = 64\n")
    result = grade_submission(_toy_submission(tmp_path, 65 << 20), settings, GradeOptions())
    nb = result.notebooks[0]
    assert (result.verdict, nb.score, nb.execution.status) == ("fail", 0, "too_large")
    assert nb.execution.message == (
        "the submission holds 65.0 MB, over this challenge's limit of 64 MB for the working copy: leave "
        "datasets and checkpoints out; the grader gives the data in DATA_DIR")


def test_an_os_error_while_copying_is_a_failing_scorecard(
        make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_toy()

    def full(src: object, dst: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("grader.intake.workcopy.shutil.copy2", full)
    result = grade_submission(_toy_submission(tmp_path, 10), settings, GradeOptions())
    nb = result.notebooks[0]
    assert (result.verdict, nb.execution.status) == ("fail", "copy_failed")
    assert nb.execution.message == (
        "the submission could not be copied into its working copy: No space left on device at toy.ipynb."
        " Leave datasets, checkpoints and other large or unreadable files out of the submission")


@pytest.mark.kernel
def test_check_grades_bare_notebooks_an_empty_folder_and_a_cohort_zip_in_one_batch(
        make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    (tmp_path / "empty").mkdir()
    carol = (LMS / "alice.ipynb").read_text().replace("alice.ipynb", "carol.ipynb")
    dave = (LMS / "alice.ipynb").read_text().replace("alice.ipynb", "dave.ipynb")
    cohort = _zip(tmp_path / "cohort.zip", {"carol.ipynb": carol, "dave.ipynb": dave})
    out = tmp_path / "out"
    code = main(["check", str(LMS / "alice.ipynb"), str(LMS / "bob.ipynb"), str(tmp_path / "empty"),
                 str(cohort), "--out", str(out), "--sandbox", "none"])
    assert code == 1
    results = {name: json.loads((out / name / "result.json").read_text())
               for name in ("alice", "bob", "empty", "carol", "dave")}
    for name in ("alice", "bob", "carol", "dave"):  # each notebook saw itself alone (its last cell)
        criteria = {c["id"]: c for c in results[name]["notebooks"][0]["criteria"]}
        assert criteria["runs"]["status"] == "pass", criteria["runs"]["message"]
        assert criteria["accuracy"]["status"] == "pass"
        assert (out / name / "scorecard.html").is_file()
    assert results["empty"]["verdict"] == "fail" and results["empty"]["notebooks"] == []
    assert results["empty"]["problems"] == [
        "empty: the submission holds no notebook (*.ipynb) at its top or one folder down: put the "
        "team's notebook at the top of its folder"]
    assert results["alice"]["ignored"] == [
        "new_images/ (beside several notebooks: it belongs to none of them; put each team's notebook "
        "and new_images/ in a folder of its own)"]
    assert results["carol"]["path"] == str(cohort)


@pytest.mark.kernel
def test_a_notebook_one_folder_down_runs_in_its_own_folder(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    from tests.support.toy import GOOD_TOY_CELLS, write_submission

    cells = ["import os\nassert os.path.basename(os.getcwd()) == 'code', os.getcwd()\n"
             "from helper import ANSWER\nassert ANSWER == 42", *GOOD_TOY_CELLS]
    team = write_submission(tmp_path / "in", "team9", cells)
    (team / "code").mkdir()
    (team / "toy.ipynb").rename(team / "code" / "toy.ipynb")
    (team / "code" / "helper.py").write_text("ANSWER = 42\n")
    [sub] = intake([team], workspace=tmp_path / "ws", challenges=("toy",))
    nb = grade_submission(sub, make_toy(), GradeOptions()).notebooks[0]
    assert (nb.execution.status, nb.verdict) == ("ok", "pass"), nb.execution.message
