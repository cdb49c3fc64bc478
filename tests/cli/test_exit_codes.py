"""Exit codes that mean something, and a scorecard that tells what happened.

Student-side faults are failing scorecards (exit 1) that never stop the batch; coach-side
mistakes are exit 2 with the fix, found before any notebook runs; faults of the grader are
exit 3 for the job they hit. Criteria that could not be measured say why and carry the run's
fix; the verdict line names the required criteria that decided it; cell numbers are the
student's own. Most tests unit-test the pieces; two start a kernel.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.cli.check import exit_status
from grader.cli.main import main
from grader.core.challenge import load_challenge
from grader.core.errors import ConfigError, DataError, ExitStatus, RubricError
from grader.core.settings import Settings, sandbox_uid
from grader.evidence.records import CellRecord, ExecutionFacts, ProbeFacts, ProbeOutput, RunResult
from grader.evidence.runfacts import run_facts
from grader.execute.request import RunRequest
from grader.intake.notebook import inject_parameters
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.pipeline.job import Job, Outcome
from grader.score.checks import get_check
from grader.score.checks.registry import CheckResult, run_problem
from grader.score.rubric import Criterion, load_rubric
from grader.score.score import score_notebook
from grader.score.score import summary as _summary
from grader.score.verdict import score_criteria, verdict_reason
from tests.conftest import REPO
from tests.support.toy import GOOD_TOY_CELLS, write_submission

GEAR = load_challenge(REPO, "gear-cnn")
GEAR_RUBRIC = load_rubric(REPO, "gear-cnn")
LABELS = ("axes", "boots", "tents", "rope")


def _no_grading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to grade a submission fail the test: a coach's mistake must be found
    before anything runs."""
    import grader.pipeline.job

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a submission was graded")

    monkeypatch.setattr(grader.pipeline.job, "grade_submission", refuse)


def _facts(status: str = "ok", message: str = "", failed: int | None = None,
           probe: str = "ok", injected: int | None = 1) -> ExecutionFacts:
    cells = tuple(CellRecord(index=i, status="ok", seconds=0.1, error=None, execution_count=i + 1)
                  for i in range(4))
    return ExecutionFacts(status=status, message=message, failed_cell=failed, cells=cells,
                          sources=("DATA_DIR = None", "# Parameters injected", "import torch", "fit()"),
                          wall_s=3.0, sandboxed=False,
                          probe=ProbeFacts(status=probe, seconds=1.0, message=""),  # type: ignore[arg-type]
                          injected_cell=injected)


def _probe(**changes: Any) -> ProbeOutput:
    raw: dict[str, Any] = {"schema": 1, "class_names": list(GEAR.dataset.classes),
                           "models": {"predict": {"predictions": list(LABELS)}}}
    raw.update(changes)
    return ProbeOutput.model_validate(raw)


def _run(facts: ExecutionFacts, probe: ProbeOutput | None, code: str = "") -> RunResult:
    executed = new_notebook(cells=[new_code_cell(code)]) if code else None
    return RunResult(facts=facts, executed=executed, probe=probe, probe_error=None, started_at=0.0)


def _gear_score(facts: ExecutionFacts, run: RunResult | None) -> Any:
    return score_notebook(Path("team.ipynb"), GEAR, GEAR_RUBRIC, "full", facts, run, LABELS, (), (), ())


def _fake_result(name: str, verdict: str = "pass") -> Any:
    from grader.score.scorecard import Environment, SubmissionResult

    return SubmissionResult(
        submission=name, path=name, verdict=verdict, score=1, max_score=1,  # type: ignore[arg-type]
        notebooks=[], started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:00+00:00",
        environment=Environment(grader="0", python="3", platform="linux", device="cpu",
                                sandbox="none"))


# ---------------------------------------------------------------- student-side faults: exit 1


