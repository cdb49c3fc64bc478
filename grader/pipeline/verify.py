"""``grader verify-references``: every reference solution passes its rubric, every starter fails.

Written answers (coach-graded criteria) cannot pass without a coach: a reference passes when its
automatic criteria pass and each written answer is present (``awaiting`` the coach); a starter's
written answers must fail (missing, or still the placeholder).

Each notebook goes through the real ``grader check`` path: a submission folder is built around it
(the notebook and the challenge's ``[verify] new_images``), graded, and its ``result.json`` kept
under ``reference_solutions/results/`` so that ``RESULTS.md`` can be regenerated from real runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grader.core import (
    Challenge,
    ChallengeError,
    DataError,
    Settings,
    UsageError,
    challenge_ids,
    check_starter,
    load_challenge,
    reference_folder,
)
from grader.intake import discover
from grader.pipeline.grade import GradeOptions
from grader.pipeline.job import grade_job
from grader.pipeline.resources import kernel_env
from grader.report import write_submission
from grader.score import SubmissionResult

__all__ = ["SOLUTION_MARKER", "Expectation", "Verification", "made_from_problem", "reference_digest", "targets",
           "verify"]

Role = Literal["reference", "starter"]


@dataclass(frozen=True)
class Expectation:
    """A notebook to verify: its challenge, role (reference passes, starter fails) and framework."""

    challenge: str
    role: Role
    framework: str
    notebook: Path

    @property
    def name(self) -> str:
        return f"{self.challenge}-{self.framework if self.role == 'reference' else 'starter'}"


@dataclass(frozen=True)
class Verification:
    """One verified notebook: what was expected, what happened, and whether they agree."""

    expectation: Expectation
    result: SubmissionResult

    @property
    def ok(self) -> bool:
        """Whether it is as expected. A reference: every required automatic criterion passes (its
        verdict ``pass``, or ``awaiting`` the coach) and each written answer is present, awaiting the
        coach. A starter: its verdict ``fail``, and each written answer missing or still the placeholder."""
        written = [c for nb in self.result.notebooks for c in nb.criteria if c.coach_graded]
        if self.expectation.role == "reference":
            return self.result.verdict in ("pass", "awaiting") and all(c.status == "awaiting" for c in written)
        return self.result.verdict == "fail" and all(c.status == "fail" for c in written)


def targets(settings: Settings, challenge: str | None) -> list[Expectation]:
    """Reference solutions and starters of one challenge (or all), in a stable order.

    Raises:
        ChallengeError: ``challenge`` is not a known id, or a challenge has no starter notebook
            (:func:`grader.core.authoring.check_starter`).
    """
    ids = [load_challenge(settings.project_dir, challenge).id] if challenge else challenge_ids(
        settings.project_dir)
    found = []
    for cid in ids:
        refs = sorted(reference_folder(settings.project_dir, cid).glob("*.ipynb"))
        found += [Expectation(cid, "reference", p.stem, p) for p in refs]
        starter = check_starter(load_challenge(settings.project_dir, cid))
        found.append(Expectation(cid, "starter", "starter", starter))
    return found


# nbgrader's solution markers (``### BEGIN SOLUTION``, ``### END SOLUTION``), a line each
SOLUTION_MARKER = re.compile(r"^\s*#+\s*(?:BEGIN|END) SOLUTION\s*$")


def reference_digest(notebook: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a notebook's cells as a starter is made from them: each cell's type and
    source, the solution markers' lines left out; outputs, execution counts and metadata are not
    read, so running the reference keeps its digest and adding or removing markers does too.

    Args:
        notebook: the notebook as nbformat reads it (or its JSON), version 4.
    """
    h = hashlib.sha256()
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        kept = "".join(line for line in text.splitlines(keepends=True) if not SOLUTION_MARKER.match(line))
        h.update(f"{cell.get('cell_type', '')}\0{kept.rstrip()}\0".encode())
    return h.hexdigest()


