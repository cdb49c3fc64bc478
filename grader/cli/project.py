"""The project's commands: ``grader challenges``, ``checks`` and ``validate`` (the challenges, the
checks a rubric can use, and every challenge.toml, rubric and split checked), and ``grader
verify-references`` (every reference solution passes, every starter notebook fails).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.cli.options import announced, detect_device, resolve_sandbox, sandbox_option, validate_options
from grader.core import (
    ChallengeError,
    DataError,
    ExitStatus,
    HarnessError,
    RubricError,
    Settings,
    UsageError,
    rubric_file,
    write_atomic,
)

if TYPE_CHECKING:
    from grader.core import Challenge
    from grader.data import CrossSplit, Listing

__all__ = ["add_parsers", "cmd_challenges", "cmd_checks", "cmd_validate", "cmd_verify"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify-references``, ``challenges``, ``checks`` and ``validate`` to the ``grader``
    parser's commands."""
    verify = sub.add_parser(
        "verify-references", help="check that every reference passes and every starter fails",
        description="Grade every reference solution and starter notebook through the real check "
        "path. Reference results are archived under reference_solutions/results/ and "
        "reference_solutions/RESULTS.md is regenerated from them.")
    verify.add_argument("--profile", default="ci",
                        help="profile to run, one the challenges declare (default: ci)")
    verify.add_argument("--challenge", metavar="ID", help="only this challenge")
    verify.add_argument("--out", default="out/verify", metavar="DIR",
                        help="where scorecards go (default: out/verify)")
    verify.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    verify.add_argument("--no-archive", action="store_true",
                        help="do not archive results or rewrite RESULTS.md")
    verify.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="notebooks graded at once, each kernel with cores/N threads (default 1; archived "
                        "wall times are then of shared cores)")
    sandbox_option(verify)

    sub.add_parser("challenges", help="list the challenges")
    sub.add_parser("checks", help="list the checks a rubric can use, with their pass conditions")
    validate = sub.add_parser(
        "validate", help="validate every challenge (or those named): spec, rubric, splits, starter, references",
        description="Check each challenge of the project (grader --help says how it is found): its challenge.toml, "
        "its rubric (and that it is for this challenge), its split files, class folders and splits (public, "
        "practice, no hidden image a near-duplicate of a public one; where the data directory is set), its "
        "starter notebook and its reference solutions. One line per challenge; the first problem stops it "
        "(exit 2, with the fix).")
    validate.add_argument("--challenge", metavar="ID", action="append",
                          help="only this challenge (repeat for more; default: every one)")


def cmd_challenges(settings: Settings) -> int:
    """``grader challenges``: each challenge's id and title."""
    from grader.core import challenge_ids, load_challenge  # here for start-up time

    for cid in challenge_ids(settings.project_dir):
        c = load_challenge(settings.project_dir, cid)
        print(f"{cid:20} {c.title}")
    return ExitStatus.PASSED


def cmd_checks() -> int:
    """``grader checks``: each registered check, its parameters and its pass condition."""
    from grader.score.checks import check_names, get_check  # here for start-up time

    for name in check_names():
        spec = get_check(name)
        fields = ", ".join(f"{k}" for k in spec.params.model_fields) or "no parameters"
        print(f"{name} ({fields})\n    {' '.join(spec.doc.split())}\n")
    return ExitStatus.PASSED