def test_unknown_metadata_challenge_is_a_failing_scorecard_and_the_batch_goes_on(
        toy_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subs = tmp_path / "subs"
    v2 = write_submission(subs, "v2", GOOD_TOY_CELLS, challenge="gear-cnn-v2")
    other = write_submission(subs, "other", GOOD_TOY_CELLS, challenge="toy-v9")
    out = tmp_path / "out"
    assert main(["check", str(v2), str(other), "--out", str(out), "--sandbox", "none"]) == ExitStatus.FAILED
    for name, named in (("v2", "gear-cnn-v2"), ("other", "toy-v9")):
        result = json.loads((out / name / "result.json").read_text())
        assert result["verdict"] == "fail"
        message = result["notebooks"][0]["execution"]["message"]
        assert message.startswith(f"{named}.ipynb names challenge {named!r} in its metadata "
                                  "(metadata.grader.challenge), and there is no such challenge; known: toy.")
        assert result["notebooks"][0]["verdict_reason"].startswith("no challenge to grade against: ")
        assert "no such challenge" in (out / name / "scorecard.html").read_text()
    assert "harness fault" not in capsys.readouterr().err


def test_forged_facts_with_an_out_of_range_cell_is_a_failing_run(tmp_path: Path) -> None:
    """The runner writes facts.json inside the student's sandbox: a kernel can rewrite it."""
    nb = inject_parameters(new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("y = 2")]),
                           {"DATA_DIR": "/data"})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    forged = {"schema": 1, "status": "cell_error", "message": "cell 9999 raised", "failed_cell": 9999,
              "kernel_start_s": 0.1, "probe": {"status": "ok", "seconds": 0.1, "message": ""},
              "cells": [{"index": 9999, "status": "running", "seconds": None, "error": None}
                        for _ in nb.cells]}
    (run_dir / "facts.json").write_text(json.dumps(forged))
    paths = {name: run_dir / name for name in ("facts.json", "runner.log")}
    request = RunRequest(notebook=nb, workdir=tmp_path, run_dir=run_dir, cell_timeout_s=10,
                         deadline_s=20, probe_timeout_s=10, max_output_bytes=1000, probe={},
                         python="python3")
    for deadline_hit in (False, True):  # the deadline path indexed cells by the forged index
        facts = run_facts(paths, 1.0, deadline_hit, request.notebook, request.deadline_s, ("x = 1", "y = 2", "#"), 0,
                          False)
        assert facts.status == "runner_failed"
        assert facts.message == (
            "the record of the run (facts.json) does not match the notebook: cell 0 is recorded "
            "with index 9999; it was damaged or rewritten by the notebook's code, so the run "
            "cannot be graded")
        assert facts.cells == () and facts.failed_cell is None
    result = _gear_score(facts, None)
    assert result.verdict == "fail" and result.execution.failed_cell is None
    assert result.criteria[0].status == "fail" and "does not match the notebook" in result.criteria[0].message
    assert result.criteria[1].status == "not_measured"


def test_summary_of_forged_cell_indexes_does_not_crash() -> None:
    """Facts built with indexes that are no cells (as a forged timeline has them) still give a
    timeline: no source, no number, and no failed cell named."""
    cells = (CellRecord(index=9999, status="error", seconds=1.0, error={"ename": "E", "evalue": "v"}),
             CellRecord(index=-5, status="ok", seconds=1.0, error=None))
    facts = ExecutionFacts(status="cell_error", message="m", failed_cell=9999, cells=cells,
                           sources=("a", "b"), wall_s=1.0, sandboxed=False, probe=None, injected_cell=1)
    summary = _summary(facts)
    assert [(c.source, c.number) for c in summary.cells] == [("", None), ("", None)]
    assert summary.failed_cell is None


def test_cells_are_numbered_as_the_student_sees_them() -> None:
    """1-based position, markdown cells counted, the injected cell not counted and marked."""
    facts = _facts(status="cell_error", message="cell 3 raised ValueError: bad", failed=3, injected=1)
    summary = _summary(facts)
    assert [(c.index, c.number, c.injected) for c in summary.cells] == [
        (0, 1, False), (1, None, True), (2, 2, False), (3, 3, False)]
    assert summary.failed_cell == 3

    from grader.student.runner import cell_numbers

    nb = inject_parameters(new_notebook(cells=[new_markdown_cell("# Title"),
                                               new_code_cell("p = 1", metadata={"tags": ["parameters"]}),
                                               new_code_cell("1 / 0")]), {"A": 1})
    assert cell_numbers(nb) == [1, 2, None, 3]  # the crashing cell is the student's cell 3


