"""``grader data``: the challenges' data, ``export`` (the public data, for a coach to hand out, or an
ingestion folder for Dask workers), ``make-split`` (a hidden test set free of near-duplicates of
the public data) and ``pairs`` (contact sheets to calibrate the near-duplicate distance).

``make-split`` has one way of choosing per challenge: a challenge made by ``grader new-challenge``
(its split files headed by the command that chose them, :func:`grader.core.recorded_command`) has
its splits chosen again by that command with ``--splits-only`` (:func:`grader.author.new_challenge`:
the recorded seed, ``--group`` and ``--hidden``); any other by :func:`grader.data.make_split`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import ChallengeError, ExitStatus, Settings, UsageError

if TYPE_CHECKING:
    from grader.core import Challenge

__all__ = ["add_parser", "cmd_data"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``data`` and its commands to the ``grader`` parser's commands."""
    data = sub.add_parser("data", help="the challenges' data: export the public data")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    export = data_sub.add_parser(
        "export", help="write a challenge's public data to a folder",
        description="Write the public data of CHALLENGE to DIR in the layout of the datasets folder (the "
        "public images, extra folders, the added class's public images, the prepared views, README.txt), "
        "never a file of the hidden test set, for a coach to hand out. Then GRADER_DATA_DIR=DIR grader "
        "check --practice team/ works offline on it.")
    export.add_argument("challenge", metavar="CHALLENGE", help="challenge id (`grader challenges` lists them)")
    export.add_argument("dir", metavar="DIR", help="folder to write (new or empty)")
    export.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")
    export.add_argument("--no-views", action="store_true",
                        help="leave out the prepared views (the grader builds them when it checks)")
    export.add_argument("--ingestion", action="store_true",
                        help="also write the hidden sets' images without labels (neutral names, the grader's "
                        "order) and ingestion.json: a data folder for Dask workers that only execute notebooks "
                        "(GRADER_WORKER_DATA_DIR=DIR dask worker ...), the labels staying with the scorer; "
                        "add more challenges with --force")
    make = data_sub.add_parser(
        "make-split", help="write a challenge's hidden test set free of near-duplicates of its public data",
        description="For a challenge made by grader new-challenge: choose its splits again as the command recorded "
        "in its split files does with --splits-only (the same seed, --group and --hidden; --seed and --group here "
        "replace the recorded ones, and are recorded in turn). For a recorded hidden split (gear): choose it again, "
        "20%% of each class, seed 2018, with groups of near-duplicates (dataset.near_duplicate_distance) wholly "
        "hidden or wholly public. For a given test side (CIFAR-10, Fashion-MNIST): list the test images with a "
        "near-duplicate among the training images in dataset.hidden_exclude. Then write the public and practice "
        "splits to match, for every challenge on that hidden test set. Re-verify the references after.")
    make.add_argument("challenge", metavar="CHALLENGE", help="challenge id (`grader challenges` lists them)")
    make.add_argument("--seed", type=int, metavar="N",
                      help="for a challenge made by grader new-challenge: the splits' seed instead of the recorded one")
    make.add_argument("--group", metavar="REGEX",
                      help="for a challenge made by grader new-challenge: the --group pattern instead of the recorded "
                      "one ('' for none)")
    pairs = data_sub.add_parser(
        "pairs", help="contact sheets of near-duplicate pairs per pHash distance, to calibrate the distance",
        description="Write DIR/dNN.png, pairs of the challenge's images side by side at each perceptual-hash "
        "distance up to --max-distance (for a recorded split, pairs anywhere in the dataset; else test against "
        "training images), and DIR/pairs.txt naming them. Look at them and set near_duplicate_distance to the "
        "largest distance at which most pairs are still the same photo.")
    pairs.add_argument("challenge", metavar="CHALLENGE", help="challenge id")
    pairs.add_argument("dir", metavar="DIR", help="folder for the sheets")
    pairs.add_argument("--max-distance", type=int, default=12, metavar="D", help="largest distance shown (default 12)")
    pairs.add_argument("--per-distance", type=int, default=12, metavar="N",
                       help="pairs shown per distance (default 12)")


def cmd_data(args: argparse.Namespace, settings: Settings) -> int:
    """``grader data make-split|pairs|export``."""
    if args.data_command == "make-split":
        return _cmd_make_split(args, settings)
    if args.data_command == "pairs":
        from grader.core import load_challenge  # here for start-up time
        from grader.data import calibration_pairs, list_dataset, write_sheets

        challenge = load_challenge(settings.project_dir, args.challenge)
        unexcluded = challenge.model_copy(update={"dataset": challenge.dataset.model_copy(
            update={"hidden_exclude": None})})
        listing = list_dataset(settings.require_data_dir(), unexcluded)
        found = calibration_pairs(settings, unexcluded, listing, max_distance=args.max_distance)
        for distance, count, path in write_sheets(settings, unexcluded, found, Path(args.dir),
                                                  per_distance=args.per_distance):
            print(f"distance {distance}: {count} pairs, {min(count, args.per_distance)} shown in {path}")
        return ExitStatus.PASSED
    return _cmd_data_export(args, settings)


