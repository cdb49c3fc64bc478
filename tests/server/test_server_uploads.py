"""Uploads bounded in memory and disk, and error pages (issue 25), against the real app: through
Starlette's TestClient, and against a real uvicorn process (tests/support/appserver.py: the app alone, no
grading workers) where the attack needs one. Each attack of the issue, as measured on main before:
a chunked 300 MiB body spooled whole before its 413; uploads read whole into memory (six 60 MiB
uploads: +419 MiB RSS); a zip of 1,024 one-MiB entries writing 1 GB before its refusal; a team
named "AC/DC" failing every upload with a server path in its message; huge ids and a deeply
nested notebook answering 500 without the security headers. Only 127.0.0.1, bounded in count and
time."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.core.settings import Settings
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.server.store.store import Store
from grader.server.web import nbverdict, receive
from grader.server.web.app import create_app
from grader.server.web.headers import INTERNAL_ERROR, PAGE_CSP
from grader.server.web.options import AppOptions
from grader.server.web.receive import FORM_SLACK
from tests.support.appserver import AppServer, start
from tests.support.bombs import many_entry_bomb
from tests.support.toy import GOOD_TOY_CELLS, build_toy, write_submission

if TYPE_CHECKING:
    from starlette.testclient import TestClient

ODD_NAMES = ["AC/DC", "Ünïcode", "../x", "a team with spaces", "..", "C:\\teams\\x", "<b>&amp;</b>"]
MIB = 1 << 20


def notebook_bytes(marker: str = "") -> bytes:
    nb = new_notebook(cells=[new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
                             new_code_cell(f"print(1)  # {marker}")], metadata={"grader": {"challenge": "toy"}})
    return str(nbformat.writes(nb)).encode()


def secure(page: httpx.Response) -> None:
    """``page`` carries the security headers of every response."""
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert page.headers["cache-control"] == "no-store"


# ---------------------------------------------------------------- the app, through TestClient


@dataclass
class Event:
    store: Store
    settings: Settings
    client: TestClient
    tokens: dict[str, str]
    coach: str
    state: Path


def make_client(app: object) -> TestClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(app)  # type: ignore[arg-type]


@pytest.fixture
def event(tmp_path: Path) -> Iterator[Event]:
    settings = build_toy(tmp_path / "project")
    store = Store(tmp_path / "state")
    created = store.create_event("hack", challenges=["toy"], teams=[*ODD_NAMES, "alpha"])
    app = create_app(store, settings, workers=None, options=AppOptions(max_upload_bytes=50_000, join_delay_s=0.01))
    with make_client(app) as client:
        yield Event(store, settings, client, created.team_tokens, created.coach_token, tmp_path / "state")
    store.close()


def sign_in(client: TestClient | httpx.Client, link: str) -> str:
    """Open ``link``, press its button; the signed-in page's CSRF token."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', page.text))
    home = client.post(link, data=fields, follow_redirects=True)
    assert home.status_code == 200, home.text
    found = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert found is not None
    return found.group(1)


def team(ev: Event, name: str) -> tuple[TestClient, str]:
    client = make_client(ev.client.app)
    return client, sign_in(client, f"/join/{ev.tokens[name]}")


