"""Where challenges, rubrics and reference solutions are found: a coach's project folder, and the
project shipped with the grader beside it.

A coach's project (``grader init DIR``) holds ``challenges/``, ``rubrics/`` and
``reference_solutions/`` as the shipped project does, and a marker file, ``grader-project.toml``::

    schema_version = 1
    include_shipped = true   # the shipped challenges are available beside the coach's own

:func:`project_roots` is the one resolver: the project's own folder first, then the shipped one
where its marker says ``include_shipped = true``. A challenge, a rubric or a reference solution
is taken from the first folder that holds it, so a coach's challenge with a shipped id shadows
the shipped one (:func:`shadowed_challenges`; ``grader validate`` says so). A folder without the
marker (``GRADER_PROJECT_DIR`` pointed at a copy of the shipped layout) is a project alone.

Which folder is the project is decided once, in :func:`grader.core.settings.resolve_settings`
(``--project`` > ``GRADER_PROJECT_DIR`` > the marker in the current folder or a parent, as git
finds ``.git`` > the shipped project).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from grader.core.errors import ConfigError

__all__ = [
    "PROJECT_FILE",
    "SHIPPED_PROJECT_DIR",
    "ProjectFile",
    "challenge_folder",
    "find_project",
    "project_file_text",
    "project_roots",
    "read_project_file",
    "reference_folder",
    "rubric_file",
    "shadowed_challenges",
]

PROJECT_FILE = "grader-project.toml"
# the checkout or install the grader runs from: its challenges/, rubrics/, reference_solutions/
SHIPPED_PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ProjectFile:
    """A coach's ``grader-project.toml`` (read without pydantic: ``grader --help`` stays light).

    Attributes:
        schema_version: 1.
        include_shipped: whether the shipped challenges (and their rubrics and references) are
            available beside the project's own.
    """

    schema_version: int = 1
    include_shipped: bool = True

    @classmethod
    def from_toml(cls, raw: dict[str, object]) -> ProjectFile:
        """Validate the file's table: ``schema_version = 1``, optional ``include_shipped`` (a boolean),
        no other key.

        Raises:
            ValueError: each problem, named.
        """
        problems = [f"unknown key {key!r}" for key in sorted(raw) if key not in ("schema_version", "include_shipped")]
        if raw.get("schema_version") != 1:
            problems.append(f"schema_version must be 1, not {raw.get('schema_version')!r}")
        shipped = raw.get("include_shipped", True)
        if not isinstance(shipped, bool):
            problems.append(f"include_shipped must be true or false, not {shipped!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(schema_version=1, include_shipped=bool(shipped))


def project_file_text(*, include_shipped: bool) -> str:
    """The text of a new ``grader-project.toml`` (``grader init``)."""
    return (
        "# A grader project: challenges/, rubrics/, reference_solutions/ beside this file.\n"
        "# grader finds it from this folder or any folder below it (or: --project DIR, GRADER_PROJECT_DIR).\n"
        "schema_version = 1\n"
        "# true: the challenges shipped with the grader are available beside this project's own\n"
        "# (a challenge here with a shipped id replaces the shipped one)\n"
        f"include_shipped = {'true' if include_shipped else 'false'}\n"
    )


@lru_cache(maxsize=64)
def _parse(path: Path, stamp: tuple[int, int]) -> ProjectFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read the project file: {err}", path=path,
                          fix="fix its TOML: it holds schema_version = 1 and include_shipped = true or false") from err
    try:
        return ProjectFile.from_toml(raw)
    except ValueError as err:
        raise ConfigError(f"invalid project file: {err}", path=path,
                          fix="it holds schema_version = 1 and include_shipped = true or false, nothing else") from err


def read_project_file(folder: Path) -> ProjectFile | None:
    """``folder``'s ``grader-project.toml``, or None where it has none (read once per change).

    Raises:
        ConfigError: the file is not valid TOML or holds unknown keys or bad values.
    """
    path = folder / PROJECT_FILE
    try:
        stat = path.stat()
    except OSError:
        return None
    return _parse(path, (stat.st_mtime_ns, stat.st_size))


def find_project(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards (``start`` itself first) that holds a
    ``grader-project.toml``, as git finds ``.git``; None where no folder up to the root does."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def project_roots(project_dir: Path) -> tuple[Path, ...]:
    """The folders challenges, rubrics and references are looked up in, in order: ``project_dir``,
    then :data:`SHIPPED_PROJECT_DIR` where ``project_dir``'s marker says ``include_shipped``.

    Raises:
        ConfigError: the project's ``grader-project.toml`` is invalid.
    """
    marker = read_project_file(project_dir)
    if marker is None or not marker.include_shipped or project_dir.resolve() == SHIPPED_PROJECT_DIR:
        return (project_dir,)
    return (project_dir, SHIPPED_PROJECT_DIR)


def challenge_folder(project_dir: Path, challenge_id: str) -> Path | None:
    """``challenges/<challenge_id>/`` in the first of :func:`project_roots` that holds its
    ``challenge.toml``; None where none does (or the id is not a plain folder name)."""
    if not challenge_id or "/" in challenge_id or challenge_id.startswith("."):
        return None
    for root in project_roots(project_dir):
        folder = root / "challenges" / challenge_id
        if (folder / "challenge.toml").is_file():
            return folder
    return None


def rubric_file(project_dir: Path, name: str) -> Path:
    """``rubrics/<name>.toml`` in the first of :func:`project_roots` that holds it; where none
    does, the path in ``project_dir`` (for the error that names it)."""
    for root in project_roots(project_dir):
        path = root / "rubrics" / f"{name}.toml"
        if path.is_file():
            return path
    return project_dir / "rubrics" / f"{name}.toml"


def reference_folder(project_dir: Path, challenge_id: str) -> Path:
    """``reference_solutions/<challenge_id>/`` of the project folder the challenge comes from
    (a shadowing challenge brings its own references); in ``project_dir`` for an unknown id."""
    folder = challenge_folder(project_dir, challenge_id)
    root = project_dir if folder is None else folder.parent.parent
    return root / "reference_solutions" / challenge_id


def shadowed_challenges(project_dir: Path) -> list[str]:
    """Ids of the project's own challenges that hide a shipped challenge of the same id, sorted;
    empty where the shipped challenges are not included."""
    roots = project_roots(project_dir)
    if len(roots) < 2:
        return []

    def ids(root: Path) -> set[str]:
        folder = root / "challenges"
        return {p.name for p in folder.iterdir() if (p / "challenge.toml").is_file()} if folder.is_dir() else set()

    return sorted(ids(roots[0]) & ids(roots[1]))