# ---------------------------------------------------------------- coach-side mistakes: exit 2


@pytest.mark.parametrize(("options", "env", "said", "fix"), [
    (["--profile", "fast"], {}, "--profile fast: no challenge declares this profile; known: full",
     "fix: pass one of full"),
    (["--challenge", "gear-cnn-v2"], {}, "--challenge gear-cnn-v2: no such challenge; known: toy",
     "fix: pass one of the known ids"),
    (["--jobs", "-1"], {}, "--jobs -1: it must be at least 1", "fix: pass --jobs 1"),
    ([], {"GRADER_SANDBOX_UID": "abc"},
     "GRADER_SANDBOX_UID='abc' is not a user id (a whole number from 1 to 4294967294)",
     "fix: unset GRADER_SANDBOX_UID"),
])
def test_coach_mistakes_exit_2_with_the_fix_before_anything_runs(
        toy_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], options: list[str], env: dict[str, str], said: str,
        fix: str) -> None:
    _no_grading(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    folder = write_submission(tmp_path / "subs", "team", GOOD_TOY_CELLS)
    out = tmp_path / "out"
    assert main(["check", str(folder), "--out", str(out), "--sandbox", "none", *options]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert f"grader: error: {said}" in err and fix in err
    assert not out.exists()  # nothing was graded or written
    # found before the submissions are even looked at
    assert main(["check", str(tmp_path / "nope"), "--out", str(out), *options]) == ExitStatus.USAGE
    assert said in capsys.readouterr().err


def test_verify_references_checks_its_options_first(toy_env: Settings, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import grader.pipeline.verify

    monkeypatch.setattr(grader.pipeline.verify, "verify", lambda *a, **k: pytest.fail("verify ran"))
    assert main(["verify-references", "--profile", "fast", "--no-archive"]) == ExitStatus.USAGE
    assert "--profile fast: no challenge declares this profile" in capsys.readouterr().err
    monkeypatch.setenv("GRADER_SANDBOX_UID", "0")
    assert main(["verify-references", "--profile", "full", "--no-archive"]) == ExitStatus.USAGE
    assert "GRADER_SANDBOX_UID='0' is not a user id" in capsys.readouterr().err


def test_the_real_project_knows_ci_and_full(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRADER_PROJECT_DIR", raising=False)
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path))
    assert main(["check", str(tmp_path), "--out", str(tmp_path / "o"), "--profile", "gpu"]) == ExitStatus.USAGE
    assert "known: ci, full" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "uid"), [("", 65534), ("1000", 1000), (" 42 ", 42)])
def test_sandbox_uid_parses(value: str, uid: int) -> None:
    assert sandbox_uid({"GRADER_SANDBOX_UID": value}) == uid