def upload(client: TestClient, csrf: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    answer: httpx.Response = client.post("/submit", data={"challenge": "toy", "csrf": csrf},
                                         files=[("files", f) for f in files], follow_redirects=False)
    return answer


def staged(state: Path) -> list[Path]:
    """What the uploads' staging folder holds (empty between uploads)."""
    return sorted((state / "uploads" / ".incoming").rglob("*"))


def test_team_names_of_any_text_upload_queue_and_see_their_page(event: Event) -> None:
    for name in ODD_NAMES:
        client, csrf = team(event, name)
        answer = upload(client, csrf, [("toy.ipynb", notebook_bytes(name))])
        assert answer.status_code == 303, (name, answer.text[-1500:])
        home = client.get("/")
        assert "is queued" in home.text and str(event.state) not in home.text
    assert sorted(s.team_name for s in event.store.submissions("hack")) == sorted(ODD_NAMES)
    assert staged(event.state) == []


@pytest.mark.kernel
def test_a_team_named_with_a_slash_is_graded_in_a_run_folder_of_a_safe_name(tmp_path: Path) -> None:
    """The run's folder was ``mkdtemp(prefix=f"grader-{name}-")``: "AC/DC" failed every upload of
    the team with the server's temporary path in its message."""
    settings = build_toy(tmp_path / "project")
    folder = write_submission(tmp_path / "subs", "acdc", GOOD_TOY_CELLS)
    for name in ("AC/DC", "../x", "Ünïcode " * 8):
        result = grade_submission(replace(discover(folder), name=name), settings, GradeOptions())
        text = result.model_dump_json()
        assert result.verdict == "pass", text[-2000:]
        assert tempfile.gettempdir() + "/grader-" not in text


def test_malformed_ids_are_404_with_the_security_headers(event: Event) -> None:
    client, _ = team(event, "alpha")
    coach = make_client(event.client.app)
    coach_csrf = sign_in(coach, f"/coach/join/{event.coach}")
    for bad in ("99999999999999999999999", str(2**31), str(2**63), "-1", "0", "1e3", "%00"):
        for path in (f"/submissions/{bad}/status", f"/submissions/{bad}/events", f"/submissions/{bad}/scorecard"):
            page = client.get(path)
            assert page.status_code == 404, (path, page.status_code)
            secure(page)
        page = coach.get(f"/coach/submissions/{bad}/scorecard")
        assert page.status_code == 404 and "No such" in page.text, (bad, page.status_code)
        secure(page)
        for action in ("cancel", "regrade"):
            page = coach.post(f"/coach/submissions/{bad}/{action}", data={"csrf": coach_csrf})
            assert page.status_code == 404, (bad, action, page.status_code)
            secure(page)


def test_an_unhandled_error_is_a_500_page_with_the_security_headers_and_a_logged_traceback(
        event: Event, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("a fault of the grader at /srv/secret/path")

    event.client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="grader.server.web.headers"):
        page = event.client.get("/boom")
    assert page.status_code == 500
    secure(page)
    assert INTERNAL_ERROR.split(" (")[0] in page.text
    assert "/srv/secret/path" not in page.text and "Traceback" not in page.text
    assert "Traceback" in caplog.text and "a fault of the grader at /srv/secret/path" in caplog.text
    assert "GET /boom: an error no handler took (answered 500)" in caplog.text


def test_notebooks_nested_deeply_or_unreadable_are_400_with_a_message(event: Event) -> None:
    client, csrf = team(event, "alpha")
    cases = {
        b'{"cells": ' + b"[" * 20_000 + b"]" * 20_000 + b"}": "its JSON is nested too deeply to read",
        b"[" * 45_000: "its JSON is nested too deeply to read",
        # parsed in bounded memory, then named by the intake's diagnosis (grader check's)
        b'{"cells": [], "x": "\xff\xfe"}': "not text (byte 20 is not UTF-8)",
        b'{"cells": {}}': "not a valid notebook: the field &#39;nbformat&#39; is missing",
        b'{"cells": [], "cells": 3}': "not a valid notebook: the field &#39;nbformat&#39; is missing",
    }
    for data, message in cases.items():
        page = upload(client, csrf, [("deep.ipynb", data)])
        assert page.status_code == 400 and f"deep.ipynb is not a notebook: {message}" in page.text, page.text[-800:]
        secure(page)
    assert event.store.submissions("hack") == [] and staged(event.state) == []


def test_a_large_notebook_is_read_in_a_child_whose_memory_is_bounded(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """60 MiB of ``[[],[],...]`` took 1,445 MiB to parse; above INLINE_BYTES the parse is a child's, its
    address space limited: a MemoryError there is a verdict, the server's memory untouched."""
    flat = tmp_path / "flat.ipynb"
    flat.write_bytes(b'{"cells": [' + b"[]," * (8 * MIB // 3) + b"[]]}")  # about 190 MiB to parse
    deep = tmp_path / "deep.ipynb"
    deep.write_bytes(b'{"cells": ' + b"[" * (MIB // 2 + 1) + b"]" * (MIB // 2 + 1) + b"}")
    good = tmp_path / "good.ipynb"
    good.write_bytes(json.dumps({"cells": [{"outputs": "A" * (3 * MIB)}]}).encode())
    assert min(p.stat().st_size for p in (flat, deep, good)) > nbverdict.INLINE_BYTES
    monkeypatch.setattr(nbverdict, "CHILD_MEMORY_BYTES", 128 * MIB)
    assert nbverdict.verdict(flat) == ("memory", "")
    assert nbverdict.verdict(deep) == ("deep", "")
    assert nbverdict.verdict(good) == ("ok", "")
    monkeypatch.setattr(nbverdict, "CHILD_MEMORY_BYTES", 1 << 30)
    assert nbverdict.verdict(flat) == ("ok", "")


def test_a_zip_bomb_upload_is_refused_from_its_directory_with_nothing_written(
        event: Event, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,024 entries of one MiB of zeros, 1.1 MiB zipped: it wrote 1 GB to the server's temporary
    folder before its refusal; now judged from its central directory, nothing unpacked anywhere."""
    temp = tmp_path / "system-temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    bomb = many_entry_bomb(tmp_path / "team.zip").read_bytes()
    app = create_app(event.store, event.settings, workers=None, options=AppOptions(join_delay_s=0.01))
    client = make_client(app)
    csrf = sign_in(client, f"/join/{event.tokens['alpha']}")
    page = upload(client, csrf, [("team.zip", bomb)])
    assert page.status_code == 400, page.text[-800:]
    assert re.search(r"team\.zip: it expands to 1\.0 GB from 1\.\d MB, more than 100 times \(a zip bomb\?\); the "
                     r"zip was not unpacked\. Fix: zip the team&#39;s own files", page.text), page.text[-800:]
    assert list(temp.rglob("*")) == [] and staged(event.state) == []
    assert sorted(p.name for p in (event.state / "uploads").iterdir()) == [".incoming"]
    assert event.store.submissions("hack") == []
    # no notebook, judged from the directory too
    many = many_entry_bomb(tmp_path / "photos.zip", entries=3, entry_bytes=100, notebook=b"{}").read_bytes()
    page = upload(client, csrf, [("photos.zip", many.replace(b"team/toy.ipynb", b"team/toy.ipynx"))])
    assert page.status_code == 400 and "photos.zip: it holds no notebook (.ipynb)" in page.text


def _chunked_form(csrf: str, parts: list[tuple[str, int]], *, chunk: int = MIB) -> Iterator[bytes]:
    """A multipart form streamed without a Content-Length: the CSRF token, the challenge, then each
    ``(filename, size)`` as ``size`` bytes of ``A`` in pieces of ``chunk``."""
    b = "b0undary"
    yield (f'--{b}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
           f'--{b}\r\nContent-Disposition: form-data; name="challenge"\r\n\r\ntoy\r\n').encode()
    block = b"A" * chunk
    for name, size in parts:
        yield f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
        for at in range(0, size, chunk):
            yield block[:min(chunk, size - at)]
        yield b"\r\n"
    yield f"--{b}--\r\n".encode()


FORM = {"content-type": "multipart/form-data; boundary=b0undary"}


def test_a_chunked_body_is_counted_as_it_arrives_and_refused_past_the_limit(event: Event) -> None:
    client, csrf = team(event, "alpha")
    page = client.post("/submit", content=_chunked_form(csrf, [("big.ipynb", 3 * MIB)], chunk=16_384), headers=FORM)
    assert page.status_code == 413 and "The upload is over the limit of 0.0 MB" in page.text
    secure(page)
    page = client.post("/submit", content=_chunked_form(csrf, [(f"{i}.png", 10) for i in range(202)]), headers=FORM)
    assert page.status_code == 400 and "The upload holds more than 200 files" in page.text
    page = client.post("/submit", content=b"csrf=x&" + b"a" * 100_000,
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert page.status_code == 413
    page = client.post("/submit", content=b"not a form", headers={"content-type": "text/plain"})
    assert page.status_code == 400 and "send it with the page&#39;s form" in page.text
    page = client.post("/submit", content=b"--b0undary\r\nContent-Disposition: form-data; name=\"files\"; "
                       b"filename=\"x.ipynb\"\r\n\r\n{}", headers=FORM)
    assert page.status_code == 400 and "could not be read" in page.text
    assert event.store.submissions("hack") == [] and staged(event.state) == []


@pytest.mark.parametrize("memory_bytes", [receive.MEMORY_BYTES, 100], ids=["in-memory", "on-disk"])
def test_a_notebook_with_its_images_is_bundled_in_memory_or_from_disk(event: Event, memory_bytes: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a form declared at most MEMORY_BYTES makes no file before it is stored (issue 28: each file made and
    # removed cost the server's interpreter); a larger one is staged on disk, bundled the same
    monkeypatch.setattr(receive, "MEMORY_BYTES", memory_bytes)
    folders: list[Path] = []
    workspace = receive.ReceivedForm.workspace

    def made(form: receive.ReceivedForm) -> Path:
        folders.append(workspace(form))
        return folders[-1]

    monkeypatch.setattr(receive.ReceivedForm, "workspace", made)
    client, csrf = team(event, "alpha")
    notebook = notebook_bytes()
    page = upload(client, csrf, [("toy.ipynb", notebook), ("a/../cat.png", b"\x89PNG fake"),
                                 ("dog.jpg", b"\xff\xd8 fake")])
    assert page.status_code == 303, page.text[-800:]
    (sub,) = event.store.submissions("hack")
    with zipfile.ZipFile(event.store.upload_path(sub.upload_sha256)) as archive:
        assert sorted(archive.namelist()) == ["new_images/cat.png", "new_images/dog.jpg", "toy.ipynb"]
        assert archive.read("toy.ipynb") == notebook
        assert archive.read("new_images/cat.png") == b"\x89PNG fake"
    assert (folders == []) == (memory_bytes > 100)
    assert staged(event.state) == []
    # the same checks either way: a syntax error, refused with its cell and line, nothing stored
    bad = nbformat.writes(new_notebook(cells=[new_code_cell("x = (1,")], metadata={"grader": {"challenge": "toy"}}))
    page = upload(client, csrf, [("bad.ipynb", bad.encode())])
    assert page.status_code == 400 and "bad.ipynb: cell 1, line 1" in page.text
    # a zip held in memory is written to the form's folder to be judged, then removed
    folders.clear()
    packed = tempfile.SpooledTemporaryFile()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("team/toy.ipynb", notebook)
    packed.seek(0)
    page = upload(client, csrf, [("team.zip", packed.read())])
    assert page.status_code == 303, page.text[-800:]
    assert len(set(folders)) == 1 and not folders[0].exists() and staged(event.state) == []
    assert len(event.store.submissions("hack")) == 2


# ---------------------------------------------------------------- a real server (uvicorn, its own process)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy(tmp_path_factory.mktemp("toy")).project_dir


@dataclass
class Served:
    server: AppServer
    state: Path
    tokens: dict[str, str]

    def store(self) -> Store:
        return Store(self.state)


@pytest.fixture
def serve(project: Path, tmp_path: Path) -> Iterator[object]:
    started: list[AppServer] = []

    def run(*, teams: int = 1, **options: int) -> Served:
        state = tmp_path / f"state{len(started)}"
        store = Store(state)
        names = [f"team{i}" for i in range(teams)]
        created = store.create_event("hack", challenges=["toy"], teams=names)
        store.close()
        server = start(state, project, tmp_path / f"server{len(started)}.log", **options)
        started.append(server)
        return Served(server, state, {n: created.team_tokens[n] for n in names})

    yield run
    for server in started:
        server.stop()


class Watch:
    """The most the staging folder held at once, sampled every 5 ms while inside."""

    def __init__(self, state: Path) -> None:
        self.folder = state / "uploads" / ".incoming"
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            held = 0
            for path in list(self.folder.rglob("*")):
                try:
                    held += path.stat().st_size if path.is_file() else 0
                except FileNotFoundError:
                    pass
            self.most = max(self.most, held)
            time.sleep(0.005)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_chunked_300_mib_body_is_refused_at_the_limit_with_nothing_kept(serve: object) -> None:
    """It was spooled whole (300 MiB on disk) before its 413. Now reading stops at the limit (64 MiB):
    the staging folder never holds more than that, and nothing once answered."""
    served = serve()  # type: ignore[operator]
    with httpx.Client(base_url=served.server.base, timeout=120) as client:
        csrf = sign_in(client, f"/join/{served.tokens['team0']}")
        before = served.server.status("VmRSS")
        with Watch(served.state) as watch:
            page = client.post("/submit", content=_chunked_form(csrf, [("big.ipynb", 300 * MIB)]), headers=FORM)
        assert page.status_code == 413 and "The upload is over the limit of 64.0 MB" in page.text
        secure(page)
        assert 0 < watch.most <= AppOptions.max_upload_bytes
        assert staged(served.state) == []
        assert served.server.status("VmHWM") - before < 32 * 1024  # KiB: nothing of the body held in memory
        # the connection still serves (uvicorn read what was left of the body and dropped it)
        assert client.get("/").status_code == 200


def test_a_client_waiting_for_100_continue_is_refused_at_once(serve: object) -> None:
    """curl sends ``Expect: 100-continue`` past 1 MiB and waits: a body over the limit is refused
    before a byte of it is sent (no 100 Continue), the connection closed."""
    import socket

    served = serve()  # type: ignore[operator]
    with httpx.Client(base_url=served.server.base, timeout=30) as client:
        csrf = sign_in(client, f"/join/{served.tokens['team0']}")
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=20) as sock:
        sock.sendall((f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
                      f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {300 * MIB}\r\n"
                      "Expect: 100-continue\r\n\r\n").encode())
        answer = b""
        while b"</html>" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 413"), head
    assert "connection: close" in head.lower() and b"The upload holds 300.0 MB, over the limit" in answer
    assert csrf


async def _stream(client: httpx.AsyncClient, csrf: str, size: int, marker: str, *,
                  hold: asyncio.Event | None = None) -> httpx.Response:
    """Upload a notebook of ``size`` bytes (a stream output of ``A``), sent in 1 MiB pieces
    without a Content-Length; after its first piece it waits for ``hold`` where given."""
    head = json.dumps({"cells": [{"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {},
                                  "source": f"# {marker}", "outputs": [{"output_type": "stream", "name": "stdout",
                                                                       "text": "@@"}]}],
                       "metadata": {"grader": {"challenge": "toy"}}, "nbformat": 4, "nbformat_minor": 5})
    before, after = (part.encode() for part in head.split("@@"))
    b = "b0undary"
    block = b"A" * MIB

    async def body() -> AsyncIterator[bytes]:
        yield (f'--{b}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
               f'--{b}\r\nContent-Disposition: form-data; name="challenge"\r\n\r\ntoy\r\n'
               f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="big.ipynb"\r\n\r\n').encode() + before
        if hold is not None:
            await hold.wait()
        left = size - len(before) - len(after)
        while left > 0:
            yield block[:min(MIB, left)]
            left -= MIB
        yield after + f"\r\n--{b}--\r\n".encode()

    return await client.post("/submit", content=body(), headers=FORM)


async def _signed_in(base: str, token: str) -> tuple[httpx.AsyncClient, str]:
    # idle connections dropped after 1 s: the server closes them after 5 s (uvicorn's keep-alive), and a
    # POST sent on one it has just closed fails in the client
    client = httpx.AsyncClient(base_url=base, timeout=300, limits=httpx.Limits(keepalive_expiry=1.0))
    page = await client.get(f"/join/{token}")
    fields = dict(re.findall(r'name="(join_csrf|current)" value="([^"]*)"', page.text))
    home = await client.post(f"/join/{token}", data=fields, follow_redirects=True)
    found = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert found is not None, home.text[-1000:]
    return client, found.group(1)


def test_uploads_beyond_max_uploads_are_503_with_retry_after(serve: object) -> None:
    served = serve(teams=3, max_uploads=2)  # type: ignore[operator]

    async def run() -> None:
        (a, ca), (b, cb), (c, cc) = [await _signed_in(served.server.base, t) for t in served.tokens.values()]
        hold = asyncio.Event()
        first = [asyncio.create_task(_stream(x, csrf, 2 * MIB, f"m{i}", hold=hold))
                 for i, (x, csrf) in enumerate(((a, ca), (b, cb)))]
        deadline = time.monotonic() + 20
        while len(staged(served.state)) < 4 and time.monotonic() < deadline:  # both forms and their files open
            await asyncio.sleep(0.05)
        # the refused one sends its body slowly: 6 s after its headers, past uvicorn's keep-alive timer (5 s),
        # which an answer sent before the body had come started, closing the connection under the client
        late = asyncio.Event()
        refused = asyncio.create_task(_stream(c, cc, 2 * MIB, "m2", hold=late))
        await asyncio.sleep(6)
        late.set()
        busy = await refused
        assert busy.status_code == 503 and busy.headers["retry-after"] == "10"
        assert "yours was not stored. Try again in 10 seconds" in busy.text
        secure(busy)
        hold.set()
        assert [(await t).status_code for t in first] == [303, 303]
        assert (await _stream(c, cc, 2 * MIB, "m2")).status_code == 303  # the slots were given back
        for x in (a, b, c):
            await x.aclose()

    asyncio.run(asyncio.wait_for(run(), 120))
    store = served.store()
    assert len(store.submissions("hack")) == 3
    store.close()
    assert staged(served.state) == []


def test_a_team_at_its_uploads_in_flight_is_429_while_other_teams_upload(serve: object) -> None:
    """One team's stalled uploads hold at most ``uploads_per_team`` (2) of the slots: its third is
    refused at once with 429 and Retry-After, another team's upload is stored meanwhile."""
    served = serve(teams=2)  # type: ignore[operator]
    mine, other = served.tokens.values()

    async def run() -> None:
        (a1, c1), (a2, c2), (a3, c3) = [await _signed_in(served.server.base, mine) for _ in range(3)]
        b, cb = await _signed_in(served.server.base, other)
        hold = asyncio.Event()
        stalled = [asyncio.create_task(_stream(x, csrf, 2 * MIB, f"s{i}", hold=hold))
                   for i, (x, csrf) in enumerate(((a1, c1), (a2, c2)))]
        deadline = time.monotonic() + 20
        while len(staged(served.state)) < 4 and time.monotonic() < deadline:  # both forms and their files open
            await asyncio.sleep(0.05)
        third = await _stream(a3, c3, 2 * MIB, "s2")
        assert third.status_code == 429 and third.headers["retry-after"] == "10", third.status_code
        assert "Your team is sending other uploads at this moment" in third.text
        secure(third)
        assert (await _stream(b, cb, 2 * MIB, "o0")).status_code == 303  # another team is not held up
        hold.set()
        assert [(await t).status_code for t in stalled] == [303, 303]
        assert (await _stream(a3, c3, 2 * MIB, "s2")).status_code == 303  # its slots were given back
        for x in (a1, a2, a3, b):
            await x.aclose()

    asyncio.run(asyncio.wait_for(run(), 120))
    store = served.store()
    assert len(store.submissions("hack")) == 4
    store.close()


UPLOADS = 20
UPLOAD_BYTES = 60 * MIB
RSS_BOUND_KIB = 100 * 1024
AT_ONCE = AppOptions.upload_bytes_in_flight // (AppOptions.max_upload_bytes + FORM_SLACK)  # 15 chunked uploads


def test_twenty_concurrent_60_mib_uploads_keep_the_servers_memory_bounded(serve: object) -> None:
    """20 streamed uploads of 60 MiB at once (1.2 GB) to a server taking 15 at a time (1 GiB in
    flight, each chunked upload counted at 65 MiB): its resident memory grows by less than 100 MiB
    (the old route read each upload whole: six took +419 MiB). The bound: per upload in flight at
    most FLUSH_BYTES (1 MiB) buffered, a 1 MiB chunk while it is stored, a few 64 KiB network
    buffers; a notebook over 1 MiB is read in a child process. 20 x ~2.2 MiB is 44 MiB; the rest is
    left to the allocator and the threads' stacks."""
    served = serve(teams=UPLOADS)  # type: ignore[operator]
    before = 0

    async def run() -> list[httpx.Response]:
        nonlocal before
        clients = [await _signed_in(served.server.base, t) for t in served.tokens.values()]
        before = served.server.status("VmRSS")  # its pages rendered once: their templates compiled
        try:
            return list(await asyncio.gather(*(_stream(x, csrf, UPLOAD_BYTES, f"m{i}")
                                               for i, (x, csrf) in enumerate(clients))))
        finally:
            for x, _ in clients:
                await x.aclose()

    answers = asyncio.run(asyncio.wait_for(run(), 400))
    grown = served.server.status("VmHWM") - before
    codes = [a.status_code for a in answers]
    assert set(codes) <= {303, 503} and codes.count(303) >= AT_ONCE, codes
    assert all(a.headers["retry-after"] == "10" for a in answers if a.status_code == 503)
    store = served.store()
    assert len(store.submissions("hack")) == codes.count(303)
    store.close()
    assert staged(served.state) == []
    assert grown < RSS_BOUND_KIB, f"the server's peak resident memory grew by {grown / 1024:.0f} MiB"
    print(f"{codes.count(303)} of {UPLOADS} uploads of 60 MiB stored, the others 503; peak RSS {before / 1024:.0f} MiB "
          f"-> {(before + grown) / 1024:.0f} MiB (+{grown / 1024:.0f} MiB)")


def test_a_grader_error_names_no_server_path_to_the_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A team named "AC/DC" saw ``[Errno 2] No such file or directory: '/tmp/grader-AC/DC-…'`` on its page;
    an internal error's text now keeps its kind and words, never a path of the server."""
    import io

    from grader.server.work.child import GradingProcess
    from grader.server.work.worker import WorkerPool

    settings = build_toy(tmp_path / "project")
    store = Store(tmp_path / "state")
    store.create_event("hack", challenges=["toy"], teams=["AC/DC"])
    (acdc,) = store.teams("hack")

    def grade(*_: object, **__: object) -> object:
        raise FileNotFoundError(2, "No such file or directory", f"/tmp/grader-AC/DC-x/{tmp_path}/work")

    monkeypatch.setattr(GradingProcess, "grade", grade)
    upload = store.store_upload(io.BytesIO(notebook_bytes()), filename="toy.ipynb", max_bytes=MIB)
    sub = store.submit("hack", acdc.id, challenge="toy", upload=upload)
    pool = WorkerPool(store, settings, GradeOptions(), workers=1, lease_s=5, poll_s=0.05)
    pool.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and store.submission(sub.id).state != "failed":  # type: ignore[union-attr]
        time.sleep(0.05)
    pool.stop()
    error = store.submission(sub.id).error  # type: ignore[union-attr]
    store.close()
    assert error == ("internal error of the grader (FileNotFoundError: [Errno 2] No such file or directory: "
                     "'<a server path>'); the server's log has its traceback")
