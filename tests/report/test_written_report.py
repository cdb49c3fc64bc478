"""Written answers on every page and export: the scorecard (student text escaped, Markdown without
HTML), the team's card before a grade is released, the grading sheet's round trip, the
grade-by-question page, the gradebook, JUnit and Gradescope."""

from __future__ import annotations

import csv
import io
import re
from xml.etree import ElementTree as ET

from grader.report import (
    answers_html,
    apply_sheet,
    gradebook_csv,
    gradescope_results,
    grading_sheet_csv,
    junit_xml,
    markdown_html,
    read_grading_sheet,
    render_scorecard,
    render_team_scorecards,
)
from grader.score import Grade, SubmissionResult, apply_grades
from tests.score.test_written import result_with

EVIL = "<script>alert(1)</script>"


def team(name: str, text: str, status: str = "awaiting") -> SubmissionResult:
    return result_with(status, text=text).model_copy(update={"submission": name})


def test_markdown_is_rendered_without_raw_html_or_script_links() -> None:
    html = str(markdown_html(f"**bold** {EVIL} [x](javascript:alert(1)) ![cat](https://evil.example/c.png)"))
    assert "<strong>bold</strong>" in html and "&lt;script&gt;" in html and "<script" not in html
    assert 'href="javascript' not in html and "<img" not in html
    assert 'href="https://evil.example/c.png" rel="nofollow noopener noreferrer">image: cat</a>' in html


def test_a_markdown_table_is_a_table_and_its_cells_are_escaped() -> None:
    html = str(markdown_html(f"| class | photos |\n| --- | ---: |\n| boots | 116 |\n| {EVIL} | 1 |\n"))
    assert "<table>" in html and "<th>class</th>" in html and '<td style="text-align:right">116</td>' in html
    assert "<script" not in html and "&lt;script&gt;" in html


def test_the_scorecard_shows_the_question_the_answer_and_its_status() -> None:
    waiting = team("t1", f"Photos *vary* far more {EVIL}")
    html = render_scorecard(waiting)
    assert "Why is CIFAR-10 harder than MNIST?" in html and "<em>vary</em>" in html
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "awaiting the coach" in html and "AWAITING" in html and ".awaiting {" in html
    graded, _ = apply_grades(waiting, {"gap": Grade(points=1, comment=f"Say why {EVIL}", items=(2,))})
    html = render_scorecard(graded)
    assert "1 of 2 points" in html and "Say why &lt;script&gt;" in html
    assert '<li class="checked">✓ says why' in html and '<li class="unchecked">gives the error' in html
    missing = render_scorecard(team("t2", "*YOUR ANSWER HERE*", "fail"))
    assert "no answer" in missing and "What to do: Answer it" in missing


def test_a_team_sees_its_answer_and_the_grade_only_once_released() -> None:
    graded, _ = apply_grades(team("t1", "Photos vary far more."), {"gap": Grade(points=2, comment="Well argued")})
    before = render_team_scorecards(graded)
    assert "Photos vary far more." in before and "awaiting the coach" in before and "Well argued" not in before
    after = render_team_scorecards(graded, released={"cifar:gap"})
    assert "Well argued" in after and "2 of 2 points" in after
    assert "Well argued" in render_scorecard(graded)  # the coach's scorecard: every grade applied


def sheet_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_sheet_round_trip_applies_points_comments_and_items() -> None:
    results = [team("alpha", "Photos vary far more."), team("beta", "=1+1 is how I started; photos vary")]
    folders = ["alpha", "beta"]
    written = grading_sheet_csv(results, folders)
    rows = sheet_rows(written)
    assert list(rows[0]) == ["submission", "team", "challenge", "criterion", "question", "max_points", "answer",
                             "points", "comment", "items"]
    assert [(r["submission"], r["criterion"], r["points"]) for r in rows] == [("alpha", "gap", ""), ("beta", "gap", "")]
    assert rows[1]["answer"].startswith("'=1+1")  # a spreadsheet does not run it as a formula
    rows[0].update(points="1,5", comment="Give the figure.", items="1")
    rows[1].update(items="1;2")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    read, problems = read_grading_sheet("\ufeff" + buf.getvalue())  # a spreadsheet's save: BOM, ';', decimal comma
    assert problems == []
    graded, refused = apply_sheet(results, folders, read)
    assert refused == []
    [a], [b] = (g.notebooks[0].criteria[1:] for g in graded)
    assert (a.status, a.points, a.comment, a.items) == ("graded", 1.5, "Give the figure.", [1])
    assert (b.points, b.items) == (2, [1, 2]) and graded[1].verdict == "pass"
    again = sheet_rows(grading_sheet_csv(graded, folders))
    assert (again[0]["points"], again[0]["comment"], again[0]["items"]) == ("1.5", "Give the figure.", "1")


