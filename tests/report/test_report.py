"""Scoring and rendering: verdicts, escaping of everything a submission controls, golden HTML."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.core.files import safe_name
from grader.report.render import render_index, render_scorecard, write_index, write_submission
from grader.score.checks import CheckResult
from grader.score.measure import measure
from grader.score.rubric import Criterion
from grader.score.scorecard import (
    CellRow,
    Environment,
    ExecutionSummary,
    ModelReport,
    NewImageRow,
    NotebookResult,
    SubmissionResult,
)
from grader.score.verdict import score_criteria

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
EVIL = "<script>alert(1)</script>"


def criterion(cid: str, required: bool, points: float = 1) -> Criterion:
    return Criterion(id=cid, title=cid, check="notebook_runs", points=points, required=required,
                     fix=f"fix {cid}")


def test_verdict_needs_every_required_criterion() -> None:
    criteria = [criterion("a", True, 2), criterion("b", False)]
    rows, verdict, score, total = score_criteria(
        criteria, [CheckResult("pass", "ok"), CheckResult("fail", "no")])
    assert (verdict, score, total) == ("pass", 2, 3)
    assert rows[1].fix == "fix b" and rows[0].fix == ""
    _, verdict, score, _ = score_criteria(
        criteria, [CheckResult("fail", "no"), CheckResult("pass", "ok")])
    assert (verdict, score) == ("fail", 1)


def sample(evil: str = "") -> SubmissionResult:
    m = measure(["rope", "tents", f"rope{evil}"], ["rope", "rope", "tents"], ["rope", "tents", f"rope{evil}"])
    rows, verdict, score, total = score_criteria(
        [criterion("runs", True), criterion("accuracy", True, 4)],
        [CheckResult("pass", "all cells ran in 12 s"),
         CheckResult("fail", f"`predict` scored 0.333, below 0.90 {evil}")])
    nb = NotebookResult(
        notebook=f"team{evil}.ipynb", challenge="gear-cnn", profile="ci", verdict=verdict,
        score=score, max_score=total, criteria=rows,
        execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=12.5,
                                   sandboxed=False, probe_status="ok",
                                   cells=[CellRow(index=0, status="ok", seconds=1.25,
                                                  source=f"print('{evil}')", error=None)]),
        models=[ModelReport.of("predict", "predict", m, 0.5)],
        new_images=[NewImageRow(file=f"cat{evil}.jpg", prediction=f"rope{evil}",
                                dataset_match=None, error=None,
                                thumbnail="data:image/png;base64,AAAA")],
    )
    return SubmissionResult(
        submission=f"team3{evil}", path="/subs/team3", verdict=verdict, score=score,
        max_score=total, notebooks=[nb], started="2026-11-22T00:00:00+00:00",
        finished="2026-11-22T00:01:00+00:00",
        environment=Environment(grader="0.1.0", python="3.11", platform="linux", device="cpu",
                                sandbox="none (the kernel ran as the grader's user)"))


def test_everything_from_the_submission_is_escaped() -> None:
    html = render_scorecard(sample(EVIL))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    index = render_index([sample(EVIL)], ["team3"])
    assert "<script>" not in index


def test_scorecard_shows_the_parts_a_coach_reads() -> None:
    html = render_scorecard(sample())
    for part in ("FAIL", "Success criteria", "below 0.90", "What to do: fix accuracy",
                 "Confusion matrix", "Recall (per-class accuracy)", "New images",
                 "Cell timeline", "not sandboxed", "data:image/png;base64,AAAA"):
        assert part in html, part


def test_golden_scorecard(update_goldens: bool) -> None:
    html = render_scorecard(sample())
    golden = GOLDEN / "scorecard.html"
    if update_goldens:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(html)
    assert html == golden.read_text(), "run pytest --update-goldens and review the diff"


def test_written_files_and_json_schema(tmp_path: Path) -> None:
    result = sample()
    folder = write_submission(tmp_path, result, safe_name("team 3/../x"))
    assert folder.name == "team_3_.._x" and folder.parent == tmp_path
    data = json.loads((folder / "result.json").read_text())
    assert data["schema_version"] == 4 and data["verdict"] == "fail"
    assert "thumbnail" not in data["notebooks"][0]["new_images"][0]
    assert SubmissionResult.model_validate(data).score == result.score
    write_index(tmp_path, [result], [folder.name])
    assert f'href="{folder.name}/scorecard.html"' in (tmp_path / "index.html").read_text()
    assert not list(tmp_path.rglob(".*.tmp"))


@pytest.fixture
def template_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """jinja2's per-user cache folder under ``tmp_path``, with a fresh template environment
    before and after (each as in a new grader process)."""
    import tempfile

    from grader.report import jinja

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    jinja.environment.cache_clear()
    yield tmp_path
    jinja.environment.cache_clear()


def test_templates_come_from_the_bytecode_cache_once_compiled(
        template_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jinja2

    from grader.report import jinja

    compiled: list[str] = []
    real = jinja2.Environment._compile

    def spy(self: jinja2.Environment, source: str, filename: str) -> Any:
        compiled.append(filename)
        return real(self, source, filename)

    monkeypatch.setattr(jinja2.Environment, "_compile", spy)
    first = render_scorecard(sample())
    assert any(name.endswith("scorecard.html.j2") for name in compiled), compiled
    compiled.clear()
    jinja.environment.cache_clear()  # a new environment, as in the next grader process
    assert render_scorecard(sample()) == first
    assert compiled == [], "the second environment compiled again"
    folder = next(template_cache.glob("_jinja2-cache-*"))
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert list(folder.glob("*.cache"))


def test_a_lost_or_damaged_bytecode_cache_never_stops_a_scorecard(template_cache: Path) -> None:
    import shutil

    from grader.report import jinja

    expected = render_scorecard(sample())  # compiled, and kept in the cache
    folder = next(template_cache.glob("_jinja2-cache-*"))
    for entry in folder.glob("*.cache"):
        entry.write_bytes(entry.read_bytes()[:40])  # cut short inside the checksum
    jinja.environment.cache_clear()
    assert render_scorecard(sample()) == expected
    jinja.environment.cache_clear()
    jinja.environment()
    shutil.rmtree(folder)  # cleaned away under a long run: nowhere to keep what is compiled
    assert render_scorecard(sample()) == expected


def test_junit_is_valid_xml_whatever_the_messages_hold() -> None:
    from xml.etree import ElementTree as ET

    from grader.report.exports import junit_xml

    nasty = "\x1b[31mKeyError\x1b[0m \x00\x0b ]]> <b>&"
    result = sample(nasty)
    crashed = result.notebooks[0].model_copy(update={
        "notebook": "other.ipynb", "criteria": [],
        "execution": result.notebooks[0].execution.model_copy(update={"message": f"cell 3 raised {nasty}"})})
    result = result.model_copy(update={"notebooks": [*result.notebooks, crashed]})
    root = ET.fromstring(junit_xml([result]))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "team3KeyError  ]]> <b>&"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("type") == "required"
    assert failure.get("message") == "`predict` scored 0.333, below 0.90 KeyError  ]]> <b>&"
    assert failure.text == "`predict` scored 0.333, below 0.90 KeyError  ]]> <b>&\nFix: fix accuracy"
    error = suite.find("testcase/error")
    assert error is not None and error.get("message") == error.text == "cell 3 raised KeyError  ]]> <b>&"


@pytest.mark.parametrize(("kind", "flagged", "expected"), [
    ("test", True, "The notebook printed a test accuracy of 0.990 (<code>Test accuracy: 0.99 &lt;b&gt;</code>); "
     "the grader measured 0.333 (95% interval 0.061-0.792 over 3 images) on the hidden test set: the claim is "
     "higher by 65.7 points."),
    ("training", False, "The notebook printed a training accuracy of 0.990 (<code>Test accuracy: 0.99 &lt;b&gt;"
     "</code>); the grader measured 0.333 (95% interval 0.061-0.792 over 3 images) on the hidden test set. "
     "A training figure is higher by nature and is not flagged."),
    ("unknown", False, "The notebook printed an accuracy of 0.990 (<code>Test accuracy: 0.99 &lt;b&gt;</code>); "
     "the grader measured 0.333 (95% interval 0.061-0.792 over 3 images) on the hidden test set. Which data "
     "the figure is about is unclear, so it is not flagged."),
])
def test_scorecard_shows_the_claim_with_its_line(kind: str, flagged: bool, expected: str) -> None:
    result = sample()
    nb = result.notebooks[0].model_copy(update={"claimed_accuracy": 0.99, "claim_flagged": flagged,
                                                "claim_line": "Test accuracy: 0.99 <b>", "claim_kind": kind})
    assert expected in render_scorecard(result.model_copy(update={"notebooks": [nb]}))


def _cohort() -> list[SubmissionResult]:
    from tests.report.test_leaderboard import notebook, team, vector

    public = [i % 2 == 0 for i in range(424)]
    return [team("twice", notebook("gear.ipynb", vector(380), public=public),
                 notebook("gear copy.ipynb", vector(380), public=public)),
            team("alpha", notebook("gear.ipynb", vector(380), public=public)),
            team("weak", notebook("gear.ipynb", vector(250), points=8, verdict="fail", public=public),
                 notebook("scratch.ipynb", vector(100), challenge="gear-deep", points=5, verdict="fail"))]


def test_index_ranks_each_challenge_with_rank_groups_intervals_and_shares() -> None:
    html = render_index(_cohort(), ["twice", "alpha", "weak"])
    cnn = html[html.index("Leaderboard: gear-cnn"):html.index("Leaderboard: gear-deep")]
    assert cnn.count('<td class="rank">1 = 2</td>') == 2 and cnn.count('<td class="rank">3</td>') == 1
    assert cnn.index("alpha/scorecard.html") < cnn.index("twice/scorecard.html") < cnn.index("weak/scorecard.html")
    assert "also handed in, not ranked: gear.ipynb" in cnn  # a tie: the first name in sort order ranks
    assert "12/12 (100%)" in cnn and "8/12 (67%)" in cnn and "24/24" not in cnn and "13/24" not in cnn
    assert '89.6%<span class="ci">86.4–92.2%, n = 424</span>' in cnn  # 380 of 424, Wilson
    assert "2 rank group(s)" in cnn and "Pass rate per criterion" in cnn
    deep = html[html.index("Leaderboard: gear-deep"):]
    assert '<td class="rank">1</td>' in deep and "weak/scorecard.html" in deep
    assert '<td class="num">–</td>' in deep  # no public/private split for the scratch notebook
    assert "Accuracy ▼" in html


def test_index_ranks_by_the_public_part_when_asked(tmp_path: Path) -> None:
    from grader.report.render import write_cohort

    paths = write_cohort(tmp_path, _cohort(), ["twice", "alpha", "weak"], leaderboard="public")
    html = (tmp_path / "index.html").read_text()
    assert paths[0] == tmp_path / "index.html" and "Public ▼" in html
    assert "accuracy on the public part of the hidden test set" in html
    assert "not ranked: no public part recorded" in html  # the scratch notebook on gear-deep
    with pytest.raises(ValueError, match="unknown leaderboard part"):
        render_index(_cohort(), ["a", "b", "c"], leaderboard="hidden")  # type: ignore[arg-type]


def test_index_renders_schema_1_results() -> None:
    data = sample().model_dump()
    data["schema_version"] = 1
    for key in ("accuracy_ci", "parts", "correct", "public_mask"):
        del data["notebooks"][0]["models"][0][key]
    old = SubmissionResult.model_validate(data)
    html = render_index([old, sample()], ["old", "new"])
    assert '<td class="rank">1</td>' in html and '<td class="rank">2</td>' in html
    assert html.count('33.3%<span class="ci">6.1–79.2%, n = 3</span>') == 2
    assert "not compared" in html and "no per-image results" in html
    public = render_index([old], ["old"], leaderboard="public")
    assert '<td class="rank">–</td>' in public and "not ranked: no public part recorded" in public


def test_gradebook_lists_every_notebooks_criteria_with_intervals() -> None:
    import csv
    import io

    from grader.report.exports import gradebook_csv

    empty = sample().model_copy(update={"submission": "empty", "notebooks": []})
    rows = list(csv.DictReader(io.StringIO(gradebook_csv([*_cohort(), empty]))))
    assert [(r["submission"], r["notebook"], r["challenge"], r["ranked"]) for r in rows] == [
        ("twice", "gear.ipynb", "gear-cnn", "no"), ("twice", "gear copy.ipynb", "gear-cnn", "yes"),
        ("alpha", "gear.ipynb", "gear-cnn", "yes"),
        ("weak", "gear.ipynb", "gear-cnn", "yes"), ("weak", "scratch.ipynb", "gear-deep", "yes"),
        ("empty", "", "", "")]
    assert [r["gear-cnn:accuracy"] for r in rows] == ["12", "12", "12", "8", "", ""]
    assert [r["gear-deep:accuracy"] for r in rows] == ["", "", "", "", "5", ""]
    twice = rows[1]
    assert (twice["score"], twice["submission_score"], twice["verdict"]) == ("12", "24", "pass")
    assert (twice["accuracy"], twice["accuracy_low"], twice["accuracy_high"], twice["n"]) == (
        "0.8962", "0.8636", "0.9218", "424")  # Wilson by hand: 0.86355, 0.92178
    assert (twice["public_n"], twice["private_n"], rows[4]["public_accuracy"]) == ("212", "212", "")
    assert rows[5]["submission_verdict"] == "fail" and rows[5]["accuracy"] == ""


def test_gradescope_file_has_no_per_image_results() -> None:
    from grader.report.exports import gradescope_results

    result = _cohort()[0]
    model = result.notebooks[0].models[0]
    assert len(model.correct) == 424 and len(model.public_mask) == 424
    text = json.dumps(gradescope_results(result))
    assert '"correct"' not in text and "public_mask" not in text and "1" * 50 not in text and "10" * 50 not in text
    assert json.loads(text)["leaderboard"] == [{"name": "Accuracy", "value": 0.8962, "order": "desc"}]
