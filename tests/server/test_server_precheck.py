"""Checks before a slot is used (issue 28): the notebook's own challenge against the one picked, a syntax
check of its code cells, the intake's diagnosis of a file that is no notebook (as ``grader check`` gives
it), and post/redirect/get after every refusal of a browser's upload. Each refusal is counted in the
store: no submission row, the team's submissions left today unchanged."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.server.store.store import Store
from grader.server.web import precheck
from grader.server.web.app import create_app
from grader.server.web.flash import read_flash, refusal_flash
from grader.server.web.options import AppOptions
from tests.server.test_server_app import make_client
from tests.support.toy import build_toy

if TYPE_CHECKING:
    from starlette.testclient import TestClient

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # Chromium's, navigating
REPO = Path(__file__).resolve().parents[2]
APP_JS = REPO / "grader" / "server" / "web" / "static" / "app.js"


def notebook(cells: Sequence[str], *, challenge: str | None = "toy", markdown: bool = False) -> bytes:
    """A notebook: a parameters cell, (a markdown cell,) then ``cells``; its metadata names ``challenge``."""
    nb = new_notebook(cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
                             *([new_markdown_cell("# My work")] if markdown else []),
                             *[new_code_cell(c) for c in cells]],
                      metadata={"grader": {"challenge": challenge}} if challenge else {})
    return str(nbformat.writes(nb)).encode()


@dataclass
class Team:
    store: Store
    client: TestClient
    csrf: str


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    """Team alpha signed in to an event of the toy challenge and ``gear-cnn`` (a cap of 3 a day)."""
    settings = build_toy(tmp_path / "project")
    store = Store(tmp_path / "state")
    created = store.create_event("hack", challenges=["toy", "gear-cnn"], teams=["alpha"], cap_per_day=3)
    app = create_app(store, settings, workers=None, options=AppOptions(max_upload_bytes=8 << 20, join_delay_s=0.01))
    with make_client(app) as client:
        link = f"/join/{created.team_tokens['alpha']}"
        fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', client.get(link).text))
        home = client.post(link, data=fields, follow_redirects=True)
        found = re.search(r'name="csrf" value="([^"]+)"', home.text)
        assert found is not None, home.text
        yield Team(store, client, found.group(1))
    store.close()


def send(team: Team, files: Sequence[tuple[str, bytes]], *, challenge: str = "toy", browser: bool = False,
         practice: bool = False) -> httpx.Response:
    data = {"challenge": challenge, "csrf": team.csrf} | ({"practice": "1"} if practice else {})
    answer: httpx.Response = team.client.post("/submit", data=data, files=[("files", f) for f in files],
                                              headers=BROWSER if browser else {}, follow_redirects=False)
    return answer


def nothing_used(team: Team) -> None:
    """No submission stored and the whole cap left."""
    assert team.store.submissions("hack") == []
    (alpha,) = team.store.teams("hack")
    assert team.store.submissions_left_today("hack", alpha.id) == 3


def text(page: httpx.Response) -> str:
    """The page's text with its HTML entities undone (the messages quote names)."""
    import html

    return html.unescape(page.text)


# ---------------------------------------------------------------- the notebook's own challenge


def test_a_notebook_of_another_challenge_is_refused_with_both_names_and_no_slot(team: Team) -> None:
    page = send(team, [("gear.ipynb", notebook(["print(1)"], challenge="gear-cnn"))], challenge="toy")
    assert page.status_code == 400
    assert ("gear.ipynb is a notebook for challenge gear-cnn (its metadata says so), but it was sent as toy. "
            "Nothing was queued and no submission was used. Fix: choose gear-cnn in the Challenge list") in text(page)
    # a challenge of the project that this event does not hold: named too, with the fix
    page = send(team, [("old.ipynb", notebook(["print(1)"], challenge="gear-classical"))], challenge="toy")
    assert page.status_code == 400
    assert "old.ipynb names challenge 'gear-classical' in its metadata, which is not a challenge of this event" \
        in text(page)
    # in a zip (the notebook the workers would grade) and beside images
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("team3/gear.ipynb", notebook(["print(1)"], challenge="gear-cnn"))
        archive.writestr("team3/new_images/cat.png", b"\x89PNG fake")
    page = send(team, [("team3.zip", packed.getvalue())])
    assert page.status_code == 400 and "team3.zip: gear.ipynb is a notebook for challenge gear-cnn" in text(page)
    page = send(team, [("gear.ipynb", notebook(["print(1)"], challenge="gear-cnn")), ("cat.png", b"\x89PNG")])
    assert page.status_code == 400 and "but it was sent as toy" in text(page)
    nothing_used(team)
    # its own challenge picked, or no challenge named: queued as picked
    assert send(team, [("gear.ipynb", notebook(["print(1)"], challenge="gear-cnn"))],
                challenge="gear-cnn").status_code == 303
    assert send(team, [("mine.ipynb", notebook(["print(1)"], challenge=None))]).status_code == 303
    assert [(s.filename, s.challenge) for s in team.store.submissions("hack")] == [
        ("mine.ipynb", "toy"), ("gear.ipynb", "gear-cnn")]


