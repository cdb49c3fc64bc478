"""The ingestion/scoring split (issue 17): a worker executes notebooks on a data folder without the
hidden labels; the scorer, which has them, scores what the run left, to the same result."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.core.errors import ConfigError, HarnessError
from grader.core.settings import Settings
from grader.data.ingestion import MANIFEST, export_ingestion, ingestion_sets
from grader.intake.submissions import discover
from grader.pipeline.batch import grade_cohort
from grader.pipeline.grade import GradeOptions, execute_submission, grade_submission, score_submission
from grader.pipeline.job import CohortOptions, Job, Outcome
from grader.sandbox.session import resolve_sandbox
from tests.support.toy import GOOD_TOY_CELLS, write_submission

OPTIONS = GradeOptions(profile="ci", sandbox=resolve_sandbox("none"))


def _ingestion(settings: Settings, target: Path) -> Settings:
    export_ingestion(settings, "toy", target)
    return dataclasses.replace(settings, data_dir=target, cache_dir=target.parent / "worker-cache")


TIMES = {"started", "finished", "path", "wall_s", "seconds", "probe_s", "inference_s"}


def _same(a: Any, b: Any) -> None:
    """Two results agree but for times (fields, and "ran in 3 s" in messages) and the submission's path."""
    def plain(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\d+(\.\d+)? s\b", "N s", value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k not in TIMES}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    assert plain(json.loads(a.model_dump_json())) == plain(json.loads(b.model_dump_json()))


def test_the_ingestion_folder_holds_the_hidden_images_without_labels(make_toy: Callable[..., Settings],
                                                                      tmp_path: Path) -> None:
    settings = make_toy()
    worker = _ingestion(settings, tmp_path / "ingest")
    assert worker.data_dir is not None
    sets = ingestion_sets(worker.data_dir, "toy")
    assert sets.hidden.labels == () and len(sets.hidden.files) == 6 and sets.added is None
    # nothing under ingestion/ is named after a class or an original file, and the manifest has no label
    hidden_names = {f"{c}{i}.png" for c in ("red", "green", "blue") for i in (0, 1)}
    written = {p.name for p in (worker.data_dir / "ingestion").rglob("*") if p.is_file()}
    assert written == set(sets.hidden.files) | {".complete"}
    every = {p.name for p in worker.data_dir.rglob("*")}
    assert not hidden_names & every, "a hidden image under its own name"
    manifest = (worker.data_dir / MANIFEST).read_text()
    assert not any(c in manifest for c in ("red", "green", "blue"))
    # a second export adds nothing and keeps the manifest readable
    export_ingestion(settings, "toy", worker.data_dir, force=True)
    assert ingestion_sets(worker.data_dir, "toy").hidden.files == sets.hidden.files
    # an ingestion folder cannot be the source of another one
    with pytest.raises(ConfigError, match="holds no labels"):
        export_ingestion(worker, "toy", tmp_path / "again")


@pytest.mark.kernel
def test_executed_without_labels_and_scored_with_them_is_graded_alike(make_toy: Callable[..., Settings],
                                                                      tmp_path: Path) -> None:
    settings = make_toy()
    worker = _ingestion(settings, tmp_path / "ingest")
    submission = discover(write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS))
    whole = grade_submission(submission, settings, OPTIONS)
    assert whole.verdict == "pass"
    executed = execute_submission(submission, worker, OPTIONS)
    assert executed.notebooks[0].new_images is None  # no dataset hashes on the worker: scored where they are
    with pytest.raises(ConfigError, match="holds no labels"):
        grade_submission(submission, worker, OPTIONS)
    with pytest.raises(ConfigError, match="holds no labels"):
        score_submission(executed, submission, worker, OPTIONS)
    split = score_submission(executed.portable(), submission, settings, OPTIONS)
    _same(split, whole)
    assert [r.file for r in split.notebooks[0].new_images] == ["new0.png", "new1.png"]


@pytest.mark.kernel
def test_predictions_for_other_images_are_refused(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    worker = _ingestion(settings, tmp_path / "ingest")
    manifest = json.loads((tmp_path / "ingest" / MANIFEST).read_text())
    hidden = manifest["challenges"]["toy"]["hidden"]
    other = "toy-0000000000000000"  # as an export of another hidden test set is named
    (tmp_path / "ingest" / hidden["dir"]).rename(tmp_path / "ingest" / "ingestion" / other)
    hidden.update(id=other, dir=f"ingestion/{other}")
    (tmp_path / "ingest" / MANIFEST).write_text(json.dumps(manifest))
    submission = discover(write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS))
    executed = execute_submission(submission, worker, OPTIONS).portable()
    with pytest.raises(HarnessError, match="ingestion folder is out of date"):
        score_submission(executed, submission, settings, OPTIONS)


@pytest.mark.kernel
def test_dask_workers_with_an_ingestion_folder_execute_and_the_client_scores(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    settings = make_toy()
    worker = _ingestion(settings, tmp_path / "ingest")
    folder = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    whole = grade_submission(discover(folder), settings, OPTIONS)
    outcomes: dict[str, Outcome] = {}
    env = {"GRADER_WORKER_DATA_DIR": str(worker.data_dir)}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env=env) as cluster:
        for scoring in ("here", "workers"):
            [outcome] = grade_cohort([Job(1, discover(folder), "alpha")], settings, OPTIONS,
                                     CohortOptions(executor="dask", scheduler=cluster.scheduler_address,
                                                   use_cache=False, scoring=scoring),  # type: ignore[arg-type]
                                     write=lambda _: None)
            outcomes[scoring] = outcome
    here = outcomes["here"]
    assert here.error is None and here.result is not None
    _same(here.result, whole)
    # workers asked to grade whole submissions on the ingestion folder: a clear setup fault
    assert outcomes["workers"].result is None
    assert "holds no labels" in (outcomes["workers"].error or "")
