"""The server's state folder: where the database, the uploads and the intake workspaces live.

Layout::

    <state>/grader.db                  SQLite database (WAL), unless a database URL is given
    <state>/grader.db.open-lock        held while a server opens and migrates that database
    <state>/uploads/<sha>              uploads, content-addressed (SHA-256 of their bytes)
    <state>/work/                      intake workspaces of running jobs (unpacked zips)

Resolved once: ``--state DIR``, else ``$GRADER_STATE_DIR``, else ``$XDG_DATA_HOME/grader``, else
``~/.local/share/grader`` (the XDG Base Directory Specification's default data folder).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from grader.core import STATE_DIR_ENV, ConfigError, default_state_dir

__all__ = ["ensure_state_dir", "resolve_state_dir"]


def resolve_state_dir(state: str | os.PathLike[str] | None = None, *,
                      environ: dict[str, str] | None = None) -> Path:
    """The state folder: ``state`` if given, else :func:`grader.core.settings.default_state_dir`
    (``$GRADER_STATE_DIR``, else ``$XDG_DATA_HOME/grader``, else ``~/.local/share/grader``);
    absolute, not created."""
    if state:
        return Path(state).expanduser().resolve()
    return default_state_dir(environ)


def ensure_state_dir(state_dir: Path) -> Path:
    """Create ``state_dir`` with its ``uploads/`` and ``work/`` folders (mode 0700: uploads are
    the teams' work and the database holds the session secrets); return it.

    Raises:
        ConfigError: the folder cannot be created or written (with the path and the fix).
    """
    try:
        for folder in (state_dir, state_dir / "uploads", state_dir / "work"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a name of its own: servers starting at once on one folder do not remove each other's probe
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"the state folder cannot be used: {err.strerror or err}", path=state_dir,
                          fix=f"pass --state DIR (or set {STATE_DIR_ENV}) to a folder this user can write") from err
    return state_dir
