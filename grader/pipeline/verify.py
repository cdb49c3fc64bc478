"""``grader verify-references``: every reference solution passes its rubric, every starter fails.

Each notebook goes through the real ``grader check`` path: a submission folder is built around it
(the notebook and the challenge's ``[verify] new_images``), graded, and its ``result.json`` kept
under ``reference_solutions/results/`` so that ``RESULTS.md`` can be regenerated from real runs.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.core import Challenge, DataError, Settings, UsageError, challenge_ids, load_challenge
from grader.intake import discover
from grader.pipeline.grade import GradeOptions
from grader.pipeline.job import grade_job
from grader.pipeline.resources import kernel_env
from grader.report import write_submission
from grader.score import SubmissionResult

__all__ = ["Expectation", "Verification", "targets", "verify"]

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
        want = "pass" if self.expectation.role == "reference" else "fail"
        return self.result.verdict == want


def targets(settings: Settings, challenge: str | None) -> list[Expectation]:
    """Reference solutions and starters of one challenge (or all), in a stable order.

    Raises:
        ChallengeError: ``challenge`` is not a known id.
    """
    ids = [load_challenge(settings.project_dir, challenge).id] if challenge else challenge_ids(
        settings.project_dir)
    found = []
    for cid in ids:
        refs = sorted((settings.project_dir / "reference_solutions" / cid).glob("*.ipynb"))
        found += [Expectation(cid, "reference", p.stem, p) for p in refs]
        starter = settings.project_dir / "challenges" / cid / "starter.ipynb"
        if starter.is_file():
            found.append(Expectation(cid, "starter", "starter", starter))
    return found


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
        ConfigError: a challenge, rubric or dataset problem.
    """
    found = targets(settings, challenge)
    if not found:
        raise UsageError("no reference solutions or starters found",
                         path=settings.project_dir / "reference_solutions")
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
