"""Unpack a zip a team handed in, safely, with the standard library's :mod:`zipfile`.

A zip is first judged from its central directory alone (:func:`judge`), before anything is
written: the entry count (read from the end-of-central-directory record before :mod:`zipfile`
parses the directory, so a zip of a million tiny entries costs nothing), the uncompressed size
in all, how many times it expands, the path rules, and a notebook present. Refused, each with a
message that names the zip, the rule and the fix: more than :attr:`ZipLimits.max_files` entries,
more than :attr:`ZipLimits.max_bytes` uncompressed in all, entries with an absolute path or
``..`` (path traversal, "zip slip"), symbolic links and other non-regular files (the Unix mode in
the high 16 bits of ``external_attr``), encrypted entries, an entry or the whole zip expanding
more than :attr:`ZipLimits.max_ratio` times its compressed size above
:attr:`ZipLimits.ratio_floor` bytes (zip bombs: 1,024 entries of one MiB of zeros each, 1.1 MiB
zipped, are refused as a whole), and no notebook (``.ipynb``) among the entries kept. Then
:func:`unpack` counts the sizes again while streaming, whatever the headers declared
(:class:`zipfile.ZipExtFile` also stops at the declared size and checks the CRC). Files are
created new (``open(..., "xb")``), never through a link, with the entries' times kept.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

__all__ = ["ZipLimits", "judge", "size_text", "unpack"]

_CHUNK = 1 << 20
_EOCD = struct.Struct("<4s4H2LH")  # APPNOTE.TXT 4.3.16: the end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # 4.3.15
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 4.3.14
_ENTRY_BYTES = 1024  # the central directory may hold this much per entry allowed (names, extras)
_REZIP = "zip the team's folder itself, from inside its parent folder (`zip -r team3.zip team3`)"
Skip = Callable[[tuple[str, ...]], str | None]


@dataclass(frozen=True)
class ZipLimits:
    """What a zip may hold: ``max_files`` entries, ``max_bytes`` uncompressed in all (bytes),
    ``max_ratio`` uncompressed to compressed size for any entry, and for the whole zip, above
    ``ratio_floor`` bytes."""

    max_files: int = 10_000
    max_bytes: int = 2 << 30
    max_ratio: float = 100.0
    ratio_floor: int = 1 << 20


def size_text(n: int) -> str:
    """``n`` bytes for a person: ``5.1 GB`` (GiB) from 1 GiB on, else ``65.0 MB`` (MiB)."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def _refuse(path: Path | str, what: str, fix: str) -> str:
    return f"{path if isinstance(path, str) else path.name}: {what}; the zip was not unpacked. Fix: {fix}"