def made_from_problem(starter: Path) -> str | None:
    """Why ``starter`` was not made from its challenge's current reference, or None.

    A starter made by ``grader new-challenge`` carries ``metadata.grader.made_from``: the
    reference (relative to the project folder holding the challenge) and its
    :func:`reference_digest`, and the command that remakes it. A starter without it is not
    checked.

    Returns:
        None when the digest matches; else a message naming the starter, the reference and the
        command that remakes the starter.
    """
    try:
        raw = json.loads(starter.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{starter}: cannot read it ({err})"
    made = raw.get("metadata", {}).get("grader", {}).get("made_from") if isinstance(raw, dict) else None
    if not isinstance(made, dict):
        return None
    reference = starter.parents[2] / str(made.get("reference", ""))
    command = made.get("command") or "grader new-challenge ID --starter-only --solution NOTEBOOK"
    try:
        current = reference_digest(json.loads(reference.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        return f"{starter}: its reference {reference} cannot be read ({err}); remake the starter: {command}"
    if current != made.get("sha256"):
        return (f"{starter} was made from another version of {reference} (the reference changed since); "
                f"remake the starter: {command}")
    return None


def _submission_folder(root: Path, target: Expectation, challenge: Challenge,
                       data_dir: Path) -> Path:
    folder = root / target.name
    (folder / "new_images").mkdir(parents=True)
    shutil.copy(target.notebook, folder / f"{target.challenge}.ipynb")
    for name in challenge.verify.new_images:
        source = data_dir / name if "/" in name else data_dir / "new_images" / name
        if not source.is_file():
            raise DataError(f"new image {name} of challenge {challenge.id} is missing",
                            path=source, fix="point GRADER_DATA_DIR at the full datasets folder")
        shutil.copy(source, folder / "new_images" / Path(name).name)
    return folder


def verify(settings: Settings, *, profile: str, challenge: str | None, out: Path,
           options: GradeOptions,
           on_result: Callable[[Verification], None] | None = None, jobs: int = 1) -> list[Verification]:
    """Grade every target through the check path; write scorecards under ``out``.

    ``jobs`` targets are graded at once (the references first, the longest runs), each kernel
    given ``cores // jobs`` threads as ``grader check --jobs`` gives them; ``on_result`` is called
    as each ends, one at a time. The list comes back in the targets' order.

    Raises:
        UsageError: no reference or starter was found.
        ChallengeError: a starter made by ``grader new-challenge`` from another version of its
            reference (:func:`made_from_problem`; the message names the command that remakes it).
        ConfigError: a challenge, rubric or dataset problem.
    """
    found = targets(settings, challenge)
    if not found:
        raise UsageError("no reference solutions or starters found",
                         path=settings.project_dir / "reference_solutions")
    stale = [p for t in found if t.role == "starter" and (p := made_from_problem(t.notebook)) is not None]
    if stale:
        raise ChallengeError("starters not made from their current reference: " + "; ".join(stale),
                             fix="run the command named for each, then verify again")
    data_dir = settings.require_data_dir()
    done: dict[Expectation, Verification] = {}
    lock = threading.Lock()
    threads = options.kernel_env or kernel_env(None, jobs)

    def grade(target: Expectation, folder: Path) -> None:
        opts = dataclasses.replace(options, profile=profile, challenge=target.challenge, kernel_env=threads)
        graded = grade_job(discover(folder), settings, opts)  # no cache: every target runs
        with lock:
            write_submission(out, graded.result, target.name, graded.scorecard)
            done[target] = Verification(target, graded.result)
            if on_result is not None:
                on_result(done[target])

    with tempfile.TemporaryDirectory(prefix="grader-verify-") as tmp:
        folders = {t: _submission_folder(Path(tmp), t, load_challenge(settings.project_dir, t.challenge), data_dir)
                   for t in found}
        order = sorted(found, key=lambda t: t.role != "reference")  # stable: challenge order within a role
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="grader-verify") as pool:
            futures = [pool.submit(grade, t, folders[t]) for t in order]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # Ctrl-C, SIGTERM or an error: start no other, stop the running ones
                from grader.execute import stop_all_runs

                for future in futures:
                    future.cancel()
                stop_all_runs()
                raise
    return [done[t] for t in found]
