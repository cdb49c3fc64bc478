"""``grader init DIR``: a coach's own project folder, for challenges on the coach's own data.

It holds ``challenges/`` (with ``challenges/splits/``), ``rubrics/`` and ``reference_solutions/``
as the shipped project does, a short ``README.md`` and the marker file ``grader-project.toml``
(:mod:`grader.core.project`), by which the grader finds the project from that folder or any folder
below it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.core import (
    PROJECT_DIR_ENV,
    PROJECT_FILE,
    ExitStatus,
    UsageError,
    project_file_text,
    read_project_file,
    write_atomic,
)

__all__ = ["FOLDERS", "add_parser", "cmd_init", "init_project", "project_readme"]

FOLDERS = ("challenges", "challenges/splits", "rubrics", "reference_solutions")

_HOW_FOUND = (f"The grader finds this project (precedence from first to last): `grader --project DIR ...`, "
              f"then the environment variable `{PROJECT_DIR_ENV}=DIR`, then `{PROJECT_FILE}` in the current "
              "folder or a parent (as git finds `.git`), else the challenges shipped with the grader.")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init`` to the ``grader`` parser's commands."""
    init = sub.add_parser(
        "init", help="make a project folder for your own challenges",
        description="Make DIR a grader project: challenges/ (and challenges/splits/), rubrics/, "
        f"reference_solutions/, a README.md saying how to use it, and {PROJECT_FILE}, the marker by which the "
        f"grader finds the project. {_HOW_FOUND.replace('`', '')} With include_shipped = true in {PROJECT_FILE} "
        "(the default) the shipped challenges are available beside your own, and a challenge of yours with a "
        "shipped id replaces the shipped one. DIR must be new, empty, or already a project (then only what is "
        "missing is made).")
    init.add_argument("dir", metavar="DIR", help="the project folder (made if it does not exist)")
    init.add_argument("--no-shipped", action="store_true",
                      help=f"only this project's challenges, not the shipped ones (include_shipped = false in "
                      f"{PROJECT_FILE})")


def project_readme(name: str, *, include_shipped: bool) -> str:
    """The ``README.md`` of a new project folder called ``name``."""
    shipped = ("The challenges shipped with the grader are available too (`include_shipped = true` in "
               f"`{PROJECT_FILE}`); one of yours with a shipped id replaces it." if include_shipped else
               f"Only this project's challenges are available (`include_shipped = false` in `{PROJECT_FILE}`).")
    return f"""# {name}: a grader project

Your own challenges: `challenges/<id>/` (the brief `README.md`, `challenge.toml`, `starter.ipynb`),
`challenges/splits/` (the recorded hidden, public and practice splits), `rubrics/<id>.toml` and
`reference_solutions/<id>/*.ipynb`. {shipped}

{_HOW_FOUND}

From this folder, with `GRADER_DATA_DIR` pointing at the folder that holds your datasets:

```bash
grader new-challenge ID --data DIR      # a challenge from your photos: spec, rubric, brief, splits
grader validate --challenge ID          # check its spec, rubric, splits, starter and references
grader verify-references --challenge ID # its reference passes the rubric, its starter fails it
grader check team3/ --out out           # grade a team's submission: out/team3/scorecard.html
grader event create NAME --challenge ID --teams teams.csv
grader serve --event NAME               # the event: teams upload, see scorecards and the leaderboard
```

`grader challenges` lists what is available; `grader --help` and `grader COMMAND --help` say more.
"""


def init_project(folder: Path, *, include_shipped: bool) -> tuple[bool, list[Path]]:
    """Make ``folder`` a grader project, or fill in what an existing project lacks.

    Args:
        folder: the project folder; made where it does not exist.
        include_shipped: the marker's ``include_shipped`` for a new project (an existing
            project's marker is left as it is).

    Returns:
        Whether ``folder`` was a project already, and the folders and files made, in order.

    Raises:
        UsageError: ``folder`` is a file, or a folder that is not empty and not a project.
        ConfigError: an existing project's ``grader-project.toml`` is invalid.
    """
    if folder.exists() and not folder.is_dir():
        raise UsageError("is a file, not a folder", path=folder, fix="name a new or empty folder: grader init DIR")
    existing = folder.is_dir() and read_project_file(folder) is not None
    if folder.is_dir() and not existing and any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty and is not a grader project (it has no {PROJECT_FILE})",
                         path=folder, fix=f"name a new or empty folder (grader init {folder / 'grader-project'}), "
                         f"or write {PROJECT_FILE} there yourself (schema_version = 1) to make it one")
    made: list[Path] = []
    for name in FOLDERS:
        path = folder / name
        if not path.is_dir():
            path.mkdir(parents=True)
            made.append(path)
    marker = folder / PROJECT_FILE
    if not existing:
        write_atomic(marker, project_file_text(include_shipped=include_shipped))
        made.append(marker)
    readme = folder / "README.md"
    if not readme.exists():
        marked = read_project_file(folder)
        shipped = include_shipped if marked is None else marked.include_shipped
        write_atomic(readme, project_readme(folder.resolve().name, include_shipped=shipped))
        made.append(readme)
    return existing, made


def cmd_init(args: argparse.Namespace) -> int:
    """``grader init DIR [--no-shipped]``: :func:`init_project`, then what was made and what to do next."""
    folder = Path(args.dir)
    existing, made = init_project(folder, include_shipped=not args.no_shipped)
    marker = read_project_file(folder)
    assert marker is not None
    if existing:
        print(f"{folder} is already a grader project (include_shipped = {str(marker.include_shipped).lower()}"
              f" in {folder / PROJECT_FILE}; edit it to change that)")
        if args.no_shipped and marker.include_shipped:
            print(f"grader: warning: --no-shipped left {folder / PROJECT_FILE} as it was: "
                  "set include_shipped = false there")
    for path in made:
        print(f"made {path}{'/' if path.is_dir() else ''}")
    shipped = "beside the shipped challenges" if marker.include_shipped else "alone (no shipped challenges)"
    print(f"your challenges go in {folder / 'challenges'}, {shipped}; from inside {folder} the grader finds "
          f"this project by its {PROJECT_FILE} (elsewhere: grader --project {folder} ... or "
          f"{PROJECT_DIR_ENV}={folder}); next: grader new-challenge ID --data DIR (see {folder / 'README.md'})")
    return ExitStatus.PASSED