# ---------------------------------------------------------------- syntax


def test_a_syntax_error_is_refused_with_its_cell_and_line_and_no_slot(team: Team) -> None:
    bad = notebook(["import os", "x = 1\n\nprint 'hello'\n"], markdown=True)  # cell 4: parameters, markdown, 2
    page = send(team, [("toy.ipynb", bad)])
    assert page.status_code == 400
    assert ("toy.ipynb: cell 4, line 3: Missing parentheses in call to 'print'. Did you mean print(...)? "
            "(`print 'hello'`). Nothing was queued and no submission was used. Fix: correct that line") in text(page)
    # leading blank lines count (IPython drops them before compiling); a cut-off expression
    page = send(team, [("toy.ipynb", notebook(["\n\nvalues = [1, 2,\n"]))])
    assert page.status_code == 400 and "toy.ipynb: cell 2, line 3: '[' was never closed" in text(page)
    page = send(team, [("toy.ipynb", notebook(["def f():\n    pass\nreturn 3"]))])  # the compiler's, not the parser's
    assert page.status_code == 400 and "cell 2, line 3: 'return' outside function" in text(page)
    # in a zip: the notebook the workers would grade (a scratch copy beside it is not), named in the zip
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("team3/toy.ipynb", notebook(["x = 1", "print 'x'"]))
        archive.writestr("team3/Untitled.ipynb", notebook(["print 'scratch'"]))
        archive.writestr("team3/new_images/cat.png", b"\x89PNG fake")
    page = send(team, [("team3.zip", packed.getvalue())])
    assert page.status_code == 400 and "team3.zip: toy.ipynb: cell 3, line 1: Missing parentheses" in text(page)
    # the intake's own problem with a zip: its notebook too deep to be found
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("team3/a/b/toy.ipynb", notebook(["x = 1"]))
        archive.writestr("team3/readme.txt", b"hello")
    page = send(team, [("team3.zip", packed.getvalue())])
    assert page.status_code == 400 and "holds no notebook (*.ipynb) at its top or one folder down" in text(page)
    nothing_used(team)


def test_ipython_syntax_is_not_a_syntax_error(team: Team) -> None:
    """What IPython runs is accepted: magics, shell lines and their assignment, cell magics, help,
    top-level await, a prompt pasted from a console."""
    cells = ["%matplotlib inline\n!pip install --quiet numpy\nfiles = !ls\nimport os",
             "%%bash\necho 'not python at all' && ls -l",
             "os.path.join?",
             "import asyncio\nawait asyncio.sleep(0)",
             ">>> x = 1\n>>> print(x)",
             "%%capture\nprint('captured')"]
    assert send(team, [("toy.ipynb", notebook(cells))]).status_code == 303


def test_the_syntax_check_numbers_cells_as_the_scorecard_does() -> None:
    nb = nbformat.reads(notebook(["ok = 1", "x = (", "fine = 2"], markdown=True).decode(), as_version=4)
    found = precheck.syntax_problem(nb, name="n.ipynb")
    assert found is not None and found.startswith("n.ipynb: cell 4, line 1: ")
    nb.cells.insert(0, new_code_cell("injected", metadata={"tags": ["injected-parameters"]}))  # not the student's
    assert (precheck.syntax_problem(nb, name="n.ipynb") or "").startswith("n.ipynb: cell 4, line 1: ")


def test_every_starter_reference_solution_and_saved_notebook_passes() -> None:
    """No false refusal: the project's own notebooks, and notebooks saved as students save them
    (magics, ``!pip``, formats 3 and 4.0 to 4.5), pass; each starter names its own challenge."""
    starters = sorted((REPO / "challenges").glob("*/starter.ipynb"))
    saved = [REPO / "tests" / "assets" / f"notebook-{kind}" / "toy.ipynb"
             for kind in ("magics", "pip", "nbformat3", "4.0", "4.4", "4.5", "kernelspec", "stored-outputs")]
    assert starters and all(p.is_file() for p in saved)
    for path in [*starters, *sorted((REPO / "reference_solutions").glob("*/*.ipynb")), *saved]:
        found = precheck.check_notebook(path, name=path.name)
        assert (found.problem, found.syntax) == (None, None), path
    for path in starters:
        assert precheck.check_notebook(path, name=path.name).challenge == path.parent.name


# ---------------------------------------------------------------- the intake's diagnosis


def _conflict() -> bytes:
    ours = notebook(["x = 1"]).decode().splitlines()
    at = next(i for i, line in enumerate(ours) if '"x = 1"' in line)
    return "\n".join([*ours[:at], "<<<<<<< HEAD", ours[at], "=======", ours[at].replace("1", "2"),
                      ">>>>>>> theirs", *ours[at + 1:]]).encode()