@pytest.mark.parametrize("value", ["abc", "-1", "0", "4294967295", "1e3", "12abc"])
def test_sandbox_uid_refuses(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        sandbox_uid({"GRADER_SANDBOX_UID": value})
    assert info.value.exit_code == ExitStatus.USAGE and info.value.fix


def test_resolve_sandbox_reports_a_bad_uid_as_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.sandbox.session import resolve_sandbox

    monkeypatch.setenv("GRADER_SANDBOX_UID", "abc")
    resolve_sandbox.cache_clear()
    try:
        with pytest.raises(ConfigError, match="GRADER_SANDBOX_UID='abc' is not a user id"):
            resolve_sandbox("auto")
    finally:
        resolve_sandbox.cache_clear()


# ---------------------------------------------------------------- faults of the grader: exit 3


def test_an_internal_error_is_a_harness_fault_of_that_job_only(
        toy_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    import grader.pipeline.job

    def fake(submission: Any, settings: Any, options: Any) -> Any:
        if submission.name == "beta":
            raise KeyError("a bug")
        return _fake_result(submission.name)

    monkeypatch.setattr(grader.pipeline.job, "grade_submission", fake)
    subs = tmp_path / "subs"
    folders = [write_submission(subs, name, GOOD_TOY_CELLS) for name in ("alpha", "beta", "gamma")]
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="grader.pipeline.batch"):
        code = main(["check", *map(str, folders), "--out", str(out), "--sandbox", "none", "--no-cache"])
    assert code == ExitStatus.HARNESS
    err = capsys.readouterr().err
    assert ("beta: harness fault: internal error (KeyError: 'a bug'); its traceback is logged: "
            "please report it") in err
    assert any(r.exc_info and "grading beta failed" in r.getMessage() for r in caplog.records)
    assert json.loads((out / "alpha" / "result.json").read_text())["verdict"] == "pass"
    assert (out / "gamma" / "result.json").is_file() and not (out / "beta").exists()


def test_outcomes_carry_the_exit_code_of_their_fault() -> None:
    job = Job(1, discover(REPO / "examples" / "team3"), "team3")
    data = Outcome.fault(job, DataError("gear/ is incomplete", fix="copy it again"))
    assert (data.exit_code, data.error_type, data.error) == (
        ExitStatus.USAGE, "DataError", "gear/ is incomplete\n  fix: copy it again")
    bug = Outcome.fault(job, ZeroDivisionError("division by zero"))
    assert (bug.exit_code, bug.error_type) == (ExitStatus.HARNESS, "ZeroDivisionError")
    assert Outcome(job, None, error="no worker").exit_code == ExitStatus.HARNESS  # the Dask path's
    passed, failed = Outcome(job, _fake_result("a")), Outcome(job, _fake_result("b", "fail"))
    assert (passed.exit_code, failed.exit_code) == (ExitStatus.PASSED, ExitStatus.FAILED)
    assert exit_status([passed]) == ExitStatus.PASSED
    assert exit_status([passed, failed]) == ExitStatus.FAILED
    assert exit_status([failed, data, passed]) == ExitStatus.USAGE
    assert exit_status([bug, data, failed]) == ExitStatus.HARNESS
    import pickle

    assert pickle.loads(pickle.dumps(data)) == data


def test_an_unexpected_exception_escaping_main_is_exit_3_with_its_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    import grader.cli.project

    def broken() -> int:
        raise RuntimeError("oops")

    monkeypatch.setattr(grader.cli.project, "cmd_checks", broken)
    with caplog.at_level(logging.CRITICAL, logger="grader.cli.main"):
        assert main(["checks"]) == ExitStatus.HARNESS
    assert "grader: internal error (RuntimeError: oops)" in capsys.readouterr().err
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


# ---------------------------------------------------------------- a scorecard that tells what happened


def test_criteria_after_a_crashing_cell_are_not_measured_with_the_runs_fix() -> None:
    facts = _facts(status="cell_error", message="cell 3 raised ValueError: bad shape", failed=3)
    result = _gear_score(facts, None)
    rows = {c.id: c for c in result.criteria}
    assert rows["runs"].status == "fail" and rows["runs"].message == "cell 3 raised ValueError: bad shape"
    for cid in ("accuracy", "loss-history", "loss-plot", "transfer-learning", "saved-model"):
        assert rows[cid].status == "not_measured", cid
        assert rows[cid].message == "not measured: cell 3 raised ValueError: bad shape"
        assert rows[cid].fix == ("Make cell 3 run without error, then restart the kernel and run all "
                                 "cells; this criterion is measured once the notebook runs to its end.")
        assert rows[cid].points == 0
    assert "Train longer" not in json.dumps(result.model_dump())
    assert result.verdict == "fail"
    assert result.execution.problem == "cell 3 raised ValueError: bad shape"
    assert result.execution.problem_fix == rows["accuracy"].fix and not result.execution.partial
    # (whether no new images at all is a fail or not measured after a crash, the new-images
    # check decides: it is left out here)
    failed, unmeasured = result.verdict_reason.split("; not measured: ")
    assert failed.startswith("required criteri") and failed.split(": ")[1].split(", ")[0] == "runs"
    assert unmeasured.startswith("accuracy, loss-history, loss-plot, ")
    assert unmeasured.endswith("transfer-learning, saved-model")
    assert result.execution.failed_cell == 3


def test_the_scorecard_says_a_runs_problem_once() -> None:
    """One message per cause: the run's problem and its fix once, above the criteria; each
    criterion it left unmeasured points to it instead of repeating it."""
    from grader.report.render import render_scorecard

    facts = _facts(status="cell_error", message="cell 3 raised ValueError: bad shape", failed=3)
    nb = _gear_score(facts, None)
    result = _fake_result("team", "fail").model_copy(update={"notebooks": [nb]})
    for html in (render_scorecard(result), render_scorecard(result, audience="team")):
        assert html.count("cell 3 raised ValueError: bad shape") == 1
        assert html.count("Make cell 3 run without error") == 1
        unmeasured = sum(c.status == "not_measured" for c in nb.criteria)
        assert unmeasured >= 4 and html.count("not measured: see the run's problem above") == unmeasured


def test_a_malformed_notebook_leaves_the_criteria_not_measured() -> None:
    facts = ExecutionFacts(status="malformed", message="team.ipynb: not valid JSON.", failed_cell=None,
                           cells=(), sources=(), wall_s=0, sandboxed=False, probe=None)
    rows = {c.id: c for c in _gear_score(facts, None).criteria}
    assert rows["runs"].status == "fail" and rows["runs"].message == "team.ipynb: not valid JSON."
    assert rows["runs"].fix == ""  # the message holds the file's own fix, not "restart the kernel"
    assert rows["accuracy"].status == "not_measured"
    assert rows["accuracy"].message == "not measured: the notebook is not a valid notebook"


def test_a_pass_after_a_crash_stays_a_pass() -> None:
    """A check that passed on what the run left before its crash (a model saved before the
    crashing cell) keeps its pass; a fail is not measured; notebook_runs is never turned."""
    from grader.evidence.records import Evidence
    from grader.score.checks.registry import CheckSpec, NoParams

    crashed = Evidence(notebook="t.ipynb", challenge=GEAR, profile="full",
                       execution=_facts(status="cell_error", message="cell 3 raised ValueError: bad", failed=3),
                       probe=None, probe_error=None, hidden_labels=LABELS, new_images=(), model_files=(),
                       output_text="")
    passing = CheckSpec("p", NoParams, lambda ev, params: CheckResult("pass", "saved", {"files": 1}))
    failing = CheckSpec("f", NoParams, lambda ev, params: CheckResult("fail", "none", {"files": 0}))
    assert passing.evaluate(crashed, NoParams()) == CheckResult("pass", "saved", {"files": 1})
    turned = failing.evaluate(crashed, NoParams())
    assert (turned.status, turned.message, turned.measured) == (
        "not_measured", "not measured: cell 3 raised ValueError: bad", {"files": 0})
    assert turned.fix is not None and turned.fix.startswith("Make cell 3 run without error")
    runs = get_check("notebook_runs")
    assert runs.evaluate(crashed, NoParams()).status == "fail"
    fine = Evidence(notebook="t.ipynb", challenge=GEAR, profile="full", execution=_facts(), probe=_probe(),
                    probe_error=None, hidden_labels=LABELS, new_images=(), model_files=(), output_text="")
    assert failing.evaluate(fine, NoParams()).status == "fail"  # a complete run: a real fail


def test_verdict_line_names_the_required_criteria_that_decided_it() -> None:
    accuracy = get_check("hidden_accuracy")
    probe = _probe(models={"predict": {"predictions": ["axes", "axes", "axes", "axes"]}})
    from grader.evidence.records import Evidence

    ev = Evidence(notebook="t.ipynb", challenge=GEAR, profile="full", execution=_facts(), probe=probe,
                  probe_error=None, hidden_labels=LABELS, new_images=(), model_files=(), output_text="")
    measured = accuracy.evaluate(ev, accuracy.params.model_validate({"threshold": 0.9}))
    assert (measured.status, measured.short) == ("fail", "0.25 < 0.90")
    criteria = [Criterion(id="runs", title="r", check="notebook_runs", points=1, fix="f"),
                Criterion(id="accuracy", title="a", check="hidden_accuracy", points=4, fix="f",
                          params={"threshold": 0.9}),
                Criterion(id="per-class", title="p", check="per_class_report", points=1, fix="f",
                          required=False)]
    rows, verdict, _, _ = score_criteria(criteria, [CheckResult("fail", "x"), measured,
                                                    CheckResult("fail", "y")])
    assert verdict == "fail"
    assert verdict_reason(rows) == "required criteria not met: runs, accuracy (0.25 < 0.90)"
    rows, _, _, _ = score_criteria(criteria, [CheckResult("pass", "x"), measured, CheckResult("fail", "y")])
    assert verdict_reason(rows) == "required criterion not met: accuracy (0.25 < 0.90)"
    rows, _, _, _ = score_criteria(criteria, [CheckResult("pass", "x")] * 2 + [CheckResult("fail", "y")])
    assert verdict_reason(rows) == "every required criterion met"  # per-class is optional
    unmeasured = CheckResult("not_measured", "not measured: cell 2 raised", fix="fix cell 2")
    rows, _, _, _ = score_criteria(criteria, [CheckResult("pass", "x"), unmeasured, unmeasured])
    assert verdict_reason(rows) == "required criterion not measured: accuracy"
    assert (rows[1].fix, rows[1].points) == ("fix cell 2", 0)
    near = accuracy.run(ev, accuracy.params.model_validate({"threshold": 0.251}))
    assert near.short == "0.250 < 0.25"  # never "0.25 < 0.25"


def test_a_keras_notebook_gets_the_keras_fix() -> None:
    keras = "import tensorflow as tf\nfrom tensorflow import keras\nmodel = keras.Sequential()"
    result = _gear_score(_facts(), _run(_facts(), _probe(), code=keras))
    saved = next(c for c in result.criteria if c.id == "saved-model")
    assert saved.status == "fail"
    assert "model.save(os.path.join(MODEL_DIR, 'best.keras'))" in saved.fix and "torch" not in saved.fix
    history = next(c for c in result.criteria if c.id == "loss-history")
    assert history.fix.startswith("Pass validation_data to model.fit")
    assert history.message.startswith("no loss history found: keep what Keras's fit returns")
    torch = _gear_score(_facts(), _run(_facts(), _probe(), code="import torch\nimport torchvision"))
    assert "torch.save(model.state_dict()" in next(c for c in torch.criteria if c.id == "saved-model").fix
    unknown = _gear_score(_facts(), _run(_facts(), _probe(), code="x = 1"))
    assert "framework's own call" in next(c for c in unknown.criteria if c.id == "saved-model").fix


def test_rubric_fixes_are_validated(tmp_path: Path) -> None:
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "r.toml").write_text(
        'schema_version = 1\nchallenge = "x"\n[[criteria]]\nid = "runs"\ntitle = "t"\n'
        'check = "notebook_runs"\npoints = 1\nfix = "f"\n[criteria.fixes]\njax = "jax.save"\n')
    with pytest.raises(RubricError, match="jax"):
        load_rubric(tmp_path, "r")


