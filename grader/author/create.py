"""``grader new-challenge``, the work: read a coach's folder of photos, check every image, choose
the splits, and write the challenge (``challenge.toml``, the brief, the rubric, the recorded
splits, the starter and its reference) into the project folder; or remake only the splits or only
the starter.

Everything is made in memory and validated as the grader will load it (the challenge spec, the
rubric) before the first file is written, so a refused run leaves the project as it was.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from grader.author.brief import brief_text
from grader.author.findings import MIN_HIDDEN, MIN_TRAIN, Findings, examine, needed_per_class
from grader.author.rubric import DEFAULT_CRITERIA, NEW_IMAGES_NEEDED, rubric_criteria, rubric_toml
from grader.author.scan import scan_images
from grader.author.skeleton import FRAMEWORKS, skeleton
from grader.author.source import Source, read_source
from grader.author.spec import challenge_toml, split_texts
from grader.author.splits import Splits, choose_splits
from grader.author.starter import split_solution
from grader.core import (
    Challenge,
    ChallengeError,
    DataError,
    HarnessError,
    Settings,
    UsageError,
    load_challenge,
    write_atomic,
)
from grader.data import HIDDEN_SEED, list_images
from grader.evidence import framework_of
from grader.score import Rubric, wilson_interval

__all__ = ["Created", "Request", "inspect_source", "make_starter", "new_challenge"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FRAMEWORK_FILES = {"pytorch": "pytorch", "tensorflow": "tensorflow", "sklearn": "scikit-learn"}


@dataclass(frozen=True)
class Request:
    """What the coach asked ``grader new-challenge`` for (its options; see ``--help``)."""

    challenge_id: str
    data: Path
    labels: Path | None = None
    images: str | None = None
    group: str | None = None
    criteria: tuple[str, ...] = DEFAULT_CRITERIA
    threshold: float = 0.8
    hidden: float = 0.2
    seed: int = HIDDEN_SEED
    solution: Path | None = None
    framework: str | None = None
    title: str | None = None
    min_side: int = 32
    near_distance: int = 4
    force: bool = False
    splits_only: bool = False
    workers: int | None = None
    command: str = ""


@dataclass(frozen=True)
class Created:
    """What ``grader new-challenge`` did.

    Attributes:
        challenge: the challenge as it loads.
        source: the coach's images.
        findings: what the check of every image found.
        splits: the splits chosen.
        written: the files written, in order.
        interval: ``(k, n, low, high)``: the 95% Wilson interval (:func:`grader.score.wilson_interval`)
            of an accuracy of ``k`` of the hidden test set's ``n`` images, ``k`` the threshold's share
            of ``n`` rounded.
        seconds: wall time of each step (``scan``, ``pairs``, ``splits``, ``write``).
        notes: what the coach must still do before ``grader verify-references`` can pass the
            reference (e.g. photos for the new-images criterion), one sentence each.
    """

    challenge: Challenge
    source: Source
    findings: Findings
    splits: Splits
    written: tuple[Path, ...]
    interval: tuple[int, int, float, float]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _check_request(request: Request) -> None:
    if not _ID.match(request.challenge_id):
        raise UsageError(f"{request.challenge_id!r} is not a challenge id", fix="use lower-case letters, digits and "
                         "dashes, starting with a letter or digit (fruit-photos)")
    if not 0 < request.threshold <= 1:
        raise UsageError(f"--threshold {request.threshold}: an accuracy between 0 and 1", fix="pass e.g. 0.8")
    if not 0 < request.hidden < 1:
        raise UsageError(f"--hidden {request.hidden}: a share of each class between 0 and 1", fix="pass e.g. 0.2")
    if request.framework is not None and request.framework not in FRAMEWORKS:
        raise UsageError(f"--framework {request.framework}: one of {', '.join(FRAMEWORKS)}",
                         fix=f"pass one of {', '.join(FRAMEWORKS)}")


def inspect_source(settings: Settings, request: Request, *, on_progress: Progress | None = None,
                   seconds: dict[str, float] | None = None) -> tuple[Source, Findings]:
    """Read the coach's folder and check every image (nothing is written).

    Raises:
        UsageError, ConfigError: the folder is not directly in the data folder; bad options.
        DataError: fewer than two classes; a malformed labels CSV.
    """
    timings = {} if seconds is None else seconds
    start = time.perf_counter()
    source = read_source(settings.data_dir, request.data, labels=request.labels, images=request.images)
    facts = scan_images(source.folder, [e for e, _ in source.entries], workers=request.workers,
                        on_progress=on_progress)
    timings["scan"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = dict(source.entries)
    # train and test folders: the test side is the hidden test set, whatever --hidden says
    need = MIN_HIDDEN + MIN_TRAIN + 1 if source.layout == "train-test-folders" else needed_per_class(request.hidden)
    needed = {c: need for c in source.classes}
    findings = examine(facts, labels, min_side=request.min_side, max_distance=request.near_distance, needed=needed)
    timings["pairs"] = time.perf_counter() - start
    return source, findings


def _refuse(source: Source, findings: Findings) -> None:
    said = findings.refusals()
    if said:
        raise DataError(f"{source.folder}: " + "\n  ".join(["cannot make a challenge of these images:", *said]),
                        fix="remove or replace those images (or move them out of the folder), add images to the "
                        "small classes, then run the command again")


def _new_images(settings: Settings) -> list[str]:
    """Up to :data:`NEW_IMAGES_NEEDED` images of ``<data dir>/new_images`` for ``[verify] new_images``."""
    folder = (settings.data_dir or Path("/nonexistent")) / "new_images"
    return [p.name for p in list_images(folder)[:NEW_IMAGES_NEEDED]] if folder.is_dir() else []


def _new_images_note(settings: Settings, request: Request, source: Source, found: list[str]) -> tuple[str, ...]:
    """The note that the reference will fail the new-images criterion: the data folder's
    ``new_images/`` holds fewer than the :data:`NEW_IMAGES_NEEDED` photos it asks for."""
    if "new-images" not in request.criteria or len(found) >= NEW_IMAGES_NEEDED:
        return ()
    folder = (settings.data_dir or Path("/nonexistent")) / "new_images"
    cid = request.challenge_id
    return (f"the rubric's new-images criterion needs {NEW_IMAGES_NEEDED} photos of your own, and {folder} holds "
            f"{len(found)}: until it has them, the reference fails new-images in grader verify-references. Put "
            f"{NEW_IMAGES_NEEDED} photos that are not in {source.name} there and name them under [verify] new_images "
            f"in challenges/{cid}/challenge.toml (--force would write the reference again), or leave new-images out "
            "of --criteria",)


def _notebook_text(notebook: dict[str, Any]) -> str:
    node = nbformat.from_dict(notebook)
    nbformat.validate(node)
    return str(nbformat.writes(node)) + "\n"


def _framework(request: Request, solution: dict[str, Any] | None) -> str:
    if request.framework is not None:
        return request.framework
    if solution is None:
        return "pytorch"
    code = "\n".join("".join(c["source"]) if isinstance(c.get("source"), list) else str(c.get("source", ""))
                     for c in solution.get("cells", []) if c.get("cell_type") == "code")
    return _FRAMEWORK_FILES.get(framework_of(code) or "pytorch", "pytorch")


def _read_notebook(path: Path) -> dict[str, Any]:
    try:
        node = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as err:  # nbformat's NotJSONError is a ValueError
        raise UsageError(f"--solution {path}: cannot read it as a notebook ({err})",
                         fix="pass a Jupyter notebook (.ipynb) with ### BEGIN SOLUTION / ### END SOLUTION "
                         "markers") from err
    return json.loads(nbformat.writes(node))  # type: ignore[no-any-return]


def _shown(path: Path, root: Path) -> str:
    here = path.resolve()
    return str(here.relative_to(root)) if here.is_relative_to(root) else str(here)


def _starter_files(root: Path, cid: str, solution: dict[str, Any], *, framework: str, solution_path: Path | None,
                   keep_reference: bool) -> dict[Path, str]:
    """The reference (unless ``keep_reference``: it is the solution itself) and the starter."""
    reference = Path("reference_solutions") / cid / f"{framework}.ipynb"
    command = f"grader new-challenge {cid} --starter-only --framework {framework}"
    if solution_path is not None and not keep_reference:
        command += f" --solution {_shown(solution_path, root)}"
    made = split_solution(solution, challenge_id=cid, reference_path=reference.as_posix(), command=command)
    out = {root / "challenges" / cid / "starter.ipynb": _notebook_text(made.starter)}
    if not keep_reference:
        out[root / reference] = _notebook_text(made.reference)
    return out


def make_starter(settings: Settings, challenge_id: str, *, solution: Path | None = None,
                 framework: str | None = None) -> list[Path]:
    """Remake the starter of ``challenge_id`` from a marked solution (``--starter-only``).

    Without ``solution`` the solution is the challenge's reference itself (a skeleton keeps its
    markers): of ``framework``, or its only one. With it, the reference is rewritten from it.

    Returns:
        The files written.

    Raises:
        ChallengeError: unknown challenge, one of the shipped project's, no or several references
            to choose from, or a solution without markers.
        UsageError: the solution cannot be read; an unknown framework.
    """
    challenge = load_challenge(settings.project_dir, challenge_id)
    root = challenge.folder.parent.parent
    if root.resolve() != settings.project_dir.resolve():
        raise ChallengeError(f"{challenge_id} is not a challenge of the project {settings.project_dir}",
                             fix="make starters for your own project's challenges (grader init, then grader "
                             "new-challenge)")
    refs = sorted((root / "reference_solutions" / challenge_id).glob("*.ipynb"))
    if solution is None:
        chosen = [r for r in refs if framework is None or r.stem == framework]
        if len(chosen) != 1:
            raise ChallengeError(f"{challenge_id} has {'no' if not chosen else len(chosen)} references to make the "
                                 f"starter from ({', '.join(r.stem for r in refs) or 'none'})",
                                 path=root / "reference_solutions" / challenge_id,
                                 fix="name one with --framework, or pass --solution NOTEBOOK")
        solution = chosen[0]
    nb = _read_notebook(solution)
    request = Request(challenge_id=challenge_id, data=Path("."), framework=framework)
    _check_request(request)
    fw = _framework(request, nb)
    keep = solution.resolve() == (root / "reference_solutions" / challenge_id / f"{fw}.ipynb").resolve()
    files = _starter_files(root, challenge_id, nb, framework=fw, solution_path=solution, keep_reference=keep)
    for path, text in files.items():
        write_atomic(path, text)
    return list(files)


def _target(settings: Settings, request: Request) -> Path:
    """``challenges/<id>`` of the project, refusing to overwrite one without ``--force``."""
    folder = settings.project_dir / "challenges" / request.challenge_id
    if (folder / "challenge.toml").exists() and not request.force:
        raise UsageError(f"challenge {request.challenge_id} exists: {folder}", path=folder,
                         fix="pass --force to write it again (its brief, rubric, starter and reference too), "
                         "--splits-only to choose its splits again, or choose another id")
    try:
        shipped = load_challenge(settings.project_dir, request.challenge_id)
    except ChallengeError:
        return folder
    if shipped.folder.resolve() != folder.resolve() and not request.force:
        raise UsageError(f"{request.challenge_id} is a challenge shipped with the grader; yours would hide it",
                         fix="choose another id, or pass --force to hide the shipped one")
    return folder


def new_challenge(settings: Settings, request: Request, *, on_progress: Progress | None = None) -> Created:
    """Make the challenge ``request`` asks for (the module docstring), or with ``splits_only`` choose
    and write its splits again.

    Raises:
        UsageError: a bad option, an existing challenge without ``force``, the folder not in the
            data folder, a bad ``--group`` pattern, an unreadable solution.
        DataError: images that do not decode or are too small, classes too small for the split,
            groups too large to split, a malformed labels CSV.
        ChallengeError: a solution without markers; (``splits_only``) no such challenge, or one
            on another folder.
        HarnessError: what was made does not load (a bug of this module).
    """
    _check_request(request)
    seconds: dict[str, float] = {}
    existing = load_challenge(settings.project_dir, request.challenge_id) if request.splits_only else None
    if existing is not None:
        if existing.folder.parent.parent.resolve() != settings.project_dir.resolve():
            raise ChallengeError(f"{request.challenge_id} is not a challenge of the project {settings.project_dir}",
                                 fix="choose the splits of your own project's challenges")
        recorded = existing.dataset.near_duplicate_distance  # the challenge's own distance, not the default
        if isinstance(recorded, int):
            request = dataclasses.replace(request, near_distance=recorded)
    folder = existing.folder if existing is not None else _target(settings, request)
    source, findings = inspect_source(settings, request, on_progress=on_progress, seconds=seconds)
    if existing is not None and (existing.dataset.source, existing.dataset.layout) != (source.name, source.layout):
        raise ChallengeError(f"{request.challenge_id} reads {existing.dataset.source} ({existing.dataset.layout}), "
                             f"not {source.name} ({source.layout})", path=existing.folder / "challenge.toml",
                             fix=f"pass --data {existing.dataset.source}'s folder, or make a new challenge")
    _refuse(source, findings)
    start = time.perf_counter()
    splits = choose_splits(source, findings.near, fraction=request.hidden, seed=request.seed, pattern=request.group)
    seconds["splits"] = time.perf_counter() - start
    start = time.perf_counter()
    title = request.title or f"Image classification: the {source.name} photos"
    found = _new_images(settings)
    notes = () if existing is not None else _new_images_note(settings, request, source, found)
    text = challenge_toml(cid=request.challenge_id, title=title, source=source, near_distance=request.near_distance,
                          transfer="transfer-learning" in request.criteria, new_images=found,
                          new_images_needed=NEW_IMAGES_NEEDED if "new-images" in request.criteria else 0,
                          command=request.command)
    try:
        challenge = existing or Challenge.model_validate({**tomllib.loads(text), "folder": folder})
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise HarnessError(f"the challenge.toml made for {request.challenge_id} does not load: {err}") from err
    files = {folder.parent / rel: body for rel, body in split_texts(
        challenge, source, splits, near_distance=request.near_distance, pattern=request.group,
        command=request.command).items()}
    if existing is None:
        criteria = rubric_criteria(request.criteria, threshold=request.threshold)
        rubric = rubric_toml(request.challenge_id, criteria, command=request.command)
        try:
            Rubric.model_validate(tomllib.loads(rubric))
        except (tomllib.TOMLDecodeError, ValueError) as err:
            raise HarnessError(f"the rubric made for {request.challenge_id} does not load: {err}") from err
        solution = _read_notebook(request.solution) if request.solution is not None else None
        fw = _framework(request, solution)
        made = solution if solution is not None else skeleton(challenge, source, framework=fw,
                                                               criteria=request.criteria)
        files |= {folder / "challenge.toml": text,
                  folder / "README.md": brief_text(challenge, source, findings, splits, criteria),
                  settings.project_dir / "rubrics" / f"{request.challenge_id}.toml": rubric}
        files |= _starter_files(settings.project_dir, request.challenge_id, made, framework=fw,
                                solution_path=request.solution, keep_reference=solution is None)
        if solution is None:  # the skeleton is its own solution: the reference keeps its markers
            files[settings.project_dir / "reference_solutions" / request.challenge_id / f"{fw}.ipynb"] = \
                _notebook_text(made)
    for path, body in files.items():
        write_atomic(path, body)
    seconds["write"] = time.perf_counter() - start
    n = len(splits.hidden)
    k = round(request.threshold * n)
    interval = wilson_interval(k, n)
    log.info("wrote %d files for %s", len(files), request.challenge_id)
    return Created(challenge=challenge, source=source, findings=findings, splits=splits, written=tuple(files),
                   interval=(k, n, interval.low, interval.high), seconds=seconds, notes=notes)
