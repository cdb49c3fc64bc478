"""Intake: turn what a coach receives into submissions, each team isolated from the others.

Forms accepted (:func:`intake` for the command line, :func:`intake_upload` for one upload):

- a folder: one team; every file under it is the team's (notebooks at its top, or, when there
  are none there, one folder down: ``team3/code/gear.ipynb``);
- a notebook file: one team named after the file's stem; its working copy holds that notebook
  alone, plus the ``new_images/`` folder beside it only when no other notebook sits beside it
  (an LMS export of bare notebooks in one folder shares nothing between teams);
- a ``.zip`` of one team or of a cohort. Single folders without notebooks at the zip's top are
  looked through first (``export/``); then the zip is ONE team when that level is inside a single
  top folder and holds notebooks (a zipped team folder, ``team3/gear.ipynb``), or holds a
  ``new_images/`` folder, or exactly one notebook, or no notebook and at most one folder with
  notebooks. It is a COHORT otherwise, as LMS exports are laid out (several notebooks at the
  zip's top, or several folders holding notebooks): one team per top-level notebook (that
  notebook alone) and one per top-level folder with notebooks; other top-level files belong to
  no team. :func:`intake_upload` always makes one team.

Ignored, and listed in :attr:`Submission.ignored` with why: ``.ipynb_checkpoints/``,
``__MACOSX/``, ``._*`` AppleDouble files, ``__pycache__/``, ``.git/``, symbolic links and other
non-regular files, and empty ``Untitled*.ipynb`` scratch notebooks (no code cell with non-blank
source). Two notebooks of one team for the same challenge (``metadata.grader.challenge``, else a
challenge id in the file name, or ``--challenge``): one is graded, the others listed as ignored.
The one graded is not named like a scratch or a copy (``Untitled*``, ``*-Copy1``, ``* copy``,
``* (1)``) where one such exists, then the most recently modified, then the first by path. A
notebook that names no challenge, in a team whose other notebook names one, is not graded (a
stray scratch notebook must not fail the team) and is listed as ignored.

Zips are unpacked by :func:`grader.intake.unzip.unpack` into a private folder under the caller's
workspace, refusing traversal, links, encryption and zip bombs. A refusal, an empty folder or a
file that is no submission is the team's failure: a :class:`Submission` with
:attr:`~Submission.problems`, graded to a failing scorecard. Only a path that does not exist
is the coach's mistake (:class:`~grader.core.errors.UsageError`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.core import UsageError
from grader.intake.unzip import ZipLimits, judge, unpack

__all__ = ["DEFAULT_LIMITS", "NEW_IMAGES", "Submission", "discover", "intake", "intake_upload", "zip_problem"]

log = logging.getLogger(__name__)

NEW_IMAGES = "new_images"
_IGNORED_DIRS = {".ipynb_checkpoints": "Jupyter's checkpoint copies", "__MACOSX": "macOS zip metadata",
                 "__pycache__": "Python bytecode", ".git": "version-control history"}
_SCRATCH = re.compile(r"^untitled|[-_ ]copy\d*$|\(\d+\)$", re.IGNORECASE)  # of a notebook's stem
_UNTITLED = re.compile(r"^untitled.*\.ipynb$", re.IGNORECASE)
_MAX_LISTED = 50
DEFAULT_LIMITS = ZipLimits()


@dataclass(frozen=True)
class Submission:
    """One team's submission, isolated: it holds exactly the files listed.

    Attributes:
        name: the team's name (its folder, zip or notebook stem).
        root: the folder the team's files are relative to (for a zip, its unpacked copy).
        notebooks: the notebooks to grade, absolute (``root / …``).
        files: every file of the team, POSIX paths relative to ``root``; the working copy holds
            these and nothing else.
        new_images: the team's ``new_images/`` folder, or None.
        ignored: files and folders left out, each ``"path (why)"``.
        problems: why nothing (or not everything) can be graded, e.g. an empty folder.
        source: what the coach gave (folder, notebook or zip), for the scorecard.
    """

    name: str
    root: Path
    notebooks: tuple[Path, ...] = ()
    files: tuple[str, ...] = ()
    new_images: Path | None = None
    ignored: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    source: Path | None = None


@dataclass
class _Walk:
    files: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def intake(paths: Sequence[Path], *, workspace: Path, challenges: Sequence[str] = (),
           explicit: str | None = None, limits: ZipLimits = DEFAULT_LIMITS) -> list[Submission]:
    """Turn the paths a coach passes into submissions, one per team, in order.

    Args:
        paths: folders, notebook files and zips (see the module docstring for the rules).
        workspace: an existing folder the caller owns and removes; zips are unpacked under it.
        challenges: the known challenge ids (to tell a notebook's challenge from its name).
        explicit: the challenge every notebook is for (``--challenge``), if given.
        limits: what a zip may hold.

    Raises:
        UsageError: a path does not exist (checked for all before anything is unpacked).
    """
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file or folder: {path}", path=path,
                             fix="check the path; pass team folders, notebooks or zips")
    out: list[Submission] = []
    for path in paths:  # the coach's own paths are followed if they are links; a team's never
        if path.is_dir():
            out.append(_team(path.resolve(), name=path.resolve().name, source=path, known=challenges,
                             explicit=explicit))
        elif path.suffix.lower() == ".ipynb":
            out.append(_bare(path))
        elif path.suffix.lower() == ".zip":
            out += _zip(path, workspace, limits, cohort=True, known=challenges, explicit=explicit)
        else:
            out.append(_not_a_submission(path))
    return out


def intake_upload(path: Path, *, workspace: Path, name: str | None = None,
                  challenges: Sequence[str] = (), explicit: str | None = None,
                  limits: ZipLimits = DEFAULT_LIMITS) -> Submission:
    """One team's upload (a zip, a notebook, or a folder with a notebook and ``new_images/``):
    always one submission, named ``name`` or after the upload.

    Raises:
        UsageError: ``path`` does not exist.
    """
    if not path.exists():
        raise UsageError(f"no such file or folder: {path}", path=path)
    if path.suffix.lower() == ".zip" and path.is_file():
        found = _zip(path, workspace, limits, cohort=False, known=challenges, explicit=explicit)[0]
    elif path.is_dir():
        found = _team(path.resolve(), name=path.resolve().name, source=path, known=challenges,
                      explicit=explicit)
    elif path.suffix.lower() == ".ipynb":
        found = _bare(path)
    else:
        found = _not_a_submission(path)
    return found if name is None else replace(found, name=name)


def discover(path: Path) -> Submission:
    """A submission folder or a single notebook file, without zips (no workspace needed).

    Raises:
        UsageError: the path does not exist, or is a zip (use :func:`intake`).
    """
    if path.suffix.lower() == ".zip":
        raise UsageError("a zip needs a workspace to be unpacked into: use grader.intake.submissions.intake", path=path)
    return intake([path], workspace=path.parent)[0]


# ---------------------------------------------------------------- folders and notebooks


def _walk(root: Path) -> _Walk:
    """Every regular file under ``root`` (relative POSIX paths, sorted), ignored ones apart."""
    found = _Walk()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        keep = []
        for d in sorted(dirnames):
            if d in _IGNORED_DIRS:
                found.ignored.append(f"{prefix}{d}/ ({_IGNORED_DIRS[d]})")
            elif (here / d).is_symlink():
                found.ignored.append(f"{prefix}{d} (a symbolic link; put the folder itself)")
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{prefix}{name}"
            try:
                mode = (here / name).lstat().st_mode
            except OSError:  # gone since listed
                continue
            if name.startswith("._"):
                found.ignored.append(f"{rel} (macOS AppleDouble metadata)")
            elif stat.S_ISLNK(mode):
                found.ignored.append(f"{rel} (a symbolic link; put the file itself)")
            elif not stat.S_ISREG(mode):
                found.ignored.append(f"{rel} (not a regular file)")
            elif _UNTITLED.match(name) and _is_empty(here / name):
                found.ignored.append(f"{rel} (an empty scratch notebook: no code)")
            else:
                found.files.append(rel)
    return found


def _read(path: Path) -> dict[str, object] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):  # nested too deeply: not readable here
        return None
    return raw if isinstance(raw, dict) else None


def _is_empty(path: Path) -> bool:
    """A notebook with no code cell of non-blank source (unreadable: not empty)."""
    raw = _read(path)
    cells = raw.get("cells") if raw else None
    if not isinstance(cells, list):
        return False
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            if text.strip():
                return False
    return True


def _challenge(path: Path, known: Sequence[str], explicit: str | None) -> str | None:
    """The challenge a notebook names (see :func:`grader.intake.notebook.challenge_of`), or None."""
    if explicit:
        return explicit
    raw = _read(path)
    meta = raw.get("metadata") if raw else None
    grader = meta.get("grader") if isinstance(meta, dict) else None
    value = grader.get("challenge") if isinstance(grader, dict) else None
    if isinstance(value, str) and value:
        return value
    stem = path.stem.lower().replace("_", "-")
    matches = [c for c in known if c in stem]
    longest = [c for c in matches if not any(c != o and c in o for o in matches)]
    return longest[0] if len(longest) == 1 else None


def _one_per_challenge(root: Path, notebooks: list[str], known: Sequence[str],
                       explicit: str | None) -> tuple[list[str], list[str]]:
    """The notebooks to grade and the ignored ones: one per challenge (module docstring)."""
    groups: dict[str, list[str]] = {}
    for rel in notebooks:
        cid = _challenge(root / rel, known, explicit)
        groups.setdefault(cid or f"\0{rel}", []).append(rel)
    keep, ignored, named = [], [], []
    for cid, rels in groups.items():
        def rank(rel: str) -> tuple[bool, float, str]:
            path = root / rel
            try:
                mtime = path.stat().st_mtime
            except OSError:
                mtime = 0.0
            return (bool(_SCRATCH.search(path.stem)), -mtime, rel)
        best, *rest = sorted(rels, key=rank)
        keep.append(best)
        if not cid.startswith("\0"):
            named.append(best)
        ignored += [f"{rel} (another notebook for challenge {cid}; graded: {best}, the newest not "
                    "named Untitled or a copy)" for rel in rest]
    named.sort()
    if named:  # a stray scratch notebook does not fail a team whose notebook names its challenge
        stray = [rel for rel in keep if rel not in named and groups.get(f"\0{rel}") == [rel]]
        keep = [rel for rel in keep if rel not in stray]
        ignored += [f"{rel} (names no challenge, while {', '.join(named[:3])} does: not graded; name its "
                    "challenge in its metadata or file name to have it graded)" for rel in stray]
    return sorted(keep), ignored


def _notebooks(files: Sequence[str]) -> list[str]:
    """Notebooks at the top, else one folder down."""
    top = [f for f in files if "/" not in f and f.endswith(".ipynb")]
    return top or [f for f in files if f.count("/") == 1 and f.endswith(".ipynb")]


def _listed(items: Sequence[str]) -> tuple[str, ...]:
    extra = len(items) - _MAX_LISTED
    return tuple(items[:_MAX_LISTED]) + ((f"... and {extra} more",) if extra > 0 else ())


def _team(root: Path, *, name: str, source: Path, known: Sequence[str], explicit: str | None,
          ignored: Sequence[str] = ()) -> Submission:
    """Everything under ``root`` is one team's."""
    walk = _walk(root)
    graded, dropped = _one_per_challenge(root, _notebooks(walk.files), known, explicit)
    problems = []
    if not graded:
        deeper = [f for f in walk.files if f.endswith(".ipynb")]
        problems.append(f"{name}: the submission holds no notebook (*.ipynb) at its top or one folder "
                        "down" + (f" (found deeper: {', '.join(deeper[:3])})" if deeper else "")
                        + ": put the team's notebook at the top of its folder")
    folders = [root / NEW_IMAGES, *[(root / nb).parent / NEW_IMAGES for nb in graded]]
    new_images = next((f for f in folders if f.is_dir() and not f.is_symlink()), None)
    return Submission(name=name, root=root, notebooks=tuple(root / nb for nb in graded),
                      files=tuple(walk.files), new_images=new_images,
                      ignored=_listed([*ignored, *walk.ignored, *dropped]), problems=tuple(problems),
                      source=source)


def _bare(path: Path) -> Submission:
    """A notebook file alone; the ``new_images/`` beside it only if no other notebook is there."""
    real = path.resolve()
    root, files = real.parent, [real.name]
    others = [p for p in root.glob("*.ipynb") if p.name != real.name and not p.name.startswith("._")
              and not (_UNTITLED.match(p.name) and _is_empty(p))]
    new_dir = root / NEW_IMAGES
    ignored: list[str] = []
    if new_dir.is_dir() and not new_dir.is_symlink() and not others:
        walk = _walk(new_dir)
        files += [f"{NEW_IMAGES}/{f}" for f in walk.files]
        ignored += [f"{NEW_IMAGES}/{f}" for f in walk.ignored]
    elif new_dir.is_dir():
        ignored.append(f"{NEW_IMAGES}/ (beside several notebooks: it belongs to none of them; put "
                       "each team's notebook and new_images/ in a folder of its own)")
    has_images = any(f.startswith(f"{NEW_IMAGES}/") for f in files)
    return Submission(name=path.stem, root=root, notebooks=(real,), files=tuple(files),
                      new_images=new_dir if has_images else None, ignored=_listed(ignored), source=path)


def _not_a_submission(path: Path) -> Submission:
    return Submission(name=path.stem or path.name, root=path.parent, source=path, problems=(
        f"{path.name} is not a notebook (.ipynb), a submission folder or a .zip of one: hand in "
        "the notebook itself, or a zip of the team's folder",))


# ---------------------------------------------------------------- zips


def _zip(path: Path, workspace: Path, limits: ZipLimits, *, cohort: bool, known: Sequence[str],
         explicit: str | None) -> list[Submission]:
    dest = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:40] + "-",
                                 dir=workspace))
    refused, ignored = unpack(path, dest, limits=limits, skip=_skip)
    if refused:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        return [Submission(name=path.stem, root=dest, problems=(refused,), source=path)]
    level = dest
    while True:
        entries = [p for p in level.iterdir() if not p.name.startswith("._")
                   and p.name not in _IGNORED_DIRS]
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            break
        level = entries[0]
    top = [p for p in sorted(level.glob("*.ipynb")) if not (_UNTITLED.match(p.name) and _is_empty(p))]
    folders = [d for d in sorted(level.iterdir()) if d.is_dir() and d.name not in _IGNORED_DIRS
               and _notebooks(_walk(d).files)]
    one = (not cohort or (level / NEW_IMAGES).is_dir() or len(top) == 1
           or (bool(top) and level != dest) or (not top and len(folders) <= 1))
    if one:
        return [_team(level, name=path.stem, source=path, known=known, explicit=explicit,
                      ignored=ignored)]
    teams = [Submission(name=nb.stem, root=level, notebooks=(nb,), files=(nb.name,), source=path)
             for nb in top]
    for d in folders:  # what unpacking left out inside a team's folder is that team's to know
        inside = d.relative_to(dest).as_posix() + "/"
        teams.append(_team(d, name=d.name, source=path, known=known, explicit=explicit,
                           ignored=[i[len(inside):] for i in ignored if i.startswith(inside)]))
    outside = [i for i in ignored if not any(i.startswith(d.relative_to(dest).as_posix() + "/")
                                             for d in folders)]
    log.info("%s: a cohort zip of %d teams%s", path, len(teams),
             f"; left out, in no team's folder: {', '.join(outside[:10])}" if outside else "")
    return teams


def zip_problem(path: Path, *, name: str | None = None, limits: ZipLimits = DEFAULT_LIMITS) -> str | None:
    """Why the zip ``path`` (called ``name`` in the message) would be refused by :func:`intake_upload`,
    judged from its central directory alone (:func:`grader.intake.unzip.judge`, intake's entries left out), or None."""
    return judge(path, limits=limits, skip=_skip, name=name)


def _skip(parts: tuple[str, ...]) -> str | None:
    """Why a zip entry (its path's parts) is left out, as ``"path/ (why)"``, or None."""
    skip = next((p for p in parts if p in _IGNORED_DIRS or p.startswith("._")), None)
    if skip is None:
        return None
    top = "/".join(parts[:parts.index(skip) + 1])
    if skip in _IGNORED_DIRS:
        return f"{top}/ ({_IGNORED_DIRS[skip]})"
    return f"{top} (macOS AppleDouble metadata)"