def test_validate_lists_the_frameworks_with_fixes(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRADER_DATA_DIR", raising=False)
    monkeypatch.delenv("GRADER_PROJECT_DIR", raising=False)
    assert main(["validate"]) == 0
    assert "ok  gear-cnn: 9 criteria, 14 points, hidden test set of 424 images; fixes for pytorch, tensorflow" \
        in capsys.readouterr().out


def test_a_notebook_that_defines_nothing_fails_runs() -> None:
    scratch = _probe(class_names=None, class_names_error="CLASS_NAMES is not defined",
                     models={"predict": {"error": "is not defined"}})
    result = _gear_score(_facts(), _run(_facts(), scratch, code="x = 1"))
    rows = {c.id: c for c in result.criteria}
    assert rows["runs"].status == "fail"
    assert rows["runs"].message == "the notebook ran, but does not define CLASS_NAMES / predict"
    assert rows["accuracy"].status == "not_measured"
    assert rows["accuracy"].message == "not measured: the notebook ran, but does not define CLASS_NAMES / predict"
    half = _probe(models={"predict": {"error": "is int, not a function"}})
    runs = get_check("notebook_runs")
    from grader.evidence.records import Evidence

    ev = Evidence(notebook="t.ipynb", challenge=GEAR, profile="full", execution=_facts(), probe=half,
                  probe_error=None, hidden_labels=LABELS, new_images=(), model_files=(), output_text="")
    assert runs.run(ev, runs.params()).message == ("the notebook ran, but does not define predict "
                                                  "(predict is int, not a function)")
    wrong = _probe(class_names=None, class_names_error="CLASS_NAMES is dict, expected a list of str")
    ev = dataclasses.replace(ev, probe=wrong)
    assert runs.run(ev, runs.params()).message == ("the notebook ran, but does not define CLASS_NAMES "
                                                  "(CLASS_NAMES is dict, expected a list of str)")
    assert run_problem(ev) is not None


# ---------------------------------------------------------------- with a kernel


@pytest.mark.kernel
def test_kernel_crash_names_the_students_cell_and_leaves_criteria_not_measured(
        make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    folder = tmp_path / "crash"
    folder.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# Our model"),
                             new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]}),
                             new_code_cell("x = 1"), new_code_cell("raise ValueError('bad shape')")],
                      metadata={"grader": {"challenge": "toy"}})
    nbformat.write(nb, folder / "toy.ipynb")
    result = grade_submission(discover(folder), settings, GradeOptions())
    notebook = result.notebooks[0]
    assert notebook.execution.failed_cell == 4  # markdown 1, parameters 2, x = 1 3, the crash 4
    assert notebook.execution.message == "cell 4 raised ValueError: bad shape"
    assert [(c.number, c.injected) for c in notebook.execution.cells] == [
        (1, False), (2, False), (None, True), (3, False), (4, False)]
    rows = {c.id: c for c in notebook.criteria}
    assert rows["accuracy"].status == "not_measured"
    assert rows["accuracy"].message == "not measured: cell 4 raised ValueError: bad shape"
    assert rows["accuracy"].fix.startswith("Make cell 4 run without error")
    assert notebook.verdict_reason.startswith("required criteri")
    assert "; not measured: accuracy, loss-history, loss-plot" in notebook.verdict_reason
    from grader.report.render import render_scorecard

    html = render_scorecard(result)
    assert "injected by the grader" in html and html.count("cell 4 raised ValueError") == 1
    assert "not measured: see the run's problem above" in html
    assert f"FAIL:</strong> {notebook.verdict_reason}" in html