def cmd_validate(settings: Settings, *, challenges: Sequence[str] | None = None) -> int:
    """``grader validate [--challenge ID ...]``: load each challenge (every one, or those named) and
    its rubric, and check its split files, class folders, splits (public, practice,
    near-duplicates where the data directory is set), starter notebook and reference solutions,
    one line each.

    Raises:
        UsageError: a ``--challenge`` names no known challenge (the message lists the known ones).
        HarnessError: no challenge is found.
        ChallengeError, RubricError, DataError: a challenge, rubric, split or starter is invalid
            (a rubric for another challenge too).
    """
    from grader.core import challenge_ids, shadowed_challenges  # here for start-up time

    start = time.perf_counter()
    memo: dict[tuple[object, ...], CrossSplit] = {}
    listings: dict[tuple[object, ...], Listing] = {}
    known = challenge_ids(settings.project_dir)
    if not known:
        raise HarnessError("no challenges found", path=settings.project_dir / "challenges",
                           fix="add one (grader new-challenge ID --data DIR), or point --project at a project")
    unknown = [c for c in challenges or () if c not in known]
    if unknown:
        raise UsageError(f"--challenge {', '.join(unknown)}: no such challenge in {settings.project_dir}; known: "
                         f"{', '.join(known)}", fix="pass one of the known ids (`grader challenges` lists them)")
    ids = list(dict.fromkeys(challenges)) if challenges else known
    shadowed = set(shadowed_challenges(settings.project_dir))
    print(f"project {settings.project_dir} ({_FOUND_BY[settings.project_from]}"
          + (", with the shipped challenges)" if len(settings.project_dirs) > 1 else ")"))
    for cid in ids:
        if cid in shadowed:
            print(f"note: {cid} of this project shadows the shipped challenge {cid} (the shipped one is not used)")
        print(f"ok  {cid}: {_validate_one(settings, cid, memo, listings)}")
    print(f"validated {len(ids)} challenges in {time.perf_counter() - start:.1f} s")
    return ExitStatus.PASSED


_FOUND_BY = {"option": "from --project", "environment": "from GRADER_PROJECT_DIR",
             "marker": "found by its grader-project.toml", "shipped": "the shipped project"}


def _validate_one(settings: Settings, cid: str, memo: dict[tuple[object, ...], CrossSplit],
                  listings: dict[tuple[object, ...], Listing]) -> str:
    """Check one challenge for :func:`cmd_validate`; return what its line says. Challenges on the
    same dataset and split files share one listing through ``listings`` (listing CIFAR-10's
    60,000 files took 2.4 s of the 10.7 s of a whole ``grader validate`` here)."""
    from grader.core import check_class_folders, check_split_files, load_challenge  # here for start-up time
    from grader.data import data_missing, list_dataset, load_split, validate_split
    from grader.score import load_rubric

    challenge = load_challenge(settings.project_dir, cid)
    rubric = load_rubric(settings.project_dir, challenge.rubric)
    if rubric.challenge != cid:
        raise RubricError(f"rubric {challenge.rubric} is for challenge {rubric.challenge!r}, not {cid!r}",
                          path=rubric_file(settings.project_dir, challenge.rubric),
                          fix=f'write challenge = "{cid}" in the rubric, or point rubric in '
                          f"{challenge.folder / 'challenge.toml'} at {cid}'s own rubric")
    for criterion in rubric.criteria + rubric.disabled:
        stray = sorted(set(criterion.profile_params) - set(challenge.profiles))
        if stray:
            raise RubricError(f"criterion {criterion.id}: profile_params for {', '.join(stray)}, a "
                              f"profile {cid} does not declare", path=f"rubrics/{challenge.rubric}.toml",
                              fix=f"use one of {', '.join(challenge.profiles) or 'no profile'} "
                              "or declare it in challenge.toml")
    check_split_files(challenge)
    starter = _check_notebooks(settings, challenge)
    missing = data_missing(settings.data_dir, challenge)  # then every check that reads the data is skipped
    data_dir = settings.data_dir if missing is None else None
    spare = [] if data_dir is None else check_class_folders(challenge, data_dir)
    entries: tuple[tuple[str, str], ...] | None = None
    listing = None
    if data_dir is not None:
        ds = challenge.dataset
        key = (str(challenge.folder.parent), ds.model_dump_json(exclude=_NOT_LISTED))
        if key not in listings:
            listings[key] = list_dataset(data_dir, challenge)
        listing = listings[key]
    if listing is not None:
        entries = listing.hidden
        hidden = f"hidden test set of {len(entries)} images"
    elif challenge.dataset.layout == "labels-csv":  # an entry is <images>/<file>: its class is in the CSV only
        hidden = f"hidden test set of {len(load_split(challenge))} images (their classes are in the labels CSV)"
    elif challenge.dataset.hidden_split:  # an entry is <class>/<file>
        entries = tuple((e, e.split("/", 1)[0]) for e in load_split(challenge))
        hidden = f"hidden test set of {len(entries)} images"
    else:
        hidden = f"hidden test set: {challenge.dataset.source}/test"
    frameworks = sorted({f for c in rubric.criteria for f in c.fixes})
    fixes = f"; fixes for {', '.join(frameworks)}" if frameworks else ""
    public = _validate_public_split(challenge, entries)
    practice = _validate_practice_split(challenge, None if listing is None else listing.public)
    near = "" if listing is None else f"; {validate_split(settings, challenge, listing, memo)}"
    disabled = (f" (disabled, not graded: {', '.join(c.id for c in rubric.disabled)})"
                if rubric.disabled else "")
    unused = (f"; folders not listed as classes: {', '.join(spare[:5])}{', ...' if len(spare) > 5 else ''}"
              if spare else "")
    named = len(challenge.verify.new_images)  # the reference's new images in verify-references
    few = [(c.id, int(c.params.get("min_images", 1))) for c in rubric.criteria
           if c.check == "new_image_predictions" and int(c.params.get("min_images", 1)) > named]
    short = "".join(f"; [verify] new_images names {named} of the {n} photos {criterion} asks for: verify-references "
                    "fails the reference there (put photos that are not in the dataset in <data dir>/new_images and "
                    "name them in challenge.toml)" for criterion, n in few)
    skipped = ("" if missing is None
               else f"; data not there: {missing}; skipped: {_skipped(challenge, public=entries is not None)}")
    return (f"{len(rubric.criteria)} criteria{disabled}, {rubric.total_points:g} points, {hidden}{fixes}"
            f"; {public}; {practice}{near}; {starter}{unused}{short}{skipped}")