def _cmd_make_split(args: argparse.Namespace, settings: Settings) -> int:
    """``grader data make-split CHALLENGE [--seed N] [--group REGEX]`` (the module docstring).

    Raises:
        UsageError: ``--seed`` or ``--group`` for a challenge not made by ``grader new-challenge``.
        ChallengeError: the recorded command does not parse.
    """
    from grader.core import load_challenge, recorded_command  # here for start-up time
    from grader.data import HIDDEN_FRACTION, HIDDEN_SEED, make_split

    challenge = load_challenge(settings.project_dir, args.challenge)
    command = recorded_command(challenge)
    if command is not None:
        return _remake_authored(args, settings, challenge, command)
    given = [f"--{name} {shlex.quote(str(value))}" for name, value in (("seed", args.seed), ("group", args.group))
             if value is not None]
    if given:
        raise UsageError(f"{' and '.join(given)}: {args.challenge} was not made by grader new-challenge, and "
                         f"make-split chooses its splits one way only ({HIDDEN_FRACTION:g} of each class, seed "
                         f"{HIDDEN_SEED}, groups of near-duplicates kept whole) so that choosing them again gives "
                         "the recorded files", path=challenge.folder / "challenge.toml",
                         fix=f"run grader data make-split {args.challenge} without them; to group shots of one "
                         "object or choose another seed, make the challenge with grader new-challenge ID --data DIR "
                         "--group REGEX --seed N")
    for line in make_split(settings, args.challenge):
        print(f"wrote {line}")
    print("re-verify the references: grader verify-references --challenge ID, for each challenge above")
    return ExitStatus.PASSED


def _recorded_args(challenge: Challenge, command: str) -> argparse.Namespace:
    """The options of the recorded ``grader new-challenge`` command, parsed by the ``new-challenge``
    parser itself.

    Raises:
        ChallengeError: the command does not parse.
    """
    from grader.cli.new_challenge import add_parser  # here for start-up time

    parser = argparse.ArgumentParser(prog="grader", add_help=False)
    add_parser(parser.add_subparsers(dest="command"))
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return parser.parse_args(shlex.split(command)[1:])
    except (ValueError, SystemExit) as err:  # shlex's unclosed quote; argparse exits on a bad option
        why = said.getvalue().strip().splitlines()[-1:] or [str(err)]
        raise ChallengeError(f"the command recorded at the top of {challenge.id}'s split files, `{command}`, does not "
                             f"parse: {why[0]}", path=challenge.folder.parent / str(challenge.dataset.hidden_split
                                                                                   or challenge.dataset.hidden_exclude),
                             fix=f"choose the splits with grader new-challenge {challenge.id} --data DIR --splits-only "
                             "and the options you want (it records them again)") from None


def _remake_authored(args: argparse.Namespace, settings: Settings, challenge: Challenge, command: str) -> int:
    """Choose the splits of a challenge made by ``grader new-challenge`` again, as its recorded
    ``command`` with ``--splits-only`` does (:func:`grader.cli.new_challenge.request_of` over the recorded
    options, ``--seed`` and ``--group`` replaced where given), the coach's folder read where the
    challenge says it is (``GRADER_DATA_DIR/<source>``)."""
    from grader.author import new_challenge  # here for start-up time
    from grader.cli.new_challenge import request_of

    recorded = _recorded_args(challenge, command)
    recorded.challenge, recorded.splits_only = challenge.id, True
    folder = settings.require_data_dir() / challenge.dataset.source
    recorded.data = str(folder)
    if recorded.labels is not None and challenge.dataset.labels:  # where challenge.toml says the CSV is now
        recorded.labels = str(folder / challenge.dataset.labels)
    if args.seed is not None:
        recorded.seed = args.seed
    if args.group is not None:
        recorded.group = args.group or None
    request = request_of(recorded)
    created = new_challenge(settings, request)
    splits = created.splits
    print(f"{challenge.id} was made by grader new-challenge: its splits chosen again as `{request.command} "
          f"--splits-only` does (seed {splits.seed}, "
          + (f"{splits.fraction:g} of each class hidden" if splits.fraction is not None else "the test side hidden")
          + (f", --group {shlex.quote(request.group)} matched {splits.matched} images" if request.group
             else ", no --group")
          + f"; {splits.groups} groups of 2 or more images kept on one side)")
    for path in created.written:
        print(f"wrote {path}")
    print(f"re-verify the references: grader verify-references --challenge {challenge.id}")
    return ExitStatus.PASSED


def _cmd_data_export(args: argparse.Namespace, settings: Settings) -> int:
    """``grader data export CHALLENGE DIR``: :func:`grader.data.export.export_public_data`, its
    progress on stderr."""
    from grader.data import export_public_data  # here for start-up time

    def progress(done: int, total: int) -> None:
        print(f"    {done} of {total} files", file=sys.stderr, flush=True)

    if args.ingestion:
        from grader.data import export_ingestion  # here for start-up time

        images, size = export_ingestion(settings, args.challenge, Path(args.dir), force=args.force,
                                        views=not args.no_views)
        print(f"wrote the public data and {images} hidden images without labels ({size / 1e6:.1f} MB) of "
              f"{args.challenge} to {args.dir}: an ingestion folder; on a Dask worker: "
              f"GRADER_WORKER_DATA_DIR={args.dir} dask worker ADDRESS")
        return ExitStatus.PASSED
    summary = export_public_data(settings, args.challenge, Path(args.dir), force=args.force,
                                 views=not args.no_views, on_progress=progress)
    print(f"wrote {summary.files} files ({summary.bytes / 1e6:.1f} MB) to {summary.target}: "
          f"{sum(n for _, n in summary.per_class)} public images of {args.challenge}"
          + (f", {summary.added} of the added class" if summary.added else "")
          + "; see README.txt there")
    return ExitStatus.PASSED