def _directory(path: Path) -> tuple[int, int] | None:
    """The entry count and the central directory's size in bytes, from the end-of-central-directory
    record (ZIP64's where the record says so; PKWARE's APPNOTE.TXT 4.3.14-16), or None when no
    record is found (:mod:`zipfile` then says why the zip is unreadable)."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        start = max(0, size - _EOCD.size - 0xFFFF)  # the record, then a comment of up to 64 KiB
        fh.seek(start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD.size:
            return None
        _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
        if at >= _EOCD64_LOCATOR.size:
            sig, _, record, _ = _EOCD64_LOCATOR.unpack_from(tail, at - _EOCD64_LOCATOR.size)
            if sig == b"PK\x06\x07" and 0 <= record <= size - _EOCD64.size:
                fh.seek(record)
                found = fh.read(_EOCD64.size)
                if found[:4] == b"PK\x06\x06":
                    fields = _EOCD64.unpack(found)
                    entries, cd_size = fields[7], fields[8]
        return entries, cd_size


def judge(path: Path, *, limits: ZipLimits, skip: Skip, name: str | None = None) -> str | None:
    """Why the zip ``path`` must not be unpacked, judged from its central directory alone (the
    module's docstring lists the rules, checked in that order), or None; nothing is written.

    Args:
        path: the zip.
        limits: what the zip may hold.
        skip: for an entry's path parts, why it is left out, or None (:func:`unpack`); skipped
            entries are still checked for safety, but a skipped notebook is no notebook.
        name: the zip's name in the message (default: its file name).

    Returns:
        the refusal message, naming the zip, the rule and the fix. Never raises for a damaged or
        hostile zip (an unreadable one is refused so).
    """
    shown = name if name is not None else path.name
    try:
        facts = _directory(path)
        if facts is not None:
            entries, cd_size = facts
            if entries > limits.max_files or cd_size > (limits.max_files + 1) * _ENTRY_BYTES:
                what = (f"{entries} entries, over the limit of {limits.max_files}" if entries > limits.max_files
                        else f"a central directory of {size_text(cd_size)}, over the limit for "
                             f"{limits.max_files} entries")
                return _refuse(shown, f"it holds {what}", "leave datasets and generated files out")
        with zipfile.ZipFile(path) as archive:
            return _judged(shown, archive.infolist(), limits, skip)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as err:
        return _refuse(shown, f"it is not a readable zip ({err})", "zip the team's folder again")
    except OSError as err:
        return _refuse(shown, f"reading it failed: {err.strerror or err}", "zip the team's folder again")


def _judged(shown: str, infos: list[zipfile.ZipInfo], limits: ZipLimits, skip: Skip) -> str | None:
    if len(infos) > limits.max_files:
        return _refuse(shown, f"it holds {len(infos)} entries, over the limit of {limits.max_files}",
                       "leave datasets and generated files out")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_bytes:
        return _refuse(shown, f"it expands to {size_text(declared)}, over the limit of {size_text(limits.max_bytes)}",
                       "leave datasets and checkpoints out; the grader gives the data in DATA_DIR")
    notebook = False
    for info in infos:
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        kind = stat.S_IFMT(info.external_attr >> 16)
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            return _refuse(shown, f"entry {info.filename!r} points outside the zip's folder "
                           "(an absolute path or '..')", _REZIP)
        if kind == stat.S_IFLNK:
            return _refuse(shown, f"entry {info.filename!r} is a symbolic link",
                           "zip the files themselves, not links to them (`zip -r`, without -y)")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            return _refuse(shown, f"entry {info.filename!r} is not a regular file", _REZIP)
        if info.flag_bits & 0x1:
            return _refuse(shown, f"entry {info.filename!r} is encrypted", "zip it without a password")
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            return _refuse(shown, f"entry {info.filename!r} expands more than {limits.max_ratio:g} times "
                           "(a zip bomb?)", "zip the team's own files; leave generated data out")
        notebook = notebook or (name.lower().endswith(".ipynb") and not info.is_dir() and skip(parts) is None)
    packed = sum(i.compress_size for i in infos)
    if declared > limits.ratio_floor and declared > limits.max_ratio * max(packed, 1):
        return _refuse(shown, f"it expands to {size_text(declared)} from {size_text(packed)}, more than "
                       f"{limits.max_ratio:g} times (a zip bomb?)",
                       "zip the team's own files; leave generated data out")
    if not notebook:
        return _refuse(shown, "it holds no notebook (.ipynb)",
                       "zip the team's folder with its notebook in it")
    return None


def unpack(path: Path, dest: Path, *, limits: ZipLimits, skip: Skip) -> tuple[str | None, list[str]]:
    """Unpack the zip ``path`` into the folder ``dest``, refusing what is unsafe (module docstring):
    judged first (:func:`judge`: nothing is written for a refused zip), then unpacked with its
    sizes counted again.

    Args:
        path: the zip.
        dest: an existing, empty, private folder; on a refusal while streaming (a zip whose
            entries expand beyond what its directory declared) it may hold part of the zip.
        limits: what the zip may hold.
        skip: for an entry's path parts, why it is left out (``"__MACOSX/ (macOS zip metadata)"``),
            or None to unpack it. Skipped entries are still checked for safety.

    Returns:
        the refusal message, naming the zip and the fix (None when unpacked), and the reasons
        ``skip`` gave, each once. Never raises for a damaged or hostile zip.
    """
    refused = judge(path, limits=limits, skip=skip)
    if refused is not None:
        return refused, []
    try:
        with zipfile.ZipFile(path) as archive:
            ignored, total = [], 0
            for info in archive.infolist():
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                reason = skip(parts)
                if reason is not None:
                    if reason not in ignored:
                        ignored.append(reason)
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir() or stat.S_IFMT(info.external_attr >> 16) == stat.S_IFDIR:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with archive.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size or total > limits.max_bytes:
                            return _refuse(path, f"entry {info.filename!r} expands beyond its declared "
                                           f"size or the limit of {size_text(limits.max_bytes)}",
                                           "zip the team's folder again"), []
                        if (written > limits.ratio_floor
                                and written > limits.max_ratio * max(info.compress_size, 1)):
                            return _refuse(path, f"entry {info.filename!r} expands more than "
                                           f"{limits.max_ratio:g} times (a zip bomb?)",
                                           "zip the team's own files; leave generated data out"), []
                        out.write(chunk)
                try:  # the entry's time, for "the newest notebook" (a DOS date can be invalid)
                    stamp = datetime(*info.date_time).timestamp()
                    os.utime(target, (stamp, stamp))
                except (ValueError, OSError, OverflowError):
                    pass
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as err:
        return _refuse(path, f"it is not a readable zip ({err})", "zip the team's folder again"), []
    except OSError as err:
        return _refuse(path, f"unpacking it failed: {err.strerror or err}", "zip the team's folder again"), []
    return None, ignored