def _skipped(challenge: Challenge, *, public: bool) -> str:
    """The checks ``validate`` skips for ``challenge`` without its data, in words (``public``: the
    public split was checked against the recorded hidden split all the same)."""
    read = {"class-folders": "the class folders", "train-test-folders": "the class folders of train/ and test/",
            "labels-csv": "the labels CSV", "idx": "the idx files"}[challenge.dataset.layout]
    halves = "" if public else ", the public split's halves per class"
    return f"{read}, the hidden test set's files{halves}, the practice split against the data, the near-duplicate check"


# dataset fields that do not change which files list_dataset finds, or their sides
_NOT_LISTED = {"public_split", "practice_split", "near_duplicate_distance", "near_duplicate_pixels",
               "prepared_views", "extra", "raw_view", "added_class", "mnist"}


def _check_notebooks(settings: Settings, challenge: Challenge) -> str:
    """Check ``challenge``'s starter notebook and reference solutions are notebooks (JSON with
    cells); return what ``validate`` says of them.

    Raises:
        ChallengeError: no starter notebook, or it or a reference is not a notebook.
    """
    from grader.core import check_starter, reference_folder  # here for start-up time

    starter = check_starter(challenge)
    references = sorted(reference_folder(settings.project_dir, challenge.id).glob("*.ipynb"))
    for path in (starter, *references):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as err:
            raise ChallengeError(f"not a readable notebook: {err}", path=path,
                                 fix="save it again from Jupyter (nbformat 4)") from err
        if not isinstance(cells, list):
            raise ChallengeError("not a notebook: it has no list of cells", path=path,
                                 fix="save it again from Jupyter (nbformat 4)")
    refs = (f"references {', '.join(p.stem for p in references)}" if references
            else f"no reference solution in {reference_folder(settings.project_dir, challenge.id)}")
    return f"starter; {refs}"


def _validate_public_split(challenge: Challenge, hidden: tuple[tuple[str, str], ...] | None) -> str:
    """Check ``challenge``'s public split file against its hidden test set (``hidden``: its
    ``(entry, class)`` pairs, None when the data directory is not set and the challenge takes
    its hidden test set from ``test/``); return what ``validate`` says of it.

    Raises:
        ChallengeError: the challenge records no public split.
        DataError: the file cannot be read, or it is not stratified halves of the hidden test set
            (every problem :func:`grader.data.splits.public_split_problems` finds, named).
    """
    from grader.data import load_public_split, public_split_problems  # here for start-up time

    recorded = load_public_split(challenge)
    if recorded is None:
        raise ChallengeError(f"{challenge.id} records no public split of its hidden test set",
                             path=challenge.folder / "challenge.toml",
                             fix="add public_split = \"splits/<dataset>-public.txt\" under [dataset] and "
                             "run grader data make-split " + challenge.id)
    path = challenge.folder.parent / str(challenge.dataset.public_split)
    if hidden is None:
        return f"public split of {len(recorded)} images (not checked against the data)"
    problems = public_split_problems(hidden, recorded)
    if problems:
        raise DataError(f"public split of {challenge.id}: " + "; ".join(problems), path=path,
                        fix="regenerate it with grader data make-split " + challenge.id)
    return f"public part {len(recorded)}, private part {len(hidden) - len(recorded)}"


