"""Whether an uploaded file reads as a notebook, in bounded memory (standard library only: it also
runs as a script, ``python -I -S nbverdict.py PATH MEMORY_BYTES``, in a child process).

A notebook is checked at upload as nbformat lays it out at its top: a JSON object with a ``cells``
list (the last ``cells`` key, as :func:`json.loads` keeps it). Read with :func:`json.loads` and an
``object_pairs_hook`` that keeps no object (each becomes one shared marker), so a notebook of big
outputs costs about its own size; but arrays are built whole, and 60 MiB of ``[[],[],...]`` took
1,445 MiB to parse (``"ab",`` repeated: 867 MiB; measured with ``ru_maxrss``). Files above
:data:`INLINE_BYTES` are therefore read in a child process whose address space is limited
(``RLIMIT_AS``), at most :data:`CHILDREN` at once: whatever a file holds, the server's memory does
not grow with it. Nesting deeper than the parser's recursion limit is a verdict, never a crash.

Verdicts: ``ok``; ``json`` (not UTF-8 JSON; the parser's message follows a tab); ``cells`` (no list
of cells); ``deep`` (nested too deeply); ``memory`` (over the child's memory); ``unreadable`` (the
child failed or ran past :data:`CHILD_TIMEOUT_S`).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["CHILDREN", "CHILD_MEMORY_BYTES", "CHILD_TIMEOUT_S", "INLINE_AT_ONCE", "INLINE_BYTES", "verdict",
           "verdict_of_bytes"]

INLINE_BYTES = 1 << 20  # read in the server's process up to this size (at most ~25x it while parsing)
CHILD_MEMORY_BYTES = 1 << 30  # the child's address space
CHILD_TIMEOUT_S = 60.0
CHILDREN = 2  # children at once (each up to CHILD_MEMORY_BYTES)
INLINE_AT_ONCE = 4  # files read here at once (each up to ~25x INLINE_BYTES while parsing)
_children = threading.BoundedSemaphore(CHILDREN)
_inline = threading.BoundedSemaphore(INLINE_AT_ONCE)


class _Marker:
    __slots__ = ()


_CELLS, _OBJECT = _Marker(), _Marker()


def _pairs(pairs: list[tuple[str, Any]]) -> _Marker:
    cells = None
    for key, value in pairs:
        if key == "cells":
            cells = value
    return _CELLS if isinstance(cells, list) else _OBJECT


def verdict_of_bytes(data: bytes) -> tuple[str, str]:
    """The verdict on ``data`` (module docstring) and its detail (the JSON parser's message, or "")."""
    try:
        top = json.loads(data.decode("utf-8"), object_pairs_hook=_pairs)
    except RecursionError:
        return "deep", ""
    except MemoryError:
        return "memory", ""
    except (UnicodeDecodeError, ValueError) as err:
        return "json", str(err)
    return ("ok", "") if top is _CELLS else ("cells", "")


def verdict(path: Path | bytes) -> tuple[str, str]:
    """The verdict on the file ``path``, or on bytes held in memory (at most
    :data:`INLINE_BYTES`): read here up to :data:`INLINE_BYTES` (at most :data:`INLINE_AT_ONCE` at
    once: a parse takes up to about 25 times the bytes), else in a child process limited to
    :data:`CHILD_MEMORY_BYTES` (waiting for one of :data:`CHILDREN`).

    Raises:
        OSError: ``path`` cannot be read.
        ValueError: bytes over :data:`INLINE_BYTES`.
    """
    if isinstance(path, bytes):
        if len(path) > INLINE_BYTES:
            raise ValueError(f"{len(path)} bytes held in memory, over {INLINE_BYTES}: give the file")
        with _inline:
            return verdict_of_bytes(path)
    if path.stat().st_size <= INLINE_BYTES:
        with _inline:
            return verdict_of_bytes(path.read_bytes())
    with _children:
        try:
            done = subprocess.run([sys.executable, "-I", "-S", __file__, str(path), str(CHILD_MEMORY_BYTES)],
                                  capture_output=True, timeout=CHILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return "unreadable", ""
    kind, _, detail = done.stdout.decode("utf-8", "replace").strip().partition("\t")
    if done.returncode != 0 or kind not in ("ok", "json", "cells", "deep", "memory"):
        return ("memory", "") if b"MemoryError" in done.stderr else ("unreadable", "")
    return kind, detail


def _main(argv: list[str]) -> int:
    limit = int(argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        kind, detail = verdict_of_bytes(Path(argv[1]).read_bytes())
    except MemoryError:
        kind, detail = "memory", ""
    sys.stdout.write(f"{kind}\t{detail}\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
