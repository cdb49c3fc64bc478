"""The options and checks that several commands share: ``--sandbox``, ``--executor``, the default
profile, the state folder's help, the device and GPUs to use, and :func:`validate_options`, which
finds the coach's mistakes before any notebook runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from grader.core import STATE_DIR_ENV, Settings, UsageError, environ_snapshot, sandbox_uid

if TYPE_CHECKING:
    from grader.sandbox import Sandbox

__all__ = ["DEFAULT_PROFILE", "STATE_HELP", "announced", "detect_device", "executor_options", "gpu_ids",
           "resolve_sandbox", "sandbox_option", "validate_options"]

DEFAULT_PROFILE = "full"
STATE_HELP = (f"state folder: the database and the uploads (default: ${STATE_DIR_ENV}, else "
              "$XDG_DATA_HOME/grader or ~/.local/share/grader)")


def sandbox_option(parser: argparse.ArgumentParser) -> None:
    """``--sandbox auto|bwrap|none``, for ``check``, ``verify-references`` and ``serve``."""
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto",
                        help="where notebooks run: bwrap (bubblewrap: no network, own pid "
                        "namespace, non-root uid, memory/process/file-size limits), none (as the "
                        "grader's user), auto (bwrap when it works, else none with a warning on "
                        "every scorecard; the default)")


def executor_options(parser: argparse.ArgumentParser, *, local: str) -> None:
    """``--executor local|dask`` and ``--scheduler``, for ``check`` and ``serve``; ``local`` says
    where the notebooks run without Dask."""
    parser.add_argument("--executor", choices=["local", "dask"], default="local",
                        help=f"local: {local} (the default); dask: one task a submission on the Dask "
                        "cluster at --scheduler (workers need the same paths)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address for --executor dask, e.g. tcp://host:8786")
    parser.add_argument("--scoring", choices=["here", "workers"], default="here",
                        help="with --executor dask, where the hidden labels are: here (the default: the workers "
                        "only run the notebooks and send back the probe's predictions, scored on this machine, "
                        "so a worker may hold an ingestion folder of `grader data export --ingestion`) or "
                        "workers (each worker grades whole submissions and needs the full datasets)")


def resolve_sandbox(choice: str) -> Sandbox:
    """The sandbox ``--sandbox choice`` names: :func:`grader.sandbox.session.resolve_sandbox`."""
    from grader.sandbox import resolve_sandbox as resolve  # here for start-up time

    return resolve(choice)


def announced(sandbox: Sandbox) -> Sandbox:
    """``sandbox``, once said on stderr (its warning, where it has one)."""
    if sandbox.warning:
        print(f"grader: warning: {sandbox.warning}", file=sys.stderr)
    else:
        print(f"sandbox: {sandbox.description}", file=sys.stderr)
    return sandbox


def detect_device(choice: str) -> str:
    """``--device``'s value: ``cpu`` or ``cuda`` as given; for ``auto``, cuda when an NVIDIA GPU
    is present (``/dev/nvidia0`` or ``/dev/nvidiactl``), else cpu."""
    if choice != "auto":
        return choice
    return "cuda" if os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl") else "cpu"


def gpu_ids(choice: str | None, device: str) -> tuple[str, ...]:
    """GPU ids from ``--gpus 0,1``, else every GPU ``nvidia-smi`` lists when the device is cuda."""
    if choice:
        return tuple(g.strip() for g in choice.split(",") if g.strip())
    if device != "cuda":
        return ()
    import subprocess  # here for start-up time

    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10, check=True,
                                env=environ_snapshot()).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in listed.splitlines() if line.strip())


def _known_profiles(settings: Settings) -> list[str]:
    """The profiles any challenge declares (``[profiles.NAME]`` in ``challenge.toml``), sorted;
    when none declares one, every challenge runs with its rubric's base parameters and only the
    default profile (``full``) is known.

    Raises:
        ChallengeError: a ``challenge.toml`` is invalid.
    """
    from grader.core import challenge_ids, load_challenge  # here for start-up time

    declared = {name for cid in challenge_ids(settings.project_dir)
                for name in load_challenge(settings.project_dir, cid).profiles}
    return sorted(declared) or [DEFAULT_PROFILE]


def validate_options(args: argparse.Namespace, settings: Settings) -> None:
    """Find the coach's mistakes before any notebook runs: an unknown ``--profile`` or
    ``--challenge``, a ``--jobs`` below 1, a bad ``GRADER_SANDBOX_UID``.

    Raises:
        UsageError: an option names something that does not exist (exit 2, with the fix).
        ConfigError: a setting is wrong (exit 2, with the fix).
    """
    from grader.core import challenge_ids  # here for start-up time

    if getattr(args, "jobs", 1) < 1:
        raise UsageError(f"--jobs {args.jobs}: it must be at least 1",
                         fix="pass --jobs 1 (one submission at a time) or more")
    known = challenge_ids(settings.project_dir)
    if args.challenge is not None and args.challenge not in known:
        raise UsageError(f"--challenge {args.challenge}: no such challenge; known: "
                         f"{', '.join(known) or 'none'}",
                         fix="pass one of the known ids (`grader challenges` lists them), or leave "
                         "--challenge out to read it from each notebook")
    profiles = _known_profiles(settings)
    if args.profile not in profiles:
        raise UsageError(f"--profile {args.profile}: no challenge declares this profile; known: "
                         f"{', '.join(profiles)}",
                         fix=f"pass one of {', '.join(profiles)} (each challenge.toml declares its "
                         "profiles under [profiles])")
    sandbox_uid()
