"""The exports in the layouts their importers document: the gradebook per team with the submission's
number and time, per student for Canvas and Moodle, Gradescope's ``results.json`` one per submission
in a zip, JUnit with optional criteria skipped and suite names unique."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from xml.etree import ElementTree as ET

from grader.report import (
    CohortEntry,
    Student,
    canvas_gradebook_csv,
    gradebook_csv,
    gradescope_results,
    gradescope_zip,
    junit_xml,
    moodle_gradebook_csv,
)
from grader.score.scorecard import CriterionResult, SubmissionResult
from tests.report.test_leaderboard import notebook, team, vector


def with_optional_miss(result: SubmissionResult) -> SubmissionResult:
    """``result`` whose notebooks also missed an optional criterion (``plot``, 0 of 2 points)."""
    miss = CriterionResult(id="plot", title="loss plot", status="fail", required=False, points=0, max_points=2,
                           message="no loss plot", fix="plot the loss")
    notebooks = [nb.model_copy(update={"criteria": [*nb.criteria, miss], "max_score": nb.max_score + 2})
                 for nb in result.notebooks]
    return result.model_copy(update={"notebooks": notebooks, "max_score": result.max_score + 2 * len(notebooks)})


def cohort() -> list[CohortEntry]:
    """An event's cohort: alpha on two challenges, "b=eta" on one, as the server's exports list it."""
    return [CohortEntry(team("alpha", notebook("gear.ipynb", vector(380), points=10)), number=3,
                        submitted="2026-12-01T10:00:00Z"),
            CohortEntry(team("=beta", notebook("gear.ipynb", vector(300), points=8, verdict="fail")), number=5,
                        submitted="2026-12-01T11:30:00Z"),
            CohortEntry(with_optional_miss(team("alpha", notebook("deep.ipynb", vector(200), challenge="gear-deep",
                                                                  points=6))), number=7,
                        submitted="2026-12-01T12:00:00Z")]


ROSTER = {"alpha": [Student("Ann Lee", "ann@uni.example", "s100"), Student("Bo, Jr.", "", "s101")],
          "=beta": [Student("Cy", "cy@uni.example", "")],
          "gamma": [Student("Di", "di@uni.example", "s300")]}  # gamma handed nothing in


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_gradebook_per_team_gives_the_submission_number_and_time() -> None:
    found = list(csv.DictReader(io.StringIO(gradebook_csv(cohort()))))
    assert [(r["submission"], r["submission_number"], r["submission_time"], r["challenge"]) for r in found] == [
        ("alpha", "3", "2026-12-01T10:00:00Z", "gear-cnn"), ("'=beta", "5", "2026-12-01T11:30:00Z", "gear-cnn"),
        ("alpha", "7", "2026-12-01T12:00:00Z", "gear-deep")]
    # grader check has no number: the time its grading started
    plain = list(csv.DictReader(io.StringIO(gradebook_csv([team("solo", notebook("a.ipynb", vector(10)))]))))
    assert (plain[0]["submission_number"], plain[0]["submission_time"]) == ("", "")  # grader check: no hand-in
    assert list(plain[0])[:4] == ["submission", "submission_number", "submission_time", "notebook"]


def test_the_canvas_gradebook_has_canvas_columns_and_one_row_per_student() -> None:
    found = rows(canvas_gradebook_csv(cohort(), ROSTER))
    # Canvas Instructor Guide, "How do I import grades in the Gradebook?": the export's columns
    assert found[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "gear-cnn", "gear-deep"]
    assert found[1] == ["    Points Possible", "", "", "", "", "12", "14"]
    assert found[2:] == [["Ann Lee", "", "s100", "ann@uni.example", "", "10", "6"],
                         ["Bo, Jr.", "", "s101", "", "", "10", "6"],
                         ["Cy", "", "", "cy@uni.example", "", "8", ""],
                         ["Di", "", "s300", "di@uni.example", "", "", ""]]
    assert rows(canvas_gradebook_csv(cohort(), {"alpha": [Student("@cmd", "", "=1+1")]}))[2][:3] == [
        "'@cmd", "", "'=1+1"]  # no cell a spreadsheet runs as a formula


def test_the_moodle_gradebook_identifies_users_and_carries_number_and_time() -> None:
    found = rows(moodle_gradebook_csv(cohort(), ROSTER))
    # Moodle docs, "Grade import": a column to identify the user by (ID number, email address), grade items
    assert found[0] == ["Full name", "ID number", "Email address",
                        "gear-cnn", "gear-cnn submission", "gear-cnn submitted",
                        "gear-deep", "gear-deep submission", "gear-deep submitted"]
    assert found[1] == ["Ann Lee", "s100", "ann@uni.example", "10", "3", "2026-12-01T10:00:00Z",
                        "6", "7", "2026-12-01T12:00:00Z"]
    assert found[3] == ["Cy", "", "cy@uni.example", "8", "5", "2026-12-01T11:30:00Z", "", "", ""]
    assert found[4] == ["Di", "s300", "di@uni.example", "", "", "", "", "", ""]
    assert len(found) == 5


# Gradescope's "Autograder Specifications": the keys results.json and each of its tests may have
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def check_results_json(data: dict[str, object]) -> None:
    assert set(data) <= TOP_KEYS and data["visibility"] in VISIBILITY
    tests = data["tests"]
    assert isinstance(tests, list) and tests
    for t in tests:
        assert set(t) <= TEST_KEYS and {"name", "score", "max_score", "status"} <= set(t)
        assert t["status"] in ("passed", "failed") and t["visibility"] in VISIBILITY
        assert isinstance(t["score"], int | float) and isinstance(t["max_score"], int | float)
        assert all(isinstance(tag, str) for tag in t.get("tags", []))
    assert data["score"] == sum(t["score"] for t in tests)
    for entry in data.get("leaderboard", []):  # type: ignore[attr-defined]
        assert set(entry) == {"name", "value", "order"} and entry["order"] in ("asc", "desc")


def test_the_gradescope_zip_holds_one_valid_results_json_per_submission() -> None:
    entries = [*cohort(), CohortEntry(team("=beta", notebook("x.ipynb", vector(1))), number=9),
               CohortEntry(team("=beta", notebook("y.ipynb", vector(1))), number=10)]
    with zipfile.ZipFile(io.BytesIO(gradescope_zip(entries))) as zf:
        names = zf.namelist()
        assert names == ["alpha/gear-cnn/results.json", "beta/gear-cnn/results.json",
                         "alpha/gear-deep/results.json", "beta-2/gear-cnn/results.json",
                         "beta-3/gear-cnn/results.json"]
        data = {name: json.loads(zf.read(name)) for name in names}
    for found in data.values():
        check_results_json(found)
    deep = data["alpha/gear-deep/results.json"]
    assert deep["extra_data"] == {"submission": "alpha", "submitted": "2026-12-01T12:00:00Z", "submission_number": 7}
    assert [(t["number"], t["status"], t["tags"]) for t in deep["tests"]] == [
        ("1.1", "passed", ["gear-deep", "required"]), ("1.2", "failed", ["gear-deep", "optional"])]
    assert deep["tests"][1]["output"] == "no loss plot\nFix: plot the loss"
    assert gradescope_zip(entries) == gradescope_zip(entries)  # the same bytes for the same cohort


def test_gradescope_results_of_grader_check_have_no_number() -> None:
    found = gradescope_results(team("solo", notebook("a.ipynb", None, verdict="fail", points=0)))
    check_results_json(found)
    assert found["extra_data"] == {"submission": "solo"}  # a folder is no hand-in: no time
    assert "leaderboard" not in found  # no predict model measured


def test_junit_skips_optional_misses_and_names_every_suite_once() -> None:
    root = ET.fromstring(junit_xml(cohort()))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["alpha/gear-cnn", "=beta/gear-cnn", "alpha/gear-deep"]
    deep = suites[2]
    assert (deep.get("tests"), deep.get("failures"), deep.get("skipped"), deep.get("errors")) == ("2", "0", "1", "0")
    skipped = deep.find("testcase[@name='plot']/skipped")
    assert skipped is not None and skipped.get("message") == "no loss plot"
    assert deep.find("testcase/failure") is None
    assert deep.find("properties/property[@name='submission_number']").get("value") == "7"  # type: ignore[union-attr]
    beta = suites[1]
    assert (beta.get("failures"), beta.get("skipped")) == ("1", "0")
    assert beta.find("testcase/failure").get("type") == "required"  # type: ignore[union-attr]
    # grader check: the submission's name, and a counter where a name still repeats
    twice = [team("t", notebook("a.ipynb", vector(1))), team("t", notebook("b.ipynb", vector(1))),
             team("u", notebook("c.ipynb", vector(1)))]
    names = [s.get("name") for s in ET.fromstring(junit_xml(twice)).findall("testsuite")]
    assert names == ["t/gear-cnn", "t/gear-cnn (2)", "u/gear-cnn"]
    assert [s.get("name") for s in ET.fromstring(junit_xml(twice[1:])).findall("testsuite")] == ["t", "u"]
