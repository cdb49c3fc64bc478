"""How sure a figure is: Wilson intervals against published values, borderline and lower-bound
verdicts, the rubric's ``decision`` and ``claim_margin`` keys, schema 1 result.json still rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.core.errors import RubricError
from grader.report.render import render_scorecard
from grader.score.checks import get_check
from grader.score.checks.accuracy import judge
from grader.score.checks.registry import CheckResult
from grader.score.rubric import load_rubric
from grader.score.scorecard import SubmissionResult
from grader.score.stats import wilson_interval
from grader.score.verdict import score_criteria
from tests.conftest import REPO

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (90, 100, 0.826, 0.945),  # the published values the issue quotes
    (900, 1000, 0.880, 0.917),
    (380, 424, 0.864, 0.922),  # the gear example
])
def test_wilson_interval_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    ci = wilson_interval(k, n)
    assert (round(ci.low, 3), round(ci.high, 3)) == (low, high)
    assert ci.value == k / n and (ci.k, ci.n) == (k, n)


def test_wilson_interval_at_the_ends_and_bad_input() -> None:
    assert wilson_interval(0, 8).low == 0.0 and wilson_interval(8, 8).high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k=3, n=2"):
        wilson_interval(3, 2)


@pytest.mark.parametrize(("k", "decision", "ok", "words"), [
    (380, "point", False, "could pass"),       # 0.896: fails, the threshold inside 0.864-0.922
    (383, "point", True, "could fail"),        # 0.903: passes, inside 0.871-0.928
    (390, "point", True, "could fail"),        # 0.920: passes on the point estimate
    (390, "lower_bound", False, "could pass"),  # ... but its lower end 0.890 is below 0.90
    (405, "lower_bound", True, ""),            # 0.955: 0.931-0.971 clears it, not borderline
    (300, "point", False, ""),                 # 0.708: surely below
])
def test_borderline_and_lower_bound_verdicts(k: int, decision: str, ok: bool, words: str) -> None:
    j = judge(k, 424, 0.90, decision)  # type: ignore[arg-type]
    assert j.ok is ok
    assert j.borderline.endswith(words) and bool(j.borderline) is bool(words)


def _rubric(tmp_path: Path, extra: str, check: str = "hidden_accuracy",
            params: str = "{ threshold = 0.9 }", top: str = "") -> Path:
    (tmp_path / "rubrics").mkdir(exist_ok=True)
    (tmp_path / "rubrics" / "r.toml").write_text(
        f'schema_version = 1\nchallenge = "x"\n{top}\n[[criteria]]\nid = "accuracy"\ntitle = "t"\n'
        f'check = "{check}"\npoints = 2\nfix = "f"\nparams = {params}\n{extra}\n')
    return tmp_path


def test_rubric_decision_is_passed_to_the_check(tmp_path: Path) -> None:
    rubric = load_rubric(_rubric(tmp_path, 'decision = "lower_bound"', top="claim_margin = 0.02"), "r")
    criterion = rubric.criteria[0]
    assert criterion.decision == "lower_bound" and rubric.claim_margin == 0.02
    assert criterion.params_for("ci").decision == "lower_bound"  # type: ignore[attr-defined]
    default = load_rubric(_rubric(tmp_path, ""), "r")
    assert default.criteria[0].decision == "point" and default.claim_margin == 0.05
    assert default.criteria[0].params_for(None).decision == "point"  # type: ignore[attr-defined]


def test_rubric_rejects_an_unknown_decision_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RubricError) as err:
        load_rubric(_rubric(tmp_path, 'decision = "interval"'), "r")
    assert ("decision 'interval' is not one of 'point', 'lower_bound': write decision = \"point\" (pass on the "
            "measured figure, the default) or decision = \"lower_bound\" (pass only when the lower end of its 95% "
            "interval clears the threshold)") in str(err.value)


def test_rubric_rejects_decision_where_it_cannot_apply(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match=r"decision = 'lower_bound' needs a threshold check \(.*hidden_accuracy.*"
                                          r"\), not saved_model; remove it"):
        load_rubric(_rubric(tmp_path, 'decision = "lower_bound"', check="saved_model", params="{}"), "r")
    with pytest.raises(RubricError, match="write decision = \"point\" on the criterion itself, not in params"):
        load_rubric(_rubric(tmp_path, "", params='{ threshold = 0.9, decision = "lower_bound" }'), "r")


def test_every_shipped_rubric_still_loads() -> None:
    for path in sorted((REPO / "rubrics").glob("*.toml")):
        rubric = load_rubric(REPO, path.stem)
        assert all(c.decision == "point" for c in rubric.criteria) and rubric.claim_margin == 0.05


def test_scorecard_rows_carry_decision_and_borderline(tmp_path: Path) -> None:
    rubric = load_rubric(_rubric(tmp_path, 'decision = "lower_bound"'), "r")
    result = CheckResult(status="fail", message="m", borderline="0.920, 95% interval ...")
    (row,), verdict, _, _ = score_criteria(rubric.criteria, [result])
    assert (row.decision, row.borderline, verdict) == ("lower_bound", "0.920, 95% interval ...", "fail")
    unmeasured = CheckResult(status="not_measured", message="not measured: x", borderline="words", fix="run it")
    (row,), _, _, _ = score_criteria(rubric.criteria, [unmeasured])
    assert row.borderline == ""


def test_a_threshold_check_lists_decision_last() -> None:
    assert list(get_check("hidden_accuracy").params.model_fields) == ["model", "threshold", "allow_same_model",
                                                                      "decision"]


def test_schema_1_result_still_renders() -> None:
    raw = json.loads((ASSETS / "result-schema1.json").read_text())
    result = SubmissionResult.model_validate(raw)
    assert result.schema_version == 1 and result.notebooks[0].models[0].accuracy_ci is None
    html = render_scorecard(result)
    assert "predict on the hidden test set: accuracy 62.5% (8 images, 0.4 s)" in html
    assert "<td>axes</td><td class=\"num\">4</td><td class=\"num\">0.750</td><td class=\"num\">–</td>" in html
    assert "the claim is higher by 27.5 points" in html  # the schema 1 wording: no interval to judge by
    assert "borderline" not in html.replace(".badge.borderline", "").replace(".borderline-words", "")


def test_schema_2_scorecard_shows_intervals_n_and_borderline() -> None:
    from grader.score.scorecard import ModelReport, Share

    raw = json.loads((ASSETS / "result-schema1.json").read_text())
    raw["schema_version"] = 2
    nb = raw["notebooks"][0]
    nb["criteria"][1].update(decision="lower_bound", borderline=judge(5, 8, 0.8).borderline)
    nb.update(claim_cell=3, claim_margin=0.05, claimed_accuracy=0.95, claim_line="test accuracy: 0.95")
    model = ModelReport.model_validate(nb["models"][0])
    share = Share.of(5, 8)
    rows = [{**row, "recall_low": 0.1, "recall_high": 0.9, "predicted": 5} for row in model.per_class]
    nb["models"][0] = model.model_copy(update={"accuracy_ci": share, "per_class": rows}).model_dump()
    html = render_scorecard(SubmissionResult.model_validate(raw))
    assert "predict on the hidden test set: accuracy 62.5%, 95% interval 30.6-86.3%, 8 images, 0.4 s" in html
    assert '<span class="badge borderline"' in html and "decided on the lower end of the 95% interval" in html
    assert ("<strong>Borderline:</strong> 0.625, 95% interval 0.306-0.863 over 8 images: the threshold 0.80 is "
            "inside it; another draw of test images could pass.") in html
    assert "0.100-0.900 <span class=\"few\"" in html  # a class too small to tell
    assert ("the grader measured 0.625 (95% interval 0.306-0.863 over 8 images) on the hidden test set: the "
            "claim lies above the interval's upper end by 8.7 points, more than the rubric's margin of 5 points"
            ) in html
    assert "(cell 3: <code>test accuracy: 0.95</code>)" in html


def _project(tmp_path: Path, decision: str) -> Path:
    import shutil

    for folder in ("challenges", "rubrics"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    rubric = tmp_path / "rubrics" / "gear-classical.toml"
    text = rubric.read_text()
    line = 'params = { model = "predict", threshold = 0.80 }\n'
    assert line in text
    rubric.write_text(text.replace(line, f'{line}decision = "{decision}"\n'))
    return tmp_path


def test_grader_validate_knows_the_decision_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import main

    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(_project(tmp_path / "good", "lower_bound")))
    assert main(["validate"]) == 0
    assert "ok  gear-classical: 4 criteria" in capsys.readouterr().out
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(_project(tmp_path / "bad", "lowerbound")))
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "gear-classical.toml: invalid rubric" in err
    assert "decision 'lowerbound' is not one of 'point', 'lower_bound': write decision = \"point\"" in err
