"""Unpack a zip a team handed in, safely, with the standard library's :mod:`zipfile`.

Refused, each with a message that names the zip and the fix: entries with an absolute path or
``..`` (path traversal, "zip slip"), symbolic links and other non-regular files (the Unix mode in
the high 16 bits of ``external_attr``), encrypted entries, more than :attr:`ZipLimits.max_files`
entries, more than :attr:`ZipLimits.max_bytes` uncompressed in all, and entries that expand more
than :attr:`ZipLimits.max_ratio` times their compressed size (zip bombs). Sizes are checked from
the central directory first, then counted while streaming, whatever the headers declared
(:class:`zipfile.ZipExtFile` also stops at the declared size and checks the CRC). Files are
created new (``open(..., "xb")``), never through a link, with the entries' times kept.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

__all__ = ["ZipLimits", "size_text", "unpack"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """What a zip may hold: ``max_files`` entries, ``max_bytes`` uncompressed in all (bytes),
    ``max_ratio`` uncompressed to compressed size for any entry above ``ratio_floor`` bytes."""

    max_files: int = 10_000
    max_bytes: int = 2 << 30
    max_ratio: float = 100.0
    ratio_floor: int = 1 << 20


def size_text(n: int) -> str:
    """``n`` bytes for a person: ``5.1 GB`` (GiB) from 1 GiB on, else ``65.0 MB`` (MiB)."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def _refuse(path: Path, what: str, fix: str) -> str:
    return f"{path.name}: {what}; the zip was not unpacked. Fix: {fix}"


def unpack(path: Path, dest: Path, *, limits: ZipLimits,
           skip: Callable[[tuple[str, ...]], str | None]) -> tuple[str | None, list[str]]:
    """Unpack the zip ``path`` into the folder ``dest``, refusing what is unsafe (module docstring).

    Args:
        path: the zip.
        dest: an existing, empty, private folder; on a refusal it may hold part of the zip.
        limits: what the zip may hold.
        skip: for an entry's path parts, why it is left out (``"__MACOSX/ (macOS zip metadata)"``),
            or None to unpack it. Skipped entries are still checked for safety.

    Returns:
        the refusal message, naming the zip and the fix (None when unpacked), and the reasons
        ``skip`` gave, each once. Never raises for a damaged or hostile zip.
    """
    rezip = "zip the team's folder itself, from inside its parent folder (`zip -r team3.zip team3`)"
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_files:
                return _refuse(path, f"it holds {len(infos)} entries, over the limit of "
                               f"{limits.max_files}", "leave datasets and generated files out"), []
            declared = sum(i.file_size for i in infos)
            if declared > limits.max_bytes:
                return _refuse(path, f"it expands to {size_text(declared)}, over the limit of "
                               f"{size_text(limits.max_bytes)}", "leave datasets and checkpoints out; "
                               "the grader gives the data in DATA_DIR"), []
            ignored, total = [], 0
            for info in infos:
                name = info.filename.replace("\\", "/")
                parts = PurePosixPath(name).parts
                kind = stat.S_IFMT(info.external_attr >> 16)
                if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                    return _refuse(path, f"entry {info.filename!r} points outside the zip's folder "
                                   "(an absolute path or '..')", rezip), []
                if kind == stat.S_IFLNK:
                    return _refuse(path, f"entry {info.filename!r} is a symbolic link",
                                   "zip the files themselves, not links to them (`zip -r`, without -y)"), []
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    return _refuse(path, f"entry {info.filename!r} is not a regular file", rezip), []
                if info.flag_bits & 0x1:
                    return _refuse(path, f"entry {info.filename!r} is encrypted", "zip it without a password"), []
                reason = skip(parts)
                if reason is not None:
                    if reason not in ignored:
                        ignored.append(reason)
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir() or kind == stat.S_IFDIR:
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
