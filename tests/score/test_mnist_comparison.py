"""Seed 001's comparison (grader.data.mnist): MNIST's training part in the view without its test labels, its
test images as a second hidden set, ``predict_mnist`` measured and shown beside CIFAR-10's figure,
the optional ``mnist_accuracy`` check and the rubric's ``enabled = false`` switch."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from grader.core.challenge import Challenge, load_challenge
from grader.core.settings import Settings
from grader.data.hidden import ensure_hidden_test_set
from grader.data.mnist import ensure_mnist_test_set
from grader.data.store import SHUFFLE_SEED
from grader.data.views import ensure_public_view
from grader.evidence.records import CellRecord, Evidence, ExecutionFacts, ProbeFacts, ProbeOutput, RunResult
from grader.execute.prepare import probe_config
from grader.report.render import render_scorecard
from grader.score.checks import check_names, get_check
from grader.score.rubric import Rubric, load_rubric
from grader.score.score import score_notebook
from grader.score.scorecard import Environment, SubmissionResult
from tests.conftest import REPO
from tests.support.toy import build_toy

CIFAR = load_challenge(REPO, "cifar10-mlp")
CIFAR_RUBRIC = load_rubric(REPO, "cifar10-mlp")
CIFAR_LABELS = ("cat", "dog", "ship", "truck", "cat", "dog", "frog", "bird", "cat", "deer")
MNIST_LABELS = tuple(str(i % 10) for i in range(20))


def _toy_with_mnist(tmp_path: Path, *, n_train: int = 30, n_test: int = 20) -> tuple[Settings, dict[str, Any]]:
    """The toy project with ``[dataset.mnist]`` and a small synthetic mnist.npz in its data folder."""
    settings = build_toy(tmp_path)
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace(
        "[contract]\n", '[dataset.mnist]\nsource = "mnist/mnist.npz"\n\n[contract]\nmnist = "predict_mnist"\n'))
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test).astype(np.uint8)}
    assert settings.data_dir is not None
    (settings.data_dir / "mnist").mkdir()
    np.savez(settings.data_dir / "mnist" / "mnist.npz", **arrays)  # type: ignore[arg-type]
    return settings, arrays


def test_the_view_holds_mnist_training_data_and_never_its_test_part(tmp_path: Path) -> None:
    settings, arrays = _toy_with_mnist(tmp_path)
    challenge = load_challenge(settings.project_dir, "toy")
    view = ensure_public_view(settings, challenge)
    npzs = sorted(p.relative_to(view).as_posix() for p in view.rglob("*.npz"))
    assert npzs == ["mnist/mnist_train.npz"]
    with np.load(view / "mnist" / "mnist_train.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_train", "y_train"]
        assert np.array_equal(npz["x_train"], arrays["x_train"])
        assert np.array_equal(npz["y_train"], arrays["y_train"])
    hidden = ensure_mnist_test_set(settings, challenge)
    assert hidden is not None and not hidden.images_dir.is_relative_to(view)


def test_the_hidden_pngs_are_x_test_in_the_fixed_shuffled_order(tmp_path: Path) -> None:
    settings, arrays = _toy_with_mnist(tmp_path)
    challenge = load_challenge(settings.project_dir, "toy")
    hidden = ensure_mnist_test_set(settings, challenge)
    assert hidden is not None
    order = list(range(20))
    random.Random(SHUFFLE_SEED).shuffle(order)
    assert order != list(range(20))
    assert hidden.files == tuple(f"{i:05d}.png" for i in range(20))
    assert hidden.labels == tuple(str(int(arrays["y_test"][j])) for j in order)
    for name, j in zip(hidden.files, order, strict=True):
        with Image.open(hidden.images_dir / name) as im:
            assert im.mode == "L" and im.size == (28, 28)
            assert np.array_equal(np.asarray(im), arrays["x_test"][j])
    assert sorted(p.name for p in hidden.images_dir.iterdir() if p.suffix == ".png") == list(hidden.files)
    assert ensure_mnist_test_set(settings, challenge) == hidden  # cached: the same set again
    config = probe_config(challenge, ensure_hidden_test_set(settings, challenge), None, tmp_path, [],
                          mnist=hidden)
    assert config["extra_sets"] == {"mnist": {"fn": "predict_mnist", "dir": str(hidden.images_dir),
                                              "files": list(hidden.files), "image_mode": "L", "optional": True}}
    assert "labels" not in str(config)  # the probe is told file names, never labels


def test_a_challenge_without_mnist_has_no_second_set(tmp_path: Path) -> None:
    settings = build_toy(tmp_path)
    assert ensure_mnist_test_set(settings, load_challenge(settings.project_dir, "toy")) is None


def test_the_real_mnist_file_loads_and_cifar10_mlp_asks_for_it() -> None:
    from grader.data.mnist import load_mnist
    from tests.conftest import real_data_dir

    assert CIFAR.dataset.mnist is not None and CIFAR.contract.mnist == "predict_mnist"
    data = real_data_dir()
    if data is None or not (data / CIFAR.dataset.mnist.source).is_file():
        pytest.skip("no datasets folder")
    arrays = load_mnist(data, CIFAR.dataset.mnist)
    assert arrays["x_test"].shape == (10000, 28, 28) and arrays["y_train"].shape == (60000,)


def _probe_kernel(ns: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Run the probe's source as the kernel would, with ``ns`` as the kernel's namespace."""
    import json

    source = (REPO / "grader" / "student" / "kernel" / "probe.py").read_text()

    class Shell:
        user_ns = ns

    glb: dict[str, Any] = {"get_ipython": lambda: Shell()}
    exec(compile(source, "probe.py", "exec"), glb)  # the grader's own file, not the student's
    glb["_grader_probe_hidden"](config)  # the held-out sets: the probe's hidden step (grader.sandbox.gate)
    out: dict[str, Any] = json.loads(Path(config["hidden_out"]).read_text())
    return out


