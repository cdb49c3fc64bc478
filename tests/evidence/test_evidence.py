"""What crosses back from the student's side is read strictly: no links, bounded, validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grader.evidence.records import ExecutionFacts, ProbeFacts
from grader.evidence.runfacts import MAX_PROBE_BYTES, probe_output, read_bounded

FACTS = ExecutionFacts(status="ok", message="", failed_cell=None, cells=(), sources=(),
                       wall_s=1.0, sandboxed=True,
                       probe=ProbeFacts(status="ok", seconds=0.1, message=""))
GOOD: dict[str, Any] = {"schema": 1, "class_names": ["red"],
                        "models": {"predict": {"predictions": ["red"], "seconds": 0.1}}}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "probe.json"
    path.write_text(text)
    return path


def test_a_valid_probe_is_read(tmp_path: Path) -> None:
    probe, error = probe_output(_write(tmp_path, json.dumps(GOOD)), FACTS)
    assert error is None and probe is not None
    assert probe.models["predict"].predictions == ["red"]


@pytest.mark.parametrize(("text", "words"), [
    (json.dumps({**GOOD, "models": {"predict": {"predictions": [1, 2]}}}), "valid string"),
    (json.dumps({**GOOD, "models": {"predict": {"predictions": ["red"], "seconds": "fast"}}}),
     "valid number"),
    ('{"schema": 1, "models": {"predict": {"predictions": ["red"], "seconds": NaN}}}', "finite"),
    (json.dumps({**GOOD, "accuracy": 1.0}), "Extra inputs are not permitted"),
    (json.dumps({**GOOD, "class_names": ["x" * 5000]}), "at most 4000 characters"),
    (json.dumps({**GOOD, "schema": 2}), "Input should be 1"),
    ("[1, 2", "Invalid JSON"),
])
def test_malformed_probe_output_is_a_clear_failure(tmp_path: Path, text: str, words: str) -> None:
    probe, error = probe_output(_write(tmp_path, text), FACTS)
    assert probe is None
    assert error is not None and error.startswith("the probe's output is invalid")
    assert words in error


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "hidden-split.txt"
    secret.write_text("red/red0.png\n")
    (tmp_path / "probe.json").symlink_to(secret)
    probe, error = probe_output(tmp_path / "probe.json", FACTS)
    assert probe is None and error is not None and "red0" not in error
    assert "not a regular file" in error
    assert read_bounded(tmp_path / "probe.json", 1000) is None
    assert read_bounded(secret, 1000) == "red/red0.png\n"


def test_oversized_output_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    with path.open("wb") as fh:
        fh.truncate(MAX_PROBE_BYTES + 1)  # sparse: the size alone must refuse it
    probe, error = probe_output(path, FACTS)
    assert probe is None and error is not None and f"at most {MAX_PROBE_BYTES}" in error


def test_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "probe.json")
    assert read_bounded(tmp_path / "probe.json", 1000) is None
