"""Uploads on disk, content-addressed: ``uploads/<sha>`` (SHA-256 of the bytes; state folders
of earlier versions keep theirs under ``uploads/<sha[:2]>/<sha>``, read where they are).

Written the way a file survives a crash (the ``rename`` idiom of POSIX; see LWN, "Ensuring data
reaches disk", 2011): streamed into a temporary file in ``uploads/``, ``fsync``, ``os.replace``
into place, then ``fsync`` of the folder (:func:`sync_folder`). A file is either absent or
whole; an upload already stored is not written twice. One folder for every upload lets uploads
arriving together share that last ``fsync``: the event server's group commit makes it once per
batch, before the batch's database commit (``store_file(..., sync=False)``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from grader.core import UsageError

__all__ = ["CHUNK_BYTES", "UploadRefused", "refusal", "store_file", "sync_folder", "upload_path"]

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
    """Where the upload with hex digest ``sha256`` lives under ``root``: ``root/<sha>``, or
    ``root/<sha[:2]>/<sha>`` where an earlier version stored it there.

    Raises:
        ValueError: ``sha256`` is not 64 lower-case hex digits (nothing outside ``root``).
    """
    if not _SHA.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    flat, nested = root / sha256, root / sha256[:2] / sha256
    return nested if not flat.exists() and nested.is_file() else flat


def sync_folder(folder: Path) -> None:
    """``fsync`` the folder ``folder``: the files renamed into it survive a crash.

    Raises:
        UploadRefused: fsync(2) failed (EIO: the disk failed; ENOSPC).
    """
    try:
        _fsync_dir(folder)
    except OSError as err:
        raise refusal(err) from err


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_file(data: BinaryIO, root: Path, *, max_bytes: int, sync: bool = True) -> tuple[str, int]:
    """Stream ``data`` to its content address under ``root``; return ``(sha256, size)``.

    Args:
        data: a binary stream, read in chunks of :data:`CHUNK_BYTES` to its end.
        root: the uploads folder (exists).
        max_bytes: the largest size accepted, in bytes; reading stops just past it.
        sync: ``fsync`` the folder too before returning; False leaves it to the caller
            (:func:`sync_folder` of ``root``, once for the files stored together), which must make
            it before it counts the file as stored.

    Raises:
        UploadRefused: empty, over ``max_bytes``, or writing failed (disk full: ENOSPC, EDQUOT,
            or any other OSError); the temporary file is removed, nothing is left behind.
    """
    digest = hashlib.sha256()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=root)
    except OSError as err:  # no inode left, or the folder cannot be written
        raise refusal(err) from err
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
        if final.is_file() and final.stat().st_size == size:
            os.unlink(tmp)
        else:
            final = root / sha
            os.replace(tmp, final)
            if sync:
                _fsync_dir(root)
        return sha, size
    except OSError as err:
        _remove(tmp)
        raise refusal(err) from err
    except BaseException:
        _remove(tmp)
        raise


def refusal(err: OSError) -> UploadRefused:
    """The refusal of an upload that could not be written (``err``): disk full (ENOSPC, EDQUOT:
    :attr:`UploadRefused.disk_full`), or another failure, named by its ``strerror`` alone (never
    the path of the server's file)."""
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