def test_the_probe_hands_predict_mnist_grayscale_images_and_skips_it_when_undefined(tmp_path: Path) -> None:
    settings, _ = _toy_with_mnist(tmp_path)
    challenge = load_challenge(settings.project_dir, "toy")
    hidden, mnist = ensure_hidden_test_set(settings, challenge), ensure_mnist_test_set(settings, challenge)
    config = probe_config(challenge, hidden, None, tmp_path / "none", [], mnist=mnist)
    config["out"], config["hidden_out"] = str(tmp_path / "probe.json"), str(tmp_path / "hidden.json")
    modes: list[str] = []

    def predict_mnist(images: list[Any]) -> list[str]:
        modes.extend(im.mode for im in images)
        return ["7"] * len(images)

    ns: dict[str, Any] = {"CLASS_NAMES": ["red", "green", "blue"], "predict": lambda ims: ["red"] * len(ims),
                          "predict_mnist": predict_mnist}
    out = _probe_kernel(ns, config)
    assert out["extra_sets"]["mnist"]["predictions"] == ["7"] * 20 and set(modes) == {"L"}
    del ns["predict_mnist"]
    assert "mnist" not in _probe_kernel(ns, config)["extra_sets"]  # optional: nothing, not an error


def _facts() -> ExecutionFacts:
    return ExecutionFacts(status="ok", message="", failed_cell=None, sources=("a",), wall_s=5.0, sandboxed=False,
                          cells=(CellRecord(index=0, status="ok", seconds=1.0, error=None, execution_count=1),),
                          probe=ProbeFacts(status="ok", seconds=1.0, message=""))


def _probe(mnist: list[str] | None, *, error: str | None = None) -> ProbeOutput:
    data: dict[str, Any] = {"schema": 1, "class_names": list(CIFAR.dataset.classes),
                            "models": {"predict": {"predictions": ["cat"] * 6 + ["ship"] * 4}}}
    if mnist is not None or error:
        data["extra_sets"] = {"mnist": {"predictions": mnist, "seconds": 2.0} if mnist is not None
                              else {"error": error}}
    return ProbeOutput.model_validate(data)


def _evidence(probe: ProbeOutput | None, *, challenge: Challenge = CIFAR,
              mnist_labels: tuple[str, ...] = MNIST_LABELS) -> Evidence:
    return Evidence(notebook="nb.ipynb", challenge=challenge, profile="ci", execution=_facts(), probe=probe,
                    probe_error=None if probe else "the probe did not run", hidden_labels=CIFAR_LABELS,
                    new_images=(), model_files=(), output_text="", mnist_labels=mnist_labels)


def _check(ev: Evidence, **params: Any) -> Any:
    spec = get_check("mnist_accuracy")
    return spec.evaluate(ev, spec.params.model_validate(params))


RIGHT_18 = list(MNIST_LABELS[:18]) + ["x", "x"]  # 18 of 20 right: 0.90


