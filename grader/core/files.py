"""Files the grader writes: whole or not at all, under names any file system takes.

:func:`write_atomic` writes through a temporary file in the same folder and :func:`os.replace`
(atomic on POSIX within one file system: a reader sees the old file or the new one, never a
part); :func:`safe_name` turns a submission's name into a folder name.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

__all__ = ["safe_name", "write_atomic"]


def safe_name(name: str) -> str:
    """A file-system-safe folder name for a submission: runs of characters other than ASCII
    letters, digits, ``.``, ``_`` and ``-`` become ``_``; leading and trailing dots and
    underscores go; ``submission`` if nothing is left."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "submission"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and a
    rename, creating the folder if needed.

    Raises:
        OSError: the folder cannot be created or written (the temporary file is then left
            behind only if the rename itself failed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
