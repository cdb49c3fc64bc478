"""The ``grader`` command line: its parser, built from the commands' modules (one per verb), and
:func:`main`, the only place where errors become exit statuses (:class:`~grader.core.errors.ExitStatus`).

Exit status: 0 every submission passed, 1 some failed, 2 usage or configuration error,
3 harness fault. Heavy libraries (nbclient, torch, matplotlib) are imported only by the
commands that need them, so ``grader --help`` and ``grader challenges`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from grader import __version__
from grader.cli import check, data, event, init, new_challenge, project, serve
from grader.core import (
    DATA_DIR_ENV,
    PROJECT_DIR_ENV,
    PROJECT_FILE,
    ExitStatus,
    GraderError,
    limit_own_blas_threads,
    resolve_settings,
)

__all__ = ["entry", "main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade image-classification notebooks on hidden test sets and write "
        "HTML scorecards.",
        epilog=f"The project (challenges/, rubrics/, reference_solutions/): --project DIR, else ${PROJECT_DIR_ENV}, "
        f"else the nearest {PROJECT_FILE} in the current folder or a parent (`grader init DIR` makes one), else "
        "the challenges shipped with the grader. Exit status: 0 all passed, 1 some failed, 2 usage or "
        "configuration error, 3 harness fault.",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    parser.add_argument("--data-dir", help=f"dataset folder (default: ${DATA_DIR_ENV})")
    parser.add_argument("--project", metavar="DIR",
                        help=f"project folder (default: ${PROJECT_DIR_ENV}, else the nearest {PROJECT_FILE} "
                        "upwards from here, else the shipped challenges)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check.add_parser(sub)
    init.add_parser(sub)
    project.add_parsers(sub)
    data.add_parser(sub)
    new_challenge.add_parser(sub)
    event.add_parser(sub)
    serve.add_parser(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "init":  # before the settings: the project it makes may not exist yet
            return init.cmd_init(args)
        settings = resolve_settings(data_dir=args.data_dir, project_dir=args.project)
        if args.command in ("check", "verify-references"):
            signal.signal(signal.SIGTERM, _interrupt)  # a CI job cancelled: stop as on Ctrl-C
        if args.command == "check":
            with tempfile.TemporaryDirectory(prefix="grader-intake-", ignore_cleanup_errors=True) as workspace:
                return check.cmd_check(args, settings, workspace=Path(workspace))
        if args.command == "verify-references":
            return project.cmd_verify(args, settings)
        if args.command == "challenges":
            return project.cmd_challenges(settings)
        if args.command == "checks":
            return project.cmd_checks()
        if args.command == "data":
            return data.cmd_data(args, settings)
        if args.command == "new-challenge":
            return new_challenge.cmd_new_challenge(args, settings)
        if args.command == "event":
            return event.cmd_event(args, settings)
        if args.command == "serve":
            return serve.cmd_serve(args, settings)
        return project.cmd_validate(settings, challenges=args.challenge)
    except GraderError as err:
        print(f"grader: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as err:  # a bug of the grader's: a harness fault, its traceback logged
        log.critical("internal error: %s: %s", type(err).__name__, err, exc_info=True)
        print(f"grader: internal error ({type(err).__name__}: {err}); its traceback is above: "
              "please report it", file=sys.stderr)
        return ExitStatus.HARNESS


def entry() -> None:
    """The ``grader`` console script and ``python -m grader``: :func:`main`, then a fast exit.

    Everything the grader owns is closed before :func:`main` returns (runs, sandboxes, cgroups,
    thread pools, Dask clients; reports written with :func:`grader.core.files.write_atomic`), so the
    interpreter's own teardown only unloads modules: with scikit-learn and matplotlib loaded that
    took 0.17-0.26 s here, a third of the grader's fixed cost on a small notebook
    (``benchmarks/run.py``). Streams and logging are flushed, then ``os._exit``. Before
    anything loads NumPy, the grader's own process is given one OpenBLAS thread
    (:func:`grader.core.settings.limit_own_blas_threads`; kernels keep the user's setting).
    """
    limit_own_blas_threads()
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)
