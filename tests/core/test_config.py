"""Challenge and rubric files: loaded, validated, and rejected with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.core.challenge import challenge_ids, load_challenge
from grader.core.errors import ChallengeError, RubricError
from grader.score.rubric import load_rubric
from tests.conftest import REPO


def test_gear_cnn_challenge_and_rubric_load() -> None:
    challenge = load_challenge(REPO, "gear-cnn")
    rubric = load_rubric(REPO, challenge.rubric)
    assert challenge.dataset.source == "gear" and len(challenge.dataset.classes) == 12
    assert [c.id for c in rubric.criteria] == [
        "runs", "accuracy", "loss-history", "loss-plot", "per-class", "new-images",
        "transfer-learning", "saved-model", "overfitting"]
    accuracy = next(c for c in rubric.criteria if c.id == "accuracy")
    assert accuracy.params_for("full").threshold == 0.90  # type: ignore[attr-defined]


def test_unknown_challenge_lists_the_known_ones() -> None:
    with pytest.raises(ChallengeError, match="known: .*gear-cnn"):
        load_challenge(REPO, "gear-nope")
    assert "gear-cnn" in challenge_ids(REPO)


def _project_with_rubric(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rubrics").mkdir(exist_ok=True)
    (tmp_path / "rubrics" / "r.toml").write_text(text)
    return tmp_path


GOOD = """
schema_version = 1
challenge = "x"
[[criteria]]
id = "accuracy"
title = "t"
check = "hidden_accuracy"
points = 2
fix = "f"
params = { threshold = 0.5 }
"""


def test_valid_rubric_loads(tmp_path: Path) -> None:
    rubric = load_rubric(_project_with_rubric(tmp_path, GOOD), "r")
    assert rubric.total_points == 2


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match="weight"):
        load_rubric(_project_with_rubric(tmp_path, GOOD + "weight = 3\n"), "r")


def test_unknown_check_lists_the_known_checks(tmp_path: Path) -> None:
    text = GOOD.replace("hidden_accuracy", "hidden_acuracy")
    with pytest.raises(RubricError, match="unknown check 'hidden_acuracy'; known checks: .*hidden_accuracy"):
        load_rubric(_project_with_rubric(tmp_path, text), "r")


def test_bad_params_are_an_error(tmp_path: Path) -> None:
    text = GOOD.replace("threshold = 0.5", "threshold = 1.5")
    with pytest.raises(RubricError, match="threshold"):
        load_rubric(_project_with_rubric(tmp_path, text), "r")
    text = GOOD.replace("threshold = 0.5", "threshold = 0.5, treshold = 1")
    with pytest.raises(RubricError, match="treshold"):
        load_rubric(_project_with_rubric(tmp_path, text), "r")


def test_repeated_criterion_ids_are_an_error(tmp_path: Path) -> None:
    text = GOOD + GOOD.split("\n", 3)[3]
    with pytest.raises(RubricError, match="repeat: accuracy"):
        load_rubric(_project_with_rubric(tmp_path, text), "r")


def test_profile_params_override(tmp_path: Path) -> None:
    text = GOOD + "profile_params = { ci = { threshold = 0.3 } }\n"
    criterion = load_rubric(_project_with_rubric(tmp_path, text), "r").criteria[0]
    assert criterion.params_for("ci").threshold == 0.3  # type: ignore[attr-defined]
    assert criterion.params_for("full").threshold == 0.5  # type: ignore[attr-defined]


def test_missing_rubric_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match="nope.toml"):
        load_rubric(tmp_path, "nope")


def test_the_graders_blas_limit_is_not_the_users(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.core import settings

    monkeypatch.setattr(settings, "_USER_VALUES", {})
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "6")
    settings.limit_own_blas_threads()
    assert settings.os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert settings.user_environ()["OPENBLAS_NUM_THREADS"] == "6"
    settings.limit_own_blas_threads()  # twice: the user's value is still the one kept
    assert settings.user_environ()["OPENBLAS_NUM_THREADS"] == "6"

    monkeypatch.setattr(settings, "_USER_VALUES", {})
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    settings.limit_own_blas_threads()
    assert settings.os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert "OPENBLAS_NUM_THREADS" not in settings.user_environ()
