"""An upload form received as its body arrives, its limits counted as bytes come, its files on disk.

Starlette's ``request.form()`` reads the whole body before a route sees it (each file spooled to
a temporary file, in memory up to 1 MiB) and counts nothing: a 300 MiB chunked body was spooled
whole before its 413. Here python-multipart's streaming parser (``multipart.MultipartParser``,
the parser Starlette itself drives) is fed each piece of ``request.stream()`` as it arrives:

- every byte of the body is counted, with or without a Content-Length (chunked), and the files'
  bytes apart; past ``max_bytes`` of files, or ``max_bytes + FORM_SLACK`` of body, reading stops
  (:class:`TooLarge`) and the part written so far is removed: nothing past the limit is kept;
- a form whose body is declared (``Content-Length``) at most :data:`MEMORY_BYTES` is held in
  memory: no file is made for it until the upload is stored (a file made and removed costs the
  server's one interpreter as much as the rest of a small upload's handling together; issue 28,
  ``benchmarks/server.py``); the form's files go to disk only where a check needs a path
  (:meth:`ReceivedForm.path_of`: a zip);
- otherwise each file part is written to its own file in a private folder (``mkdtemp`` in
  ``folder``), named by its place in the form, never by the name the browser sent; writes go
  through a buffer of :data:`FLUSH_BYTES` written in a worker thread, so an upload holds at most
  that in memory and the event loop never waits on the disk;
- fields (the CSRF token, the challenge) are kept in memory up to :data:`FIELD_BYTES` each,
  part headers up to :data:`HEADER_BYTES`, at most ``max_files`` files and ``max_fields`` fields.

A refusal is a :class:`FormRefused` (its HTTP status and the message for the team); the folder,
where one was made, and what it holds are removed by :meth:`ReceivedForm.close`, which the caller
must call.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import python_multipart
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["DRAIN_S", "FIELD_BYTES", "FLUSH_BYTES", "FORM_SLACK", "MEMORY_BYTES", "FormRefused", "ReceivedForm",
           "Slots", "StagedFile", "TooLarge", "clear_stale", "drain", "receive_form"]

FLUSH_BYTES = 1 << 20  # a file part's bytes buffered before they are written
MEMORY_BYTES = 1 << 20  # a form whose body is declared at most this is held in memory (no more than FLUSH_BYTES)
FIELD_BYTES = 4096  # a text field's most bytes (a CSRF token, a challenge id)
HEADER_BYTES = 16384  # a part's headers' most bytes
FORM_SLACK = 1 << 20  # the body's bytes allowed beyond the files' limit: boundaries, part headers, fields
STALE_S = 3600  # a staging folder left this long by a server that died is removed at the next start
DRAIN_S = 30.0  # how long the rest of a refused upload's body is read and dropped before the answer


class FormRefused(Exception):
    """The form is refused: ``status`` (400, 413) and ``message``, for the team."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TooLarge(FormRefused):
    """The body passed the limit; ``received``: the bytes read before reading stopped."""

    def __init__(self, received: int) -> None:
        super().__init__(413, "over the limit")
        self.received = received


@dataclass(frozen=True)
class StagedFile:
    """One file of the form: the name the browser sent, its size in bytes, and its bytes: held in
    memory (``data``) or in a file of the form's folder (``path``)."""

    filename: str
    size: int
    path: Path | None = None
    data: bytes | None = None


