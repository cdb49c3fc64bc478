"""Uploads on disk, content-addressed: ``uploads/<sha[:2]>/<sha>`` (SHA-256 of the bytes).

Written the way a file survives a crash (the ``rename`` idiom of POSIX; see LWN, "Ensuring data
reaches disk", 2011): streamed into a temporary file in ``uploads/``, ``fsync``, ``os.replace``
into place, then ``fsync`` of the folder. A file is either absent or whole; an upload already
stored is not written twice.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from grader.errors import UsageError

__all__ = ["CHUNK_BYTES", "UploadRefused", "store_file", "upload_path"]

CHUNK_BYTES = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


class UploadRefused(UsageError):
    """An upload that is not stored: empty, too large, or the disk is full.

    Attributes:
        disk_full: the server's disk is full (ENOSPC or EDQUOT): the upload itself is fine (the
            pages answer 507 Insufficient Storage, RFC 4918, instead of 413).
    """

    def __init__(self, message: str, *, fix: str | None = None, disk_full: bool = False) -> None:
        super().__init__(message, fix=fix)
        self.disk_full = disk_full


def upload_path(root: Path, sha256: str) -> Path:
    """Where the upload with hex digest ``sha256`` lives under ``root``.

    Raises:
        ValueError: ``sha256`` is not 64 lower-case hex digits (nothing outside ``root``).
    """
    if not _SHA.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return root / sha256[:2] / sha256


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_file(data: BinaryIO, root: Path, *, max_bytes: int) -> tuple[str, int]:
    """Stream ``data`` to its content address under ``root``; return ``(sha256, size)``.

    Args:
        data: a binary stream, read in chunks of :data:`CHUNK_BYTES` to its end.
        root: the uploads folder (exists).
        max_bytes: the largest size accepted, in bytes; reading stops just past it.

    Raises:
        UploadRefused: empty, over ``max_bytes``, or writing failed (disk full: ENOSPC, EDQUOT,
            or any other OSError); the temporary file is removed, nothing is left behind.
    """
    digest = hashlib.sha256()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=root)
    except OSError as err:  # no inode left, or the folder cannot be written
        raise _refused(err) from err
    size = 0
    try:
        try:
            while chunk := data.read(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRefused(f"the upload is larger than the limit of {_mib(max_bytes)}",
                                        fix="leave data and model files out: upload the notebook and new_images/")
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            if size == 0:
                raise UploadRefused("the upload is empty", fix="choose the notebook (.ipynb) or a .zip of it")
            os.fsync(fd)
        finally:
            os.close(fd)
        sha = digest.hexdigest()
        final = upload_path(root, sha)
        if not final.parent.is_dir():
            final.parent.mkdir(mode=0o700, exist_ok=True)
            _fsync_dir(root)  # the new folder's entry survives a crash too
        if final.is_file() and final.stat().st_size == size:
            os.unlink(tmp)
        else:
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        return sha, size
    except OSError as err:
        _remove(tmp)
        raise _refused(err) from err
    except BaseException:
        _remove(tmp)
        raise


def _refused(err: OSError) -> UploadRefused:
    full = err.errno in (errno.ENOSPC, errno.EDQUOT)
    return UploadRefused("the server's disk is full: the upload was not stored" if full
                         else f"the upload could not be stored ({err.strerror or err})",
                         fix="try again later, or tell the coach", disk_full=full)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"
