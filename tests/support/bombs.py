"""Zip bombs for the tests, written fast: one MiB of zeros deflated once and its bytes reused for
every entry (the layout of PKWARE's APPNOTE.TXT 4.3: local headers with their data, the central
directory, its end record), so a zip of 1,024 one-MiB entries takes milliseconds, not the seconds
that :mod:`zipfile` spends deflating a GB."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def many_entry_bomb(path: Path, *, entries: int = 1024, entry_bytes: int = 1 << 20,
                    notebook: bytes = b'{"cells": []}') -> Path:
    """Write ``path``: ``team/toy.ipynb`` (``notebook``, stored) and ``entries`` entries of
    ``entry_bytes`` zeros each (deflated), a valid zip that :mod:`zipfile` reads; return ``path``."""
    zeros = bytes(entry_bytes)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = packer.compress(zeros) + packer.flush()
    files = [("team/toy.ipynb", 0, notebook, len(notebook), zlib.crc32(notebook))]
    crc = zlib.crc32(zeros)
    files += [(f"team/data/{i}.bin", 8, deflated, entry_bytes, crc) for i in range(entries)]
    local, central = bytearray(), bytearray()
    for name, method, data, size, check in files:
        raw = name.encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, check, len(data), size,
                             len(raw), 0) + raw + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, check, len(data), size,
                               len(raw), 0, 0, 0, 0, 0o100644 << 16, offset) + raw
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(files), len(files), len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path
