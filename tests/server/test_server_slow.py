"""Slow clients (issue 25): a real ``grader serve`` on 127.0.0.1 with ``--header-timeout 1
--body-timeout 1`` closes a connection that sends half a header line, or nothing, after the
timeout; answers 408 to an upload whose body stalls or trickles (under 500 bytes a second); lets
a slow upload that keeps coming finish; and answers a team's pages meanwhile. Bounded: a handful
of sockets (and 50 for the connection limit), each read with a deadline."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from grader.core.settings import Settings
from grader.server.store.store import Store
from tests.support.net import free_port, stop_group, wait_listening

TIMEOUT_S = 1.0  # the server's header and body timeouts here
FIELDS = re.compile(r'name="(join_csrf|current)" value="([^"]*)"')


@dataclass
class Served:
    port: int
    log: Path
    token: str

    def browser(self) -> tuple[httpx.Client, str]:
        """A team's browser, signed in (the join page's button); and its page's csrf token."""
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        page = client.get(f"/join/{self.token}")
        assert client.post(f"/join/{self.token}", data=dict(FIELDS.findall(page.text))).status_code == 303
        found = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
        assert found is not None
        return client, found.group(1)


@pytest.fixture
def served(tmp_path: Path, make_toy: Callable[..., Settings]) -> Iterator[Served]:
    settings = make_toy()
    store = Store(tmp_path / "state")
    token = store.create_event("hack", challenges=["toy"], teams=["red", "blue"]).team_tokens["red"]
    store.close()
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "GRADER_PROJECT_DIR": str(settings.project_dir), "GRADER_DATA_DIR": str(settings.data_dir),
           "GRADER_CACHE_DIR": str(settings.cache_dir)}
    argv = [sys.executable, "-m", "grader", "serve", "--event", "hack", "--state", str(tmp_path / "state"),
            "--port", str(port), "--profile", "full", "--sandbox", "none", "--header-timeout", str(TIMEOUT_S),
            "--body-timeout", str(TIMEOUT_S), "--max-connections", "50"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_listening(proc, port, log)
        yield Served(port, log, token)
    finally:
        stop_group(proc)


def _open(port: int, first: bytes = b"") -> tuple[socket.socket, float]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if first:
        sock.sendall(first)
    return sock, time.monotonic()


def _until_closed(sock: socket.socket, deadline_s: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (at most ``deadline_s``)."""
    got = b""
    sock.settimeout(deadline_s)
    with sock:
        while chunk := sock.recv(65536):
            got += chunk
    return got


def test_half_a_header_line_or_nothing_is_closed_after_the_timeout_and_pages_still_answer(served: Served) -> None:
    half, t_half = _open(served.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag")
    silent, t_silent = _open(served.port)
    browser, _ = served.browser()
    with contextlib.closing(browser):
        while time.monotonic() - t_half < TIMEOUT_S * 1.5:  # the team's page answers while they hang
            assert browser.get("/").status_code == 200
        # a kept-alive connection whose next request stops half-way is timed from its first byte
        kept, _ = _open(served.port, b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = kept.recv(65536)
        assert first.startswith(b"HTTP/1.1 "), first
        kept.sendall(b"GET / HT")
        t_kept = time.monotonic()
        again = _until_closed(kept)
        assert time.monotonic() - t_kept >= TIMEOUT_S * 0.9 and again.startswith(b"HTTP/1.1 408 "), again
        answer = _until_closed(half)
        assert TIMEOUT_S * 0.9 <= time.monotonic() - t_half < 8
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        for header in (b"x-content-type-options: nosniff", b"x-frame-options: deny",
                       b"content-security-policy: default-src 'none'"):
            assert header in answer.lower(), answer
        assert _until_closed(silent) == b""  # never used: closed without a word
        assert TIMEOUT_S * 0.9 <= time.monotonic() - t_silent < 8
        assert browser.get("/").status_code == 200
        # --max-connections 50: 50 connections open, the next request is answered 503 ...
        crowd = [_open(served.port)[0] for _ in range(50)]
        time.sleep(0.3)  # accepted by the server (well within the header timeout)
        try:
            busy = browser.get("/", headers={"Connection": "close"})
            assert busy.status_code == 503 and busy.headers["x-content-type-options"] == "nosniff", busy.headers
            assert busy.headers["content-security-policy"] == "default-src 'none'"
        finally:
            for sock in crowd:
                sock.close()
        time.sleep(0.5)
        assert browser.get("/").status_code == 200  # ... and answered again once they close
    # a request h11 cannot parse: uvicorn's 400, with the security headers too
    bad, _ = _open(served.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n")
    refused = _until_closed(bad)
    assert refused.startswith(b"HTTP/1.1 400 "), refused
    assert b"x-content-type-options: nosniff" in refused.lower(), refused
    assert "closed connections of slow clients: " in served.log.read_text()


def test_serve_options_for_slow_clients_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import main
    from grader.server.web.guard import fit_open_files

    for option, value, told in (("--header-timeout", "0", "give more than 0"), ("--body-timeout", "x", "not a number"),
                                ("--max-connections", "0", "a whole number from 1")):
        with pytest.raises(SystemExit):
            main(["serve", "--event", "x", option, value])
        assert told in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--header-timeout SECONDS" in shown and "(default 10)" in shown and "(default 30)" in shown
    assert "--max-connections N" in shown and "(default 1000;" in shown
    assert fit_open_files(100) == 100


def _upload_request(browser: httpx.Client, csrf: str, port: int) -> tuple[bytes, bytes]:
    """A team's upload of a notebook as raw bytes: ``(head, body)``."""
    boundary = "b0undary"
    notebook = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}' + b" " * 20000
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"challenge\"\r\n\r\ntoy\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"toy.ipynb\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + notebook + f"\r\n--{boundary}--\r\n".encode()
    cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    head = (f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def test_a_stalled_upload_is_answered_408_and_one_that_keeps_coming_is_not(served: Served) -> None:
    browser, csrf = served.browser()
    with contextlib.closing(browser):
        head, body = _upload_request(browser, csrf, served.port)
        stalled, t_stalled = _open(served.port, head + body[:len(body) // 2])
        answer = _until_closed(stalled)
        assert TIMEOUT_S * 0.9 <= time.monotonic() - t_stalled < 8
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        for header in (b"x-content-type-options: nosniff", b"x-frame-options: deny",
                       b"content-security-policy: default-src 'none'"):
            assert header in answer.lower(), answer
        assert browser.get("/").status_code == 200  # the server goes on

        # a byte every 0.3 s: never idle for the timeout, but far under 500 bytes a second
        trickle, t_trickle = _open(served.port, head + body[:10])
        trickle.settimeout(0.3)
        answer = b""
        for i in range(20):
            try:
                answer = trickle.recv(65536)
                break
            except TimeoutError:
                trickle.sendall(body[10 + i:11 + i])
        trickle.close()
        assert TIMEOUT_S * 0.9 <= time.monotonic() - t_trickle < 4
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        for header in (b"x-content-type-options: nosniff", b"x-frame-options: deny",
                       b"content-security-policy: default-src 'none'"):
            assert header in answer.lower(), answer

        slow, t_slow = _open(served.port, head)
        pieces = [body[i:i + len(body) // 6 + 1] for i in range(0, len(body), len(body) // 6 + 1)]
        for piece in pieces:  # 6 pieces 0.4 s apart: longer than the timeout in all, never idle that long
            time.sleep(TIMEOUT_S * 0.4)
            slow.sendall(piece)
        assert time.monotonic() - t_slow > TIMEOUT_S * 2
        done = slow.recv(65536)
        slow.close()
        assert done.startswith(b"HTTP/1.1 303 "), done[:2000]
        assert "toy.ipynb" in browser.get("/").text  # listed on the team's page
        # curl's way with a large upload: the body only after the server's 100 Continue
        asking, _ = _open(served.port, head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1))
        assert asking.recv(65536).startswith(b"HTTP/1.1 100 ")
        asking.sendall(body)
        done = asking.recv(65536)
        asking.close()
        assert done.startswith(b"HTTP/1.1 303 "), done[:2000]
    text = served.log.read_text()
    assert "Traceback" not in text, text[-3000:]