@dataclass
class ReceivedForm:
    """A received form: its text fields (the last value of each name), its files in order (empty
    file fields, sent by a browser when none was chosen, left out) and the private folder made for
    them in ``parent`` (None while nothing of it is on disk).

    Not safe for two threads at once: one upload's form is handled by one thread at a time.
    """

    parent: Path
    fields: dict[str, str] = field(default_factory=dict)
    files: list[StagedFile] = field(default_factory=list)
    folder: Path | None = None

    def workspace(self) -> Path:
        """The form's private folder (``mkdtemp`` in ``parent``), made on the first call.

        Raises:
            OSError: it cannot be made (ENOSPC).
        """
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="form-", dir=self.parent))
        return self.folder

    def path_of(self, index: int) -> Path:
        """File ``index`` of :attr:`files` on disk: a file held in memory is written to the
        workspace first (named by its place, as :func:`receive_form` names them), and kept there.

        Raises:
            OSError: it cannot be written (ENOSPC).
        """
        staged = self.files[index]
        if staged.path is not None:
            return staged.path
        path = self.workspace() / str(index + 1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(staged.data or b"")
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        self.files[index] = replace(staged, path=path, data=None)
        return path

    def close(self) -> None:
        """Remove the folder, where one was made, and every file in it."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class Slots:
    """Uploads in flight, bounded in count (``size``), in the bytes they may hold together
    (``budget``) and per team (``per_team``, so that one team's stalled uploads cannot hold every
    slot): :meth:`take` a slot for an upload of up to ``nbytes`` or be refused at once (the route
    answers 503, or 429 for a team at its own limit, with Retry-After), :meth:`give` it back when
    done. Used from the event loop only (no lock: nothing awaits between the test and the count).

    Raises:
        ValueError: ``size``, ``budget`` or ``per_team`` is below 1.
    """

    def __init__(self, size: int, budget: int, *, per_team: int = 2) -> None:
        if size < 1 or budget < 1 or per_team < 1:
            raise ValueError(f"uploads in flight: at least 1, 1 byte and 1 per team, not {size}, {budget} "
                             f"and {per_team}")
        self.size, self.budget, self.per_team = size, budget, per_team
        self.used = 0
        self.held = 0
        self.teams: dict[int, int] = {}

    def team_full(self, team: int) -> bool:
        """Whether ``team`` has ``per_team`` uploads in flight already."""
        return self.teams.get(team, 0) >= self.per_team

    def take(self, nbytes: int, team: int) -> bool:
        """Take a slot holding ``nbytes`` for ``team``; False when all ``size`` are taken, ``nbytes``
        does not fit the budget left (one upload alone always fits) or the team is at its limit."""
        if self.used >= self.size or (self.used and self.held + nbytes > self.budget) or self.team_full(team):
            return False
        self.used += 1
        self.held += nbytes
        self.teams[team] = self.teams.get(team, 0) + 1
        return True

    def give(self, nbytes: int, team: int) -> None:
        """Give back a slot taken for ``nbytes`` by ``team``."""
        self.used -= 1
        self.held -= nbytes
        left = self.teams.pop(team) - 1
        if left:
            self.teams[team] = left


async def drain(request: Request, *, within_s: float = DRAIN_S) -> bool:
    """Read what is left of ``request``'s body and drop it (nothing kept), for at most ``within_s``
    seconds; True when the body ended (or the client left), False when time ran out: answer it
    with ``Connection: close`` then.

    Why: a client (httpx, most browsers) reads the answer only once it has sent its body. Answered
    early, uvicorn reads and drops the rest itself, but starts its keep-alive timer (5 s) with the
    answer and closes the connection under a client still sending: 84 of 100 uploads refused with
    503 saw a connection reset instead. nginx likewise reads on before closing (``lingering_time``
    30 s).
    """
    try:
        with anyio.move_on_after(within_s):
            async for _ in request.stream():  # goes on where an earlier read stopped
                pass
            return True
    except RuntimeError:  # Starlette's "Stream consumed": the body had ended already
        return True
    except ClientDisconnect:
        return True
    return False


def clear_stale(folder: Path, *, older_s: float = STALE_S) -> None:
    """Remove the staging folders under ``folder`` not modified for ``older_s`` seconds (left by a
    server killed mid-upload; several servers may share ``folder``, so recent ones are kept)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for child in folder.iterdir():
            with contextlib.suppress(OSError):
                if now - child.lstat().st_mtime > older_s:
                    shutil.rmtree(child, ignore_errors=True)


class _Parts:
    """python-multipart's callbacks: fields kept, file bytes queued for writing, limits counted."""

    def __init__(self, form: ReceivedForm, *, max_bytes: int, max_files: int, max_fields: int, charset: str,
                 memory: bool) -> None:
        self.form = form
        self.memory = memory  # the files' bytes held in memory (the form's folder made only on disk)
        self.max_bytes, self.max_files, self.max_fields, self.charset = max_bytes, max_files, max_fields, charset
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.header_bytes = 0
        self.disposition = b""
        self.name = ""
        self.filename: str | None = None
        self.data = bytearray()
        self.fd: int | None = None
        self.held: bytearray | None = None  # the file part being received, in memory
        self.size = 0
        self.file_bytes = 0
        self.files = 0
        self.fields = 0
        self.writes: list[tuple[int, bytes | None]] = []  # (fd, bytes) to write; (fd, None): close it
        self.pending = 0

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self.part_begin, "on_part_data": self.part_data, "on_part_end": self.part_end,
                "on_header_field": self.header_field, "on_header_value": self.header_val,
                "on_header_end": self.header_end, "on_headers_finished": self.headers_finished}

    def part_begin(self) -> None:
        self.disposition, self.filename, self.fd, self.held, self.size, self.header_bytes = b"", None, None, None, 0, 0
        self.data.clear()

    def _header_bytes(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > HEADER_BYTES:
            raise FormRefused(400, "The upload could not be read: a part's headers are too long.")

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(end - start)
        self.header_name += data[start:end]

    def header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes(end - start)
        self.header_value += data[start:end]

    def header_end(self) -> None:
        if bytes(self.header_name).lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_name.clear()
        self.header_value.clear()

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode(self.charset)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise FormRefused(400, "The upload could not be read: a part has no name (Content-Disposition).")
        self.name = self._text(options[b"name"])
        if b"filename" not in options:
            self.fields += 1
            if self.fields > self.max_fields:
                raise FormRefused(400, f"The upload could not be read: more than {self.max_fields} fields.")
            return
        self.filename = self._text(options[b"filename"])
        if self.filename:  # an empty file field (no file chosen) is left out
            self.files += 1
            if self.files > self.max_files:
                raise FormRefused(400, f"The upload holds more than {self.max_files} files. Fix: hand in the "
                                       "notebook and at most a few new images.")
            if self.memory:
                self.held = bytearray()
                self.form.files.append(StagedFile(filename=self.filename, size=0, data=b""))
                return
            path = self.form.workspace() / str(self.files)
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.form.files.append(StagedFile(filename=self.filename, size=0, path=path))

    def part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self.filename is None:
            if len(self.data) + n > FIELD_BYTES:
                raise FormRefused(400, f"The upload could not be read: field {self.name[:40]!r} is too long.")
            self.data += data[start:end]
            return
        if self.fd is None and self.held is None:
            return  # an empty file field that came with bytes: left out
        self.file_bytes += n
        self.size += n
        if self.file_bytes > self.max_bytes:
            raise TooLarge(self.file_bytes)
        if self.held is not None:
            self.held += data[start:end]
            return
        assert self.fd is not None
        self.writes.append((self.fd, data[start:end]))
        self.pending += n

    def part_end(self) -> None:
        if self.filename is None:
            self.form.fields[self.name] = self._text(bytes(self.data))
        elif self.held is not None:
            self.form.files[-1] = StagedFile(filename=self.filename, size=self.size, data=bytes(self.held))
            self.held = None
        elif self.fd is not None:
            self.form.files[-1] = replace(self.form.files[-1], size=self.size)
            self.writes.append((self.fd, None))
            self.pending = FLUSH_BYTES  # closed now: its last bytes are written with the next flush
            self.fd = None

    def flush(self) -> None:
        """Write (and close) what is queued; run in a worker thread."""
        writes, self.writes, self.pending = self.writes, [], 0
        for fd, chunk in writes:
            if chunk is None:
                os.close(fd)
                continue
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

    def receiving(self) -> bool:
        """Whether the body stopped inside a file part."""
        return self.fd is not None or self.held is not None

    def abandon(self) -> None:
        """Close what is open, nothing more written."""
        self.held = None
        for fd in {fd for fd, _ in self.writes} | ({self.fd} if self.fd is not None else set()):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.writes, self.fd = [], None


async def receive_form(request: Request, *, folder: Path, max_bytes: int, max_files: int,
                       max_fields: int) -> ReceivedForm:
    """Read ``request``'s multipart/form-data body as it arrives (module docstring): held in memory
    where its ``Content-Length`` is at most :data:`MEMORY_BYTES`, else streamed to disk.

    Args:
        request: the request, its body not read yet.
        folder: where the form's private folder is made when one is needed (exists; on the disk
            of the uploads).
        max_bytes: the most the form's files may hold together, in bytes; the body may hold
            :data:`FORM_SLACK` more.
        max_files: the most non-empty file parts.
        max_fields: the most text fields.

    Returns:
        the form; the caller calls :meth:`ReceivedForm.close` when done with its files.

    Raises:
        TooLarge: the files or the body passed their limit (reading stopped there).
        FormRefused: 400, not a multipart form, malformed, or over a count or length above.
        starlette.requests.ClientDisconnect: the client went away mid-body.
        OSError: the folder or a file could not be written (ENOSPC: the disk is full).
        In every case the form's folder is removed before the error leaves.
    """
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind == b"application/x-www-form-urlencoded":  # fields alone (no file): read whole, bounded
        return await _fields_only(request, folder=folder, max_fields=max_fields)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise FormRefused(400, "The upload could not be read: send it with the page's form (multipart/form-data).")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    length = request.headers.get("content-length", "")
    # h11 reads a body of exactly its Content-Length: a form held in memory holds at most MEMORY_BYTES
    most = int(length) if length.isdigit() and int(length) <= MEMORY_BYTES else None
    form = ReceivedForm(parent=folder)
    parts = _Parts(form, max_bytes=max_bytes, max_files=max_files, max_fields=max_fields, charset=charset,
                   memory=most is not None)
    parser = python_multipart.MultipartParser(params[b"boundary"], parts.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + FORM_SLACK:
                raise TooLarge(received)
            if most is not None and received > most:
                raise FormRefused(400, "The upload could not be read: its body is longer than its Content-Length.")
            parser.write(chunk)
            if parts.pending >= FLUSH_BYTES:
                await anyio.to_thread.run_sync(parts.flush)
        parser.finalize()
        if parts.writes:
            await anyio.to_thread.run_sync(parts.flush)
    except FormParserError as err:
        parts.abandon()
        form.close()
        raise FormRefused(400, "The upload could not be read: it is not a well-formed multipart form.") from err
    except BaseException:
        parts.abandon()
        form.close()
        raise
    if parts.receiving():  # the body ended inside a file part
        parts.abandon()
        form.close()
        raise FormRefused(400, "The upload could not be read: the form ended in the middle of a file.")
    return form


async def _fields_only(request: Request, *, folder: Path, max_fields: int) -> ReceivedForm:
    body, most = bytearray(), FIELD_BYTES * max_fields
    async for chunk in request.stream():
        body += chunk
        if len(body) > most:
            raise TooLarge(len(body))
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), max_num_fields=max_fields)
    except ValueError as err:
        raise FormRefused(400, f"The upload could not be read: more than {max_fields} fields.") from err
    return ReceivedForm(parent=folder, fields=dict(pairs))