def test_files_that_are_no_notebook_get_the_intakes_diagnosis_and_fix(team: Team) -> None:
    """The messages ``grader check`` gives (grader.intake.diagnosis), with the team's file name in them."""
    web_page = b"<!DOCTYPE html>\n<html><head><title>toy.ipynb at main</title></head><body>{}</body></html>\n"
    cases = {
        web_page: "toy.ipynb is not a notebook: this is a web page (HTML), not the notebook. Fix: On GitHub use "
                  "'Download raw file'",
        _conflict(): "toy.ipynb is not a notebook: the file holds git merge-conflict markers (`<<<<<<<` at line",
        notebook(["x = 1"])[:-40]: "toy.ipynb is not a notebook: the file was cut off (upload interrupted?)",
        b"import os\nprint(os.getcwd())\n": "toy.ipynb is not a notebook: this is a Python script, not a notebook",
        json.dumps({"paragraphs": []}).encode(): "this is an Apache Zeppelin note",
    }
    for data, message in cases.items():
        page = send(team, [("toy.ipynb", data)])
        assert page.status_code == 400 and message in text(page), (message, text(page)[-2000:])
    # a big one is diagnosed in a child process (bounded memory): the same words
    big = notebook(["x = 1", "# " + "padding " * 200_000])[:-40]
    assert len(big) > precheck.INLINE_BYTES
    page = send(team, [("toy.ipynb", big)])
    assert page.status_code == 400 and "the file was cut off (upload interrupted?)" in text(page)
    nothing_used(team)


def test_a_notebook_the_intake_reads_is_not_refused_for_its_encoding(team: Team) -> None:
    """UTF-16 with a byte order mark is a notebook to the workers' intake: accepted here too."""
    data = notebook(["print('é')"]).decode().encode("utf-16")
    assert send(team, [("toy.ipynb", data)]).status_code == 303


# ---------------------------------------------------------------- post/redirect/get


def test_a_browsers_refused_upload_lands_on_a_page_it_can_reload(team: Team) -> None:
    page = send(team, [("gear.ipynb", notebook(["print(1)"], challenge="toy"))], challenge="gear-cnn", browser=True)
    assert page.status_code == 303 and page.headers["location"] == "/"
    home = team.client.get("/", headers=BROWSER)
    assert home.status_code == 200
    shown = re.search(r'<div class="panel refused" role="alert" id="message">([^<]*)</div>', home.text)
    assert shown is not None and "but it was sent as gear-cnn" in shown.group(1)
    assert '<option value="gear-cnn" selected>' in home.text  # the challenge picked, kept
    again = team.client.get("/", headers=BROWSER)  # a reload: a GET, the message shown once
    assert again.status_code == 200 and 'role="alert"' not in again.text
    assert '<option value="toy" selected>' in again.text
    # refused before its body is read (its declared size), and the cap: a page too
    big = send(team, [("toy.ipynb", b" " * (9 << 20))], browser=True)
    assert big.status_code == 303 and big.headers["location"] == "/"
    assert "over the limit of 8.0 MB" in team.client.get("/").text
    nothing_used(team)
    for _ in range(3):
        assert send(team, [("toy.ipynb", notebook(["print(1)"]))], browser=True).status_code == 303
    capped = send(team, [("toy.ipynb", notebook(["print(2)"]))], browser=True)
    assert capped.status_code == 303
    after = text(team.client.get("/"))
    assert "alpha has used its 3 submissions for today (UTC)" in after
    assert "grader check --practice" not in after and "Practice check button on this page" in after
    # a form that expired (another CSRF token): a page too, for a browser
    stale = team.client.post("/submit", data={"challenge": "toy", "csrf": "old"}, headers=BROWSER,
                             files=[("files", ("toy.ipynb", notebook(["print(3)"])))], follow_redirects=False)
    assert stale.status_code == 303 and "This form did not come from this site" in text(team.client.get("/"))
    assert len(team.store.submissions("hack")) == 3


def test_other_clients_keep_the_refusals_status(team: Team) -> None:
    """curl and scripts (no ``text/html`` in Accept) get the status they act on, as before."""
    assert send(team, [("toy.ipynb", notebook(["print 1"]))]).status_code == 400
    stale = team.client.post("/submit", data={"challenge": "toy", "csrf": "old"},
                             files=[("files", ("toy.ipynb", notebook(["print(3)"])))], follow_redirects=False)
    assert stale.status_code == 403


def test_a_refusal_rides_the_flash_with_its_challenge() -> None:
    assert read_flash(refusal_flash("gear-cnn", "no")) == ("", "no", "gear-cnn")
    assert read_flash("Submission #3 (a.ipynb) is queued.") == ("Submission #3 (a.ipynb) is queued.", "", "")
    long = read_flash(refusal_flash("toy", "x" * 5000))[1]
    assert len(long) <= 900 and long.endswith("...")


def test_the_live_script_never_reloads_or_resends_a_form() -> None:
    script = APP_JS.read_text()
    assert "location.reload" not in script and ".submit(" not in script
    assert "location.replace(" in script  # the fallback: a GET of the page's own address
