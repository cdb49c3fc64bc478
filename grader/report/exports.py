"""The exports a coach hands on: the gradebook (CSV: one row per submission and notebook, one
column per ``challenge:criterion``), JUnit XML (one test case per criterion) and Gradescope's
``results.json``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from grader.report.leaderboard import Part, best_notebooks, figure
from grader.score import NotebookResult, Share, SubmissionResult

__all__ = ["gradebook_csv", "gradescope_results", "junit_xml"]


def _criterion_columns(results: Sequence[SubmissionResult]) -> list[str]:
    """Every ``challenge:criterion`` of every notebook of every submission, in first-seen order."""
    columns: list[str] = []
    for result in results:
        for nb in result.notebooks:
            for c in nb.criteria:
                key = f"{nb.challenge}:{c.id}"
                if key not in columns:
                    columns.append(key)
    return columns


def _predict_accuracy(result: SubmissionResult) -> float | None:
    found = [m.accuracy for nb in result.notebooks for m in nb.models if m.role == "predict"]
    return max(found) if found else None


_SHARE_COLUMNS = ("accuracy", "accuracy_low", "accuracy_high", "n",
                  "public_accuracy", "public_low", "public_high", "public_n",
                  "private_accuracy", "private_low", "private_high", "private_n")


def _share_cells(share: Share | None) -> list[str]:
    return ["", "", "", ""] if share is None else [
        f"{share.value:.4f}", f"{share.low:.4f}", f"{share.high:.4f}", str(share.n)]


def gradebook_csv(results: Sequence[SubmissionResult], *, leaderboard: Part = "all") -> str:
    """The gradebook: one row per submission and notebook (one row with an empty ``notebook``
    for a submission without any), in the given order.

    Columns: ``submission``, ``notebook``, ``challenge``; ``verdict``, ``score``, ``max_score`` of
    the notebook; ``submission_verdict``, ``submission_score``, ``submission_max_score``;
    ``ranked`` (``yes`` for the notebook that stands for the team on its challenge's leaderboard
    ranked by ``leaderboard``, see :mod:`grader.report.leaderboard`; ``no`` for its other notebooks for
    that challenge); ``practice`` (``yes`` for a result scored on the practice split of the public
    data, ``grader check --practice``, whose figures are then of that split, not of the hidden
    test set; else ``no``); the ``predict`` model's accuracy on the whole hidden test set with its 95%
    Wilson interval and ``n`` (``accuracy``, ``accuracy_low``, ``accuracy_high``, ``n``; a
    schema-1 result's interval computed from its accuracy and ``n``), the same for the public
    and the private part (``public_*``, ``private_*``; empty without a split); then the points
    earned per ``challenge:criterion`` of every notebook of the run (empty where the row's
    notebook has no such criterion). Shares are 0..1 with four decimals.
    """
    columns = _criterion_columns(results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["submission", "notebook", "challenge", "verdict", "score", "max_score",
                     "submission_verdict", "submission_score", "submission_max_score", "ranked", "practice",
                     *_SHARE_COLUMNS, *columns])
    for result in results:
        ranked = {id(nb) for nb, _ in best_notebooks(result, part=leaderboard).values()}
        team = [_csv_safe(result.submission)]
        totals = [result.verdict, f"{result.score:g}", f"{result.max_score:g}"]
        practice = "yes" if result.practice else "no"
        notebooks: list[NotebookResult | None] = [*result.notebooks] or [None]
        for nb in notebooks:
            if nb is None:
                writer.writerow([*team, "", "", "", "", "", *totals, "", practice, *([""] * len(_SHARE_COLUMNS)),
                                 *([""] * len(columns))])
                continue
            points = {f"{nb.challenge}:{c.id}": c.points for c in nb.criteria}
            model = next((m for m in nb.models if m.role == "predict"), None)
            shares = [cell for part in ("all", "public", "private")
                      for cell in _share_cells(figure(model, part))]
            writer.writerow([*team, _csv_safe(nb.notebook), nb.challenge or "", nb.verdict, f"{nb.score:g}",
                             f"{nb.max_score:g}", *totals,
                             "" if not nb.challenge else "yes" if id(nb) in ranked else "no", practice,
                             *shares, *(f"{points[k]:g}" if k in points else "" for k in columns)])
    return buf.getvalue()


def _csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ANSI escape sequences (CSI, OSC, and two-character ones), as tracebacks colour them
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-_])")
# characters XML 1.0 forbids (https://www.w3.org/TR/xml/#charsets): C0 controls but tab, LF and
# CR; lone surrogates; U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """``text`` without ANSI escapes and without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def junit_xml(results: Sequence[SubmissionResult]) -> str:
    """JUnit XML: a test suite per submission, a test case per criterion of each notebook.

    Written with ``xml.etree.ElementTree`` (which escapes ``<``, ``&`` and quotes); every text and
    attribute is first stripped of ANSI escapes and of the characters XML 1.0 forbids (see
    ``_xml_text``), which ElementTree would write as they are, so the file always parses.
    A practice result's suite (``grader check --practice``) is named ``<submission> (practice)``
    and carries the property ``practice`` = ``true``.
    """
    from xml.etree import ElementTree as ET

    def element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
        if text is not None:
            node.text = _xml_text(text)
        return node

    root = ET.Element("testsuites", name="grader")
    for result in results:
        cases = [(nb, c) for nb in result.notebooks for c in nb.criteria]
        failures = sum(c.status != "pass" for _, c in cases)  # fail or not_measured
        errors = sum(1 for nb in result.notebooks if not nb.criteria)
        name = f"{result.submission} (practice)" if result.practice else result.submission
        suite = element(root, "testsuite", name=name, tests=str(len(cases) + errors),
                        failures=str(failures), errors=str(errors), timestamp=result.started,
                        time=f"{sum(nb.execution.wall_s for nb in result.notebooks):.1f}")
        if result.practice:
            element(element(suite, "properties"), "property", name="practice", value="true")
        for nb, c in cases:
            case = element(suite, "testcase", classname=f"{result.submission}.{nb.challenge}", name=c.id)
            if c.status != "pass":
                element(case, "failure", f"{c.message}\nFix: {c.fix}", message=_xml_text(c.message)[:500],
                        type="required" if c.required else "optional")
        for nb in result.notebooks:
            if not nb.criteria:
                case = element(suite, "testcase", classname=result.submission, name=nb.notebook)
                element(case, "error", nb.execution.message, message=_xml_text(nb.execution.message)[:500])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def gradescope_results(result: SubmissionResult) -> dict[str, Any]:
    """Gradescope's autograder ``results.json``: a test per criterion, the score, a leaderboard
    entry for the hidden-test accuracy.

    Built field by field from what a team may see: the per-image results the grader keeps for
    paired comparisons (``ModelReport.correct``, ``ModelReport.public_mask``) never reach it. A
    practice result's output text starts with ``PRACTICE`` and says what it was scored on.
    """
    tests = []
    for nb in result.notebooks:
        for c in nb.criteria:
            tests.append({"name": f"{nb.notebook}: {c.title}", "score": c.points,
                          "max_score": c.max_points,
                          "status": "passed" if c.status == "pass" else "failed",
                          "output": c.message + ("" if c.status == "pass" else f"\nFix: {c.fix}"),
                          "visibility": "visible"})
        if not nb.criteria:
            tests.append({"name": nb.notebook, "score": 0, "max_score": 0, "status": "failed",
                          "output": nb.execution.message, "visibility": "visible"})
    out: dict[str, Any] = {
        "score": result.score,
        "execution_time": round(sum(nb.execution.wall_s for nb in result.notebooks)),
        "output": f"{result.verdict.upper()}: {result.score:g} of {result.max_score:g} points" if not result.practice
        else f"PRACTICE (scored on the practice split of the public data, not on the hidden test set): "
        f"{result.verdict.upper()}: {result.score:g} of {result.max_score:g} points",
        "visibility": "visible", "tests": tests,
    }
    accuracy = _predict_accuracy(result)
    if accuracy is not None:
        out["leaderboard"] = [{"name": "Practice accuracy" if result.practice else "Accuracy",
                               "value": round(accuracy, 4), "order": "desc"}]
    return out
