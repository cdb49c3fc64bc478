"""Submissions that need a GPU go only to workers with one (issue 17): a challenge profile's
``gpu = true``, the store's claim that leaves them to others, Dask's ``GPU`` resource."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.cli.main import main
from grader.core.errors import UsageError
from grader.core.settings import Settings
from grader.intake.submissions import discover
from grader.pipeline.batch import grade_cohort
from grader.pipeline.grade import GradeOptions
from grader.pipeline.job import CohortOptions, Job, Outcome
from grader.pipeline.resources import gpu_challenges
from grader.sandbox.session import resolve_sandbox
from grader.server.store.store import Store
from grader.server.work.worker import WorkerPool
from tests.support.toy import GOOD_TOY_CELLS, write_submission

GPU_PROFILE = '\n[profiles.gpu]\ndescription = "a GPU"\ngpu = true\n'
# the kernel's GPU and DEVICE as the toy model's prediction of the new images
DEVICE_CELLS = [*GOOD_TOY_CELLS, GOOD_TOY_CELLS[1].replace(
    "    out = []\n",
    "    out = []\n    if images and images[0].size == (64, 48):\n"
    "        return [os.environ.get('CUDA_VISIBLE_DEVICES', '-') + '/' + DEVICE] * len(images)\n")]


def _gpu_toy(make_toy: Callable[..., Settings]) -> Settings:
    settings = make_toy()
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text() + GPU_PROFILE)
    return settings


def _event_created(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``grader event create hack`` (team red, challenge toy) on ``settings``' project, its
    folders in the environment as the CLI reads them; returns the state folder."""
    for name, value in (("PROJECT", settings.project_dir), ("DATA", settings.data_dir),
                        ("CACHE", settings.cache_dir)):
        monkeypatch.setenv(f"GRADER_{name}_DIR", str(value))
    teams = tmp_path / "teams.csv"
    teams.write_text("team\nred\n")
    state = str(tmp_path / "state")
    assert main(["event", "create", "hack", "--challenge", "toy", "--teams", str(teams), "--state", state]) == 0
    return state


def _upload(store: Store, name: str = "toy.ipynb") -> Any:
    return store.store_upload(io.BytesIO(b'{"cells": []}' + name.encode()), filename=name, max_bytes=10_000)


def test_a_profile_needing_a_gpu_is_left_to_workers_with_one(make_toy: Callable[..., Settings],
                                                               tmp_path: Path, database_url: str | None) -> None:
    settings = _gpu_toy(make_toy)
    assert gpu_challenges(settings, "gpu") == {"toy"} and gpu_challenges(settings, "ci") == frozenset()
    store = Store(tmp_path / "state", database_url)
    try:
        created = store.create_event("hack", challenges=["toy", "plain"], teams=["red"])
        team = created.event.name, store.teams("hack")[0].id
        first = store.submit(*team, challenge="toy", upload=_upload(store, "a.ipynb"))
        second = store.submit(*team, challenge="plain", upload=_upload(store, "b.ipynb"))
        # a worker without a GPU skips the older GPU job and takes the next; none is left for it
        cpu = WorkerPool(store, settings, GradeOptions(profile="gpu"), workers=1)
        assert cpu._skip == {"toy"}
        taken = store.claim("cpu:1", lease_s=60, skip_challenges=cpu._skip)
        assert taken is not None and taken.id == second.id
        assert store.claim("cpu:1", lease_s=60, skip_challenges=cpu._skip) is None
        # a worker with a GPU (or one sending jobs to Dask, which routes them) takes it
        assert WorkerPool(store, settings, GradeOptions(profile="gpu"), workers=1, gpus=("0",))._skip == frozenset()
        assert WorkerPool(store, settings, GradeOptions(profile="gpu"), scheduler="tcp://127.0.0.1:1")._skip == set()
        taken = store.claim("gpu:1", lease_s=60)
        assert taken is not None and taken.id == first.id
        # under a profile that needs no GPU, nothing is skipped
        assert WorkerPool(store, settings, GradeOptions(profile="ci"), workers=1)._skip == frozenset()
    finally:
        store.close()


def test_serving_an_event_that_needs_a_gpu_without_one_is_refused_on_sqlite(
        make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    state = _event_created(_gpu_toy(make_toy), tmp_path, monkeypatch)
    capsys.readouterr()
    code = main(["serve", "--event", "hack", "--state", state, "--profile", "gpu", "--device", "cpu",
                 "--sandbox", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert "toy needs a GPU under profile gpu, and this server's workers have none: nothing would grade them" in err
    assert "--gpus" in err and "--profile ci" in err


def _grade(settings: Settings, folder: Path, scheduler: str) -> Outcome:
    options = GradeOptions(profile="gpu", sandbox=resolve_sandbox("none"))
    [outcome] = grade_cohort([Job(1, discover(folder), folder.name)], settings, options,
                             CohortOptions(executor="dask", scheduler=scheduler, use_cache=False),
                             write=lambda _: None)
    return outcome


@pytest.mark.kernel
def test_dask_sends_a_gpu_job_only_to_a_gpu_worker(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    settings = _gpu_toy(make_toy)
    folder = write_submission(tmp_path / "subs", "alpha", DEVICE_CELLS)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with pytest.raises(UsageError, match="no Dask worker offers the GPU resource"):
            _grade(settings, folder, cluster.scheduler_address)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  resources={"GPU": 1}, env={"CUDA_VISIBLE_DEVICES": "3"}) as cluster:
        outcome = _grade(settings, folder, cluster.scheduler_address)
    assert outcome.error is None and outcome.result is not None
    # it ran on the GPU worker, told DEVICE=cuda, though this client has no GPU
    assert outcome.result.notebooks[0].new_images[0].prediction == "3/cuda"


def test_serve_runs_one_submission_per_gpu_by_default(make_toy: Callable[..., Settings], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.server.serve

    state = _event_created(_gpu_toy(make_toy), tmp_path, monkeypatch)
    seen: list[dict[str, Any]] = []

    def served(store: Store, *args: Any, **kwargs: Any) -> int:
        seen.append(kwargs)
        store.close()
        return 0

    monkeypatch.setattr(grader.server.serve, "serve", served)
    base = ["serve", "--event", "hack", "--state", state, "--profile", "gpu", "--sandbox", "none"]
    assert main([*base, "--gpus", "0,1"]) == 0
    assert main([*base, "--gpus", "0,1", "--workers", "3"]) == 0
    assert [(k["workers"], k["gpus"]) for k in seen] == [(2, ("0", "1")), (3, ("0", "1"))]
