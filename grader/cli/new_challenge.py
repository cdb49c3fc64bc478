"""``grader new-challenge``: a coach's folder of photos made into a challenge (:mod:`grader.author`),
with a progress bar while every image is checked, a summary of what was found, and what the hidden
test set's size means for the threshold.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import ExitStatus, Settings, UsageError

if TYPE_CHECKING:
    from grader.author import Created, Request

__all__ = ["add_parser", "cmd_new_challenge", "request_of"]

_DESCRIPTION = """\
Make a challenge from a folder of photos in the data folder (GRADER_DATA_DIR, the only folder the
sandbox mounts), read as it is, without conversion. Layouts: class folders (DIR/<class>/<file>),
train and test folders (DIR/train/<class>/<file>, DIR/test/<class>/<file>: the test side is the
hidden test set), or an image folder with a labels CSV (Kaggle's layout: columns id,label, id the
file name with or without its extension; found by itself when DIR holds one CSV, else --labels).

Every image is checked (unreadable, smaller than --min-size, exact and near duplicates across
classes, classes too small for the split); then the command writes into the project folder
challenges/ID/challenge.toml, challenges/ID/README.md (the brief, with the dataset's facts),
rubrics/ID.toml (the --criteria), the recorded hidden, public and practice splits under
challenges/splits/ (stratified, seeded; near-duplicates and --group kept on one side), and a
starter with its reference: from --solution (nbgrader's ### BEGIN SOLUTION / ### END SOLUTION
markers: the reference is the solution without them, the starter has the marked parts replaced by
# YOUR CODE HERE), else a reference skeleton for --framework whose model code, between markers,
is yours to write. Then `grader new-challenge ID --starter-only` remakes the starter from the
reference; `grader verify-references` fails a starter made from another version of it."""

_EPILOG = """\
examples:
  grader new-challenge fruit --data $GRADER_DATA_DIR/fruit
  grader new-challenge apples --data $GRADER_DATA_DIR/apples --group '(apple\\d+)_shot\\d+' --threshold 0.9
  grader new-challenge leaves --data $GRADER_DATA_DIR/leaves --labels $GRADER_DATA_DIR/leaves/labels.csv \\
      --solution solution.ipynb
  grader new-challenge fruit --starter-only            (after editing reference_solutions/fruit/pytorch.ipynb)
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``new-challenge`` to the ``grader`` parser's commands."""
    from grader.author import CRITERIA, DEFAULT_CRITERIA, FRAMEWORKS  # cheap: names only (lazy face)

    p = sub.add_parser("new-challenge", help="make a challenge from a folder of photos",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("challenge", metavar="ID", help="the new challenge's id (lower-case letters, digits, dashes)")
    p.add_argument("--data", metavar="DIR", help="the folder of photos, directly in the data folder (required, "
                   "but with --starter-only)")
    p.add_argument("--labels", metavar="CSV", help="the labels CSV (columns id,label), inside DIR")
    p.add_argument("--images", metavar="FOLDER", help="with a labels CSV: the images' folder, relative to DIR "
                   "(default: the folder whose files match the most ids)")
    p.add_argument("--group", metavar="REGEX", help="images whose paths give the same first capture group are "
                   r"shots of one object, kept on one side of every split (e.g. '(apple\d+)_shot\d+')")
    p.add_argument("--criteria", default=",".join(DEFAULT_CRITERIA), metavar="LIST",
                   help=f"the rubric's criteria, comma-separated, of {','.join(CRITERIA)} (default: "
                   f"{','.join(DEFAULT_CRITERIA)}); the notebook must also run and define the contract")
    p.add_argument("--threshold", type=float, default=0.8, metavar="ACC",
                   help="accuracy on the hidden test set to pass (default 0.8)")
    p.add_argument("--hidden", type=float, default=0.2, metavar="SHARE",
                   help="share of each class held back as the hidden test set (default 0.2; train and test "
                   "folders: the test side)")
    p.add_argument("--seed", type=int, default=2018, metavar="N", help="the splits' seed (default 2018)")
    p.add_argument("--solution", metavar="NOTEBOOK", help="a solution notebook with nbgrader's markers: it becomes "
                   "the reference, and the starter is made from it")
    p.add_argument("--framework", choices=FRAMEWORKS,
                   help="the reference's framework (default: read from the solution's imports, else pytorch)")
    p.add_argument("--title", help="the challenge's title (default: 'Image classification: the DIR photos')")
    p.add_argument("--min-size", type=int, default=32, metavar="PX",
                   help="smallest width or height an image may have, in pixels (default 32)")
    p.add_argument("--near-duplicates", type=int, default=4, metavar="BITS",
                   help="perceptual-hash distance at which two images are the same photo (default 4; "
                   "`grader data pairs ID DIR` shows pairs to calibrate it)")
    p.add_argument("--workers", type=int, metavar="N", help="processes that read the images (default: every core)")
    p.add_argument("--force", action="store_true", help="write over an existing challenge of this id")
    p.add_argument("--splits-only", action="store_true",
                   help="choose and write the splits of an existing challenge again, nothing else")
    p.add_argument("--starter-only", action="store_true",
                   help="remake the starter (and, with --solution, the reference) of an existing challenge, "
                   "nothing else; without --solution the reference is the solution")


_DEFAULTS: dict[str, object] = {"threshold": 0.8, "hidden": 0.2, "seed": 2018, "min_size": 32, "near_duplicates": 4}


class _Bar:
    """A rich progress bar on stderr while the images are read (plain lines where stderr is not a
    terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("checking images"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task("images", total=None)
        self.started = False

    def __call__(self, done: int, total: int) -> None:
        if not self.started:  # the first images read: the folder and the options were sound
            self.progress.start()
            self.started = True
        self.progress.update(self.task, completed=done, total=total)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()


def _summary(created: Created) -> list[str]:
    f, s, src = created.findings, created.splits, created.source
    sizes = f.size_range()
    lines = [f"{src.folder}: {len(src.entries)} images of {len(src.classes)} classes ({src.layout}): "
             + ", ".join(f"{c} {n}" for c, n in f.counts.items())]
    if sizes is not None:
        lines.append(f"  sizes {sizes[0][0]}x{sizes[0][1]} to {sizes[2][0]}x{sizes[2][1]} (median "
                     f"{sizes[1][0]}x{sizes[1][1]}); " + ", ".join(f"{k or 'other'} {n}" for k, n in f.formats.items()))
    lines += [f"  left out: {line}" for line in src.ignored]
    across = f.exact_across
    if across:
        lines.append(f"  {len(across)} groups of identical files labelled with two classes (kept together; check "
                     "their labels): " + "; ".join(" = ".join(g) for g in across[:10]))
    near = f.near_across
    if near:
        lines.append(f"  {len(near)} near-duplicate pairs across classes (kept together; check their labels): "
                     + "; ".join(f"{p.a} ~ {p.b} (distance {p.distance})" for p in near[:10]))
    lines.append(f"  {s.groups} groups of 2 or more images ({s.grouped} images) kept on one side of every split"
                 + (f"; --group matched {s.matched} images" if s.matched else ""))
    return lines


def _command(args: argparse.Namespace) -> str:
    """The command line that makes what ``args`` asks for (the options that choose the splits and the
    files, without --force, --splits-only and --workers), recorded in the files it writes."""
    from grader.author import DEFAULT_CRITERIA  # cheap: names only (lazy face)

    defaults = {**_DEFAULTS, "criteria": ",".join(DEFAULT_CRITERIA)}
    words = ["grader", "new-challenge", args.challenge, "--data", args.data]
    for option in ("labels", "images", "group", "criteria", "threshold", "hidden", "seed", "solution", "framework",
                   "title", "min_size", "near_duplicates"):
        value = getattr(args, option)
        if value is not None and value != defaults.get(option):
            words += [f"--{option.replace('_', '-')}", str(value)]
    return shlex.join(words)


def request_of(args: argparse.Namespace) -> Request:
    """What the parsed ``grader new-challenge`` options ``args`` ask for (``--data`` given), with the
    command line that records them (:func:`_command`); ``grader data make-split`` builds its own from
    the recorded command this way."""
    from grader.author import Request, parse_criteria  # here for start-up time

    return Request(
        challenge_id=args.challenge, data=Path(args.data), labels=Path(args.labels) if args.labels else None,
        images=args.images, group=args.group, criteria=parse_criteria(args.criteria), threshold=args.threshold,
        hidden=args.hidden, seed=args.seed, solution=Path(args.solution) if args.solution else None,
        framework=args.framework, title=args.title, min_side=args.min_size, near_distance=args.near_duplicates,
        force=args.force, splits_only=args.splits_only, workers=args.workers, command=_command(args))


def cmd_new_challenge(args: argparse.Namespace, settings: Settings) -> int:
    """``grader new-challenge``: make the challenge and say what was written; 0 when done."""
    from grader.author import make_starter, new_challenge  # here for start-up time

    if args.starter_only:
        written = make_starter(settings, args.challenge, solution=Path(args.solution) if args.solution else None,
                               framework=args.framework)
        for path in written:
            print(f"wrote {path}")
        print(f"check it: grader verify-references --challenge {args.challenge}")
        return ExitStatus.PASSED
    if not args.data:
        raise UsageError("--data DIR is required (the folder of photos)", fix=f"grader new-challenge {args.challenge} "
                         "--data $GRADER_DATA_DIR/<folder>")
    request = request_of(args)
    bar = _Bar()
    try:
        created = new_challenge(settings, request, on_progress=bar)
    finally:
        bar.stop()
    for line in _summary(created):
        print(line)
    for path in created.written:
        print(f"wrote {path}")
    k, n, low, high = created.interval
    accuracy = f"{args.threshold:.2f}" if abs(k / n - args.threshold) < 0.005 else f"{k / n:.2f} ({k} of {n})"
    print(f"hidden test set: {n} images; an accuracy of {accuracy} measured on it has a 95% interval of "
          f"{low:.2f} to {high:.2f} (during an event, on its public part of {(n + 1) // 2} images: wider)")
    seconds = created.seconds
    print(f"checked {len(created.source.entries)} images in {seconds.get('scan', 0) + seconds.get('pairs', 0):.1f} s")
    for note in created.notes:
        print(f"note: {note}")
    if not args.splits_only:
        print(f"next: grader validate --challenge {args.challenge}; write the model in the reference "
              f"(reference_solutions/{args.challenge}/), then grader new-challenge {args.challenge} --starter-only "
              f"and grader verify-references --challenge {args.challenge}")
    return ExitStatus.PASSED