def test_rows_that_cannot_apply_are_named_with_their_lines() -> None:
    results = [team("alpha", "Photos vary\nfar more.")]
    text = ("submission,team,challenge,criterion,question,max_points,answer,points,comment,items\r\n"
            'alpha,alpha,cifar,gap,q,2,"Photos vary\r\nfar more.",3,,\r\n'   # lines 2-3: out of range
            "ghost,ghost,cifar,gap,q,2,x,1,,\r\n"                              # line 4
            "alpha,alpha,cifar,nope,q,2,x,1,,\r\n"                             # line 5
            "alpha,alpha,cifar,gap,q,2,An answer the team has since rewritten,1,,\r\n"  # line 6
            "alpha,alpha,cifar,gap,q,2,x,two,,\r\n"                            # line 7
            "alpha,alpha,cifar,gap,q,2,x,,only a comment,\r\n"                 # line 8
            "alpha,alpha,cifar,gap,q,2,x,,,\r\n")                              # line 9: not graded yet
    rows, problems = read_grading_sheet(text)
    assert problems == ["line 7: points 'two' is not a number",
                        "line 8: a comment without points or items; give the points too"]
    graded, refused = apply_sheet(results, ["alpha"], rows)
    assert graded == results
    joined = "\n".join(refused)
    assert "line 2: repeated on line 6, which counts" in joined
    assert "line 4: unknown submission 'ghost'" in joined
    assert "line 5: alpha, cifar:nope: unknown criterion of challenge cifar" in joined
    assert "line 6: alpha, cifar:gap: answer changed since the sheet was written" in joined
    single, [why] = apply_sheet(results, ["alpha"], rows[:1])
    assert why.startswith("line 2: alpha, cifar:gap: points 3 out of range") and single == results


def test_the_grade_by_question_page_lists_every_answer_without_script() -> None:
    results = [team("alpha", f"Answer **one** {EVIL}"), team("beta", "*YOUR ANSWER HERE*", "fail")]
    html = answers_html(results, ["alpha", "beta"])
    assert "<script" not in html and "&lt;script&gt;" in html and "<strong>one</strong>" in html
    assert 'name="viewport"' in html and "Why is CIFAR-10 harder than MNIST?" in html
    assert html.index('href="alpha/scorecard.html"') < html.index('href="beta/scorecard.html"')
    assert "1 awaiting the coach" in html and ">no answer</span>" in html


def test_exports_carry_the_coachs_points() -> None:
    waiting = team("alpha", "Photos vary far more.")
    graded, _ = apply_grades(team("beta", "Photos vary far more."), {"gap": Grade(points=1.5, comment="Fine")})
    book = sheet_rows(gradebook_csv([waiting, graded]))
    assert [(r["verdict"], r["cifar:gap"], r["score"]) for r in book] == [
        ("awaiting", "awaiting", "1"), ("pass", "1.5", "2.5")]
    suites = ET.fromstring(junit_xml([waiting, graded])).findall("testsuite")
    [skip] = suites[0].findall("testcase/skipped")
    assert skip.get("message") == "awaiting the coach" and suites[0].get("skipped") == "1"
    case = next(c for c in suites[1].findall("testcase") if c.get("name", "").startswith("gap"))
    assert case.get("name") == "gap (1.5 of 2 points)" and not list(case.iter("failure"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {"points": "1.5", "max_points": "2", "comment": "Fine"}
    tests = gradescope_results(graded)["tests"]
    assert [(t["visibility"], t.get("status"), t["score"]) for t in tests] == [
        ("visible", "passed", 1), ("after_published", "passed", 1.5)]
    assert "Coach: Fine" in tests[1]["output"]
    waiting_test = gradescope_results(waiting)["tests"][1]
    assert "status" not in waiting_test and re.search("Awaiting the coach", waiting_test["output"])


def test_one_answer_renders_alone_for_another_page() -> None:
    from grader.report import written_answer_html

    row = team("t1", f"Mine {EVIL}").notebooks[0].criteria[1]
    html = str(written_answer_html(row, show_question=False))
    assert "&lt;script&gt;" in html and "awaiting the coach" in html and "Why is CIFAR-10" not in html