def _validate_practice_split(challenge: Challenge, public: Sequence[tuple[str, str]] | None) -> str:
    """Check ``challenge``'s practice split (:func:`grader.data.practice.practice_split_problems`:
    disjoint from the hidden test set, every class present and, given the data folder's
    ``public`` entries, every entry among them); return what ``validate`` says of it.

    Raises:
        DataError: the file cannot be read or has a problem (each named).
    """
    from grader.data import load_practice_split, practice_split_problems  # here for start-up time

    practice = load_practice_split(challenge)
    if practice is None:
        return "no practice split"
    problems = practice_split_problems(challenge, practice, public)
    if problems:
        raise DataError(f"practice split of {challenge.id}: " + "; ".join(problems),
                        path=challenge.folder.parent / str(challenge.dataset.practice_split),
                        fix="regenerate it with grader data make-split " + challenge.id)
    return f"practice split {len(practice)}" + ("" if public is not None else " (not checked against the data)")


class _Progress:
    """Prints a running notebook's status lines, timed from the start of its submission."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def restart(self) -> None:
        self.started = time.monotonic()

    def __call__(self, status: str) -> None:
        print(f"    {time.monotonic() - self.started:5.0f} s  {status}", file=sys.stderr, flush=True)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """``grader verify-references``: grade every reference solution and starter notebook, archive
    the references' results and rewrite RESULTS.md (unless ``--no-archive``); 0 when each is as
    expected, else 1."""
    # here for start-up time
    from grader.pipeline import GradeOptions, Verification, archive_result, render_results
    from grader.pipeline.verify import verify

    validate_options(args, settings)
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: it must be at least 1", fix="pass --jobs 1 or more")
    progress = _Progress()

    def report(v: Verification) -> None:
        e, r = v.expectation, v.result
        accuracy = [f"{m.function} {m.accuracy:.3f}" for nb in r.notebooks for m in nb.models]
        wall = sum(nb.execution.wall_s for nb in r.notebooks)
        failed = [c.id for nb in r.notebooks for c in nb.criteria if c.status not in ("pass", "awaiting", "graded")]
        awaiting = [c.id for nb in r.notebooks for c in nb.criteria if c.status == "awaiting"]
        print(f"{'ok  ' if v.ok else 'BAD '} {e.name} ({e.role}, {args.profile}): {r.verdict} "
              f"{r.score:g}/{r.max_score:g}, {', '.join(accuracy) or 'no accuracy'}, {wall:.0f} s"
              + (f"; failed: {', '.join(failed)}" if failed else "")
              + (f"; awaiting the coach (answers present): {', '.join(awaiting)}" if awaiting else ""), flush=True)
        if e.role == "reference" and not args.no_archive:
            archive_result(settings, e.name, args.profile, r)
        progress.restart()

    options = GradeOptions(device=detect_device(args.device), on_progress=progress,
                           sandbox=announced(resolve_sandbox(args.sandbox)))
    results = verify(settings, profile=args.profile, challenge=args.challenge,
                     out=Path(args.out), options=options, on_result=report, jobs=args.jobs)
    if not args.no_archive:
        path = settings.project_dir / "reference_solutions" / "RESULTS.md"
        write_atomic(path, render_results(settings))
        print(f"wrote {path}")
    bad = [v.expectation.name for v in results if not v.ok]
    print(f"{len(results) - len(bad)} of {len(results)} as expected"
          + (f"; not as expected: {', '.join(bad)}" if bad else ""))
    return ExitStatus.PASSED if not bad else ExitStatus.FAILED