@pytest.mark.kernel
def test_kernel_scratch_notebook_fails_runs(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    folder = write_submission(tmp_path, "scratch", ["x = 1"])
    result = grade_submission(discover(folder), settings, GradeOptions())
    runs = result.notebooks[0].criteria[0]
    assert (runs.id, runs.status) == ("runs", "fail")
    assert runs.message == "the notebook ran, but does not define CLASS_NAMES / predict"


def test_a_result_json_without_the_new_fields_still_validates() -> None:
    """result.json written before not_measured, verdict_reason and cell numbers existed."""
    from grader.score.scorecard import SubmissionResult

    old = _fake_result("old", "fail").model_dump(mode="json")
    old.pop("verdict_reason")
    old["notebooks"] = [{
        "notebook": "t.ipynb", "challenge": "toy", "profile": "ci", "verdict": "fail", "score": 0,
        "max_score": 1,
        "criteria": [{"id": "runs", "title": "r", "status": "fail", "required": True, "points": 0,
                      "max_points": 1, "message": "cell 3 raised", "fix": "f", "measured": {}}],
        "execution": {"status": "cell_error", "message": "cell 3 raised", "failed_cell": 3, "wall_s": 1.0,
                      "sandboxed": False, "probe_status": "ok",
                      "cells": [{"index": 0, "status": "ok", "seconds": 1.0, "source": "x", "error": None}]}}]
    result = SubmissionResult.model_validate_json(json.dumps(old))
    nb = result.notebooks[0]
    assert (result.verdict_reason, nb.verdict_reason, nb.criteria[0].short) == ("", "", "")
    assert (nb.execution.cells[0].number, nb.execution.cells[0].injected) == (None, False)
    from grader.report.render import render_scorecard

    assert "cell 3 raised" in render_scorecard(result)