def test_the_check_verdicts_and_messages() -> None:
    assert "mnist_accuracy" in check_names()
    assert get_check("mnist_accuracy").run.__doc__ and "predict_mnist" in str(get_check("mnist_accuracy").run.__doc__)
    ok = _check(_evidence(_probe(RIGHT_18)), threshold=0.9)
    assert ok.status == "pass"
    assert ok.message.startswith("`predict_mnist` scored 0.900 on 20 MNIST test images (95% interval 0.699-0.972")
    assert ok.measured["accuracy"] == 0.9 and ok.measured["n"] == 20
    low = _check(_evidence(_probe(RIGHT_18)), threshold=0.95)
    assert low.status == "fail" and low.message.endswith("needed 0.95)")
    assert _check(_evidence(_probe(None))).message == "`predict_mnist` is not defined"
    assert _check(_evidence(_probe(None, error="raised on images 0-19: ValueError: x"))).message == (
        "`predict_mnist` raised on images 0-19: ValueError: x")
    assert _check(_evidence(_probe(["1"] * 3))).message == "`predict_mnist` returned 3 answers for 20 images"
    assert _check(_evidence(_probe(RIGHT_18), mnist_labels=())).message == (
        "this challenge has no MNIST test set to measure")
    assert _check(_evidence(None)).message == "not measured: the probe did not run"


def _scorecard(probe: ProbeOutput, rubric: Rubric = CIFAR_RUBRIC) -> tuple[Any, str]:
    run = RunResult(facts=_facts(), executed=None, probe=probe, probe_error=None, started_at=0.0)
    nb = score_notebook(Path("nb.ipynb"), CIFAR, rubric, "ci", _facts(), run, CIFAR_LABELS, (), (), (),
                        mnist_labels=MNIST_LABELS)
    result = SubmissionResult(submission="t", path="t", verdict=nb.verdict, score=nb.score, max_score=nb.max_score,
                              notebooks=[nb], started="2026-01-01T00:00:00+00:00",
                              finished="2026-01-01T00:00:00+00:00",
                              environment=Environment(grader="0", python="3", platform="linux", device="cpu",
                                                      sandbox="none"))
    return nb, render_scorecard(result)


def test_the_scorecard_shows_the_comparison_only_when_measured() -> None:
    nb, html = _scorecard(_probe(RIGHT_18))
    mnist = [m for m in nb.models if m.role == "mnist"]
    assert len(mnist) == 1 and mnist[0].function == "predict_mnist" and mnist[0].n == 20
    assert mnist[0].accuracy == pytest.approx(0.9) and mnist[0].accuracy_ci is not None
    assert ("MLP on MNIST: accuracy 0.90 (95% interval 0.70-0.97, 20 images) beside 0.20 on the hidden test set</h3>"
            in html)
    assert "<code>predict_mnist</code> on the 20 MNIST test images" in html
    assert html.count("MLP on MNIST") == 1
    assert "<h3>predict_mnist on the" not in html  # not in the models' own tables
    for probe in (_probe(None), _probe(None, error="raised on images 0-19: ValueError: x")):
        nb, html = _scorecard(probe)
        assert [m.role for m in nb.models] == ["predict"] and "MLP on MNIST" not in html


def test_a_disabled_criterion_is_not_graded_or_counted() -> None:
    assert [c.id for c in CIFAR_RUBRIC.disabled] == ["mnist"]
    assert "mnist" not in [c.id for c in CIFAR_RUBRIC.criteria] and CIFAR_RUBRIC.total_points == 14
    nb, _ = _scorecard(_probe(RIGHT_18))
    assert "mnist" not in [r.id for r in nb.criteria] and nb.max_score == 14
    data = CIFAR_RUBRIC.model_dump()
    on = Rubric.model_validate({**data, "disabled": [],
                                "criteria": data["criteria"] + [{**data["disabled"][0], "enabled": True}]})
    assert on.total_points == 15 and not on.disabled
    nb, _ = _scorecard(_probe(RIGHT_18), on)
    row = next(r for r in nb.criteria if r.id == "mnist")
    assert row.status == "pass" and nb.max_score == 15
    with pytest.raises(ValueError, match="criterion ids repeat: mnist"):
        Rubric.model_validate({**data, "disabled": [], "criteria": data["criteria"] + data["disabled"] * 2})


def test_data_export_writes_mnist_training_part_only_and_a_view_builds_from_it(tmp_path: Path) -> None:
    import dataclasses

    from grader.data.export import export_public_data

    settings, arrays = _toy_with_mnist(tmp_path)
    exported = tmp_path / "exported"
    export_public_data(settings, "toy", exported)
    with np.load(exported / "mnist" / "mnist.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_train", "y_train"]
        assert np.array_equal(npz["x_train"], arrays["x_train"])
    public = dataclasses.replace(settings, data_dir=exported, cache_dir=tmp_path / "cache2")
    view = ensure_public_view(public, load_challenge(settings.project_dir, "toy"), public_only=True)
    with np.load(view / "mnist" / "mnist_train.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["y_train"], arrays["y_train"])
