"""The exports a coach hands on, each in the layout its importer documents: the gradebook per team
(CSV: one row per submission and notebook), per student for Canvas and for Moodle (CSV, from the
members ``teams.csv`` lists), JUnit XML (one test case per criterion) and Gradescope's
``results.json`` (one per submission; a zip of them for the cohort).

Pure: results in, text or bytes out; :mod:`grader.report.render` (``grader check``) and the event
server's ``/coach/export/`` routes write or serve them. The per-student layouts are for the event
server, which knows the members; ``grader check`` writes the per-team gradebook, JUnit and one
``results.json`` per submission folder.

Written answers (coach-graded criteria) are in each: the coach's points in the gradebooks' points
and totals, a ``<skipped>`` "awaiting the coach" test case in JUnit until graded, a Gradescope test
shown to the student once the coach publishes the grades. The module stays whole past 400 lines:
one self-contained function per importer's layout, read side by side.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.core import safe_name
from grader.report.leaderboard import Part, best_notebooks, figure
from grader.score import CriterionResult, NotebookResult, Share, SubmissionResult

__all__ = ["CANVAS_COLUMNS", "FORMULA_START", "MOODLE_COLUMNS", "CohortEntry", "Student", "canvas_gradebook_csv",
           "csv_safe", "gradebook_csv", "gradescope_results", "gradescope_zip", "junit_xml", "moodle_gradebook_csv"]


@dataclass(frozen=True)
class Student:
    """A member of a team, as the coach's ``teams.csv`` lists them; ``email`` and ``student_id``
    are "" where the coach gave none."""

    name: str
    email: str = ""
    student_id: str = ""


@dataclass(frozen=True)
class CohortEntry:
    """One graded submission as the exports list it.

    Attributes:
        result: the graded submission (on the event server named after its team, with the
            notebooks of one challenge).
        number: the submission's number as the event server's pages show it; None for ``grader
            check``, which has none.
        submitted: when it was handed in, ISO 8601 UTC; "" for ``grader check``, which grades
            folders, not hand-ins (its exports leave the time empty: the same results give the
            same gradebook, whenever and wherever they were graded).
    """

    result: SubmissionResult
    number: int | None = None
    submitted: str = ""

    @property
    def time(self) -> str:
        return self.submitted


Item = SubmissionResult | CohortEntry


def _entries(items: Sequence[Item]) -> list[CohortEntry]:
    return [i if isinstance(i, CohortEntry) else CohortEntry(i) for i in items]


def _number(entry: CohortEntry) -> str:
    return "" if entry.number is None else str(entry.number)


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


_SHARE_COLUMNS = ("accuracy", "accuracy_low", "accuracy_high", "n",
                  "public_accuracy", "public_low", "public_high", "public_n",
                  "private_accuracy", "private_low", "private_high", "private_n")


def _share_cells(share: Share | None) -> list[str]:
    return ["", "", "", ""] if share is None else [
        f"{share.value:.4f}", f"{share.low:.4f}", f"{share.high:.4f}", str(share.n)]


def gradebook_csv(items: Sequence[Item], *, leaderboard: Part = "all") -> str:
    """The gradebook per team: one row per submission and notebook (one row with an empty
    ``notebook`` for a submission without any), in the given order.

    Columns: ``submission`` (the folder's name; on the event server the team's);
    ``submission_number`` (the event server's number of the submission, as its pages show it; empty
    for ``grader check``); ``submission_time`` (ISO 8601 UTC: when it was handed in; empty for
    ``grader check``); ``notebook``, ``challenge``; ``verdict``, ``score``,
    ``max_score`` of the notebook; ``submission_verdict``, ``submission_score``,
    ``submission_max_score``; ``ranked`` (``yes`` for the notebook that stands for the team on its
    challenge's leaderboard ranked by ``leaderboard``, see :mod:`grader.report.leaderboard`; ``no``
    for its other notebooks for that challenge); ``practice`` (``yes`` for a result scored on the
    practice split of the public data, ``grader check --practice``, whose figures are then of that
    split, not of the hidden test set; else ``no``); the ``predict`` model's accuracy on the whole
    hidden test set with its 95% Wilson interval and ``n`` (``accuracy``, ``accuracy_low``,
    ``accuracy_high``, ``n``; a schema-1 result's interval computed from its accuracy and ``n``),
    the same for the public and the private part (``public_*``, ``private_*``; empty without a
    split); then the points earned per ``challenge:criterion`` of every notebook of the run (the
    coach's points for a graded written answer, ``awaiting`` while it awaits the coach; empty where
    the row's notebook has no such criterion). Shares are 0..1 with four decimals.
    """
    entries = _entries(items)
    columns = _criterion_columns([e.result for e in entries])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["submission", "submission_number", "submission_time", "notebook", "challenge", "verdict",
                     "score", "max_score", "submission_verdict", "submission_score", "submission_max_score", "ranked",
                     "practice", *_SHARE_COLUMNS, *columns])
    for entry in entries:
        result = entry.result
        ranked = {id(nb) for nb, _ in best_notebooks(result, part=leaderboard).values()}
        team = [csv_safe(result.submission), _number(entry), entry.time]
        totals = [result.verdict, f"{result.score:g}", f"{result.max_score:g}"]
        practice = "yes" if result.practice else "no"
        notebooks: list[NotebookResult | None] = [*result.notebooks] or [None]
        for nb in notebooks:
            if nb is None:
                writer.writerow([*team, "", "", "", "", "", *totals, "", practice, *([""] * len(_SHARE_COLUMNS)),
                                 *([""] * len(columns))])
                continue
            points = {f"{nb.challenge}:{c.id}": "awaiting" if c.status == "awaiting" else f"{c.points:g}"
                      for c in nb.criteria}
            model = next((m for m in nb.models if m.role == "predict"), None)
            shares = [cell for part in ("all", "public", "private")
                      for cell in _share_cells(figure(model, part))]
            writer.writerow([*team, csv_safe(nb.notebook), nb.challenge or "", nb.verdict, f"{nb.score:g}",
                             f"{nb.max_score:g}", *totals,
                             "" if not nb.challenge else "yes" if id(nb) in ranked else "no", practice,
                             *shares, *(points.get(k, "") for k in columns)])
    return buf.getvalue()


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so a spreadsheet may run as a formula


def csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): ``text`` with a
    leading ``'`` where it starts with one of :data:`FORMULA_START`."""
    return "'" + text if text[:1] in FORMULA_START else text


@dataclass(frozen=True)
class _Grade:
    """A team's grade on one challenge: the points of the notebook that stands for it."""

    points: float
    number: str
    time: str


def _grades(entries: Sequence[CohortEntry], part: Part) -> tuple[dict[str, float], dict[str, dict[str, _Grade]]]:
    """``(points possible per challenge, team -> challenge -> grade)``; the first entry of a team
    for a challenge counts (the event server gives one: the team's chosen submission)."""
    possible: dict[str, float] = {}
    grades: dict[str, dict[str, _Grade]] = {}
    for entry in entries:
        for challenge, (nb, _) in best_notebooks(entry.result, part=part).items():
            possible[challenge] = max(possible.get(challenge, 0.0), nb.max_score)
            grades.setdefault(entry.result.submission, {}).setdefault(
                challenge, _Grade(nb.score, _number(entry), entry.time))
    return possible, grades


# Canvas, "How do I import grades in the Gradebook?" (Instructor Guide,
# community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807): the
# columns of the Gradebook's own CSV export, which its import reads back
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# Canvas's export writes the points of each assignment in a second row whose first cell is this
CANVAS_POINTS_ROW = "    Points Possible"


def canvas_gradebook_csv(items: Sequence[Item], roster: Mapping[str, Sequence[Student]], *,
                         leaderboard: Part = "all") -> str:
    """The gradebook per student in the layout Canvas's Gradebook imports (Canvas Instructor Guide,
    "How do I import grades in the Gradebook?"; the same columns as the Gradebook's CSV export).

    Columns :data:`CANVAS_COLUMNS`, then one assignment column per challenge named after it (no
    Canvas assignment id: Canvas matches the name with an assignment of that name or offers to
    create one). ``Student`` is the member's name, ``ID`` (Canvas's own user id, which the grader
    cannot know) is empty, ``SIS User ID`` the student id, ``SIS Login ID`` the email (the login of
    many institutions), ``Section`` empty (Canvas requires the column, not a value). The second
    row, as in Canvas's export, gives each challenge's points possible. A cell holds the points of
    the notebook that stands for the student's team on that challenge (:func:`best_notebooks`
    ranked by ``leaderboard``), empty where the team has none.

    The submission number and time are not in this file: Canvas would read any further column as
    one more assignment. :func:`moodle_gradebook_csv` and :func:`gradebook_csv` carry them.

    Args:
        items: the cohort's graded submissions, each named after its team.
        roster: team name -> its members, in the order of the rows (teams.csv order); a team
            without members has no row, a team without a graded submission rows with empty grades.
    """
    possible, grades = _grades(_entries(items), leaderboard)
    challenges = list(possible)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, *challenges])
    writer.writerow([CANVAS_POINTS_ROW, "", "", "", "", *(f"{possible[c]:g}" for c in challenges)])
    for team, students in roster.items():
        got = grades.get(team, {})
        for s in students:
            writer.writerow([csv_safe(s.name), "", csv_safe(s.student_id), csv_safe(s.email), "",
                             *(f"{got[c].points:g}" if c in got else "" for c in challenges)])
    return buf.getvalue()


# Moodle, "Grade import" (docs.moodle.org/en/Grade_import): the CSV's user is identified by a column
# mapped to a user field ("Identify user by": ID number or email address); every other column is
# mapped to a grade item, or left at "Ignore"
MOODLE_COLUMNS = ("Full name", "ID number", "Email address")


def moodle_gradebook_csv(items: Sequence[Item], roster: Mapping[str, Sequence[Student]], *,
                         leaderboard: Part = "all") -> str:
    """The gradebook per student in the layout Moodle's "Import grades from CSV" reads (Moodle docs,
    "Grade import": a header row, a column that identifies the user, one column per grade item).

    Columns :data:`MOODLE_COLUMNS` (at import, "Identify user by" maps ``ID number`` to the user's
    ID number or ``Email address`` to the email address); then per challenge three columns: the
    challenge's id (the points: map it to a grade item, or to a new one), ``<challenge>
    submission`` (the submission's number on the event's pages) and ``<challenge> submitted``
    (ISO 8601 UTC), which Moodle imports only when mapped (leave them at "Ignore"). Rows and grades
    as :func:`canvas_gradebook_csv`.
    """
    possible, grades = _grades(_entries(items), leaderboard)
    challenges = list(possible)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*MOODLE_COLUMNS, *(h for c in challenges for h in (c, f"{c} submission", f"{c} submitted"))])
    for team, students in roster.items():
        got = grades.get(team, {})
        cells = [cell for c in challenges for cell in (
            (f"{got[c].points:g}", got[c].number, got[c].time) if c in got else ("", "", ""))]
        for s in students:
            writer.writerow([csv_safe(s.name), csv_safe(s.student_id), csv_safe(s.email), *cells])
    return buf.getvalue()


# ANSI escape sequences (CSI, OSC, and two-character ones), as tracebacks colour them
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-_])")
# characters XML 1.0 forbids (https://www.w3.org/TR/xml/#charsets): C0 controls but tab, LF and
# CR; lone surrogates; U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """``text`` without ANSI escapes and without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def _challenge_of(result: SubmissionResult) -> str | None:
    """The one challenge of the notebooks of ``result``, or None (none, or several)."""
    found = {nb.challenge for nb in result.notebooks if nb.challenge}
    return found.pop() if len(found) == 1 else None


def _suite_names(results: Sequence[SubmissionResult]) -> list[str]:
    """A unique name per result: its submission's; where a submission's name repeats (the event
    server's cohort lists a team once per challenge), ``<submission>/<challenge>`` for each result
    of one challenge; a name still repeated gets `` (2)``, `` (3)``, ... in order."""
    base = [r.submission for r in results]
    if len(set(base)) < len(base):
        base = [f"{r.submission}/{c}" if (c := _challenge_of(r)) else r.submission for r in results]
    seen: dict[str, int] = {}
    names = []
    for name in base:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def junit_xml(items: Sequence[Item]) -> str:
    """JUnit XML: a test suite per submission, a test case per criterion of each notebook.

    The layout JUnit's consumers read (the Ant/Jenkins ``junit`` schema, as GitLab and GitHub
    reporters take it): a required criterion missed (failed or not measured) is a ``<failure>``;
    an optional one missed is ``<skipped>`` (the verdict does not need it); a written answer that
    awaits the coach is ``<skipped>`` with the message "awaiting the coach", one the coach graded
    passes with its points in its name (``mnist-gap (1.5 of 2 points)``) and in its properties
    ``points``, ``max_points`` and ``comment`` (missed as any other below half its points); a notebook that
    produced no criteria (it did not run) an ``<error>``. Each suite counts ``tests``,
    ``failures``, ``errors`` and ``skipped``. Suite names are unique (:func:`_suite_names`): the
    submission's name, ``<team>/<challenge>`` where a team has several challenges' submissions, a
    counter where still needed. A practice result's suite (``grader check --practice``) is named
    ``<name> (practice)`` and carries the property ``practice`` = ``true``.

    Written with ``xml.etree.ElementTree`` (which escapes ``<``, ``&`` and quotes); every text and
    attribute is first stripped of ANSI escapes and of the characters XML 1.0 forbids (see
    ``_xml_text``), which ElementTree would write as they are, so the file always parses.
    """
    from xml.etree import ElementTree as ET

    def element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
        if text is not None:
            node.text = _xml_text(text)
        return node

    entries = _entries(items)
    root = ET.Element("testsuites", name="grader")
    for entry, name in zip(entries, _suite_names([e.result for e in entries]), strict=True):
        result = entry.result
        cases = [(nb, c) for nb in result.notebooks for c in nb.criteria]
        failures = sum(not c.met and c.status != "awaiting" and c.required for _, c in cases)  # fail, not_measured
        skipped = sum(not c.met and (c.status == "awaiting" or not c.required) for _, c in cases)
        errors = sum(1 for nb in result.notebooks if not nb.criteria)
        suite = element(root, "testsuite", name=f"{name} (practice)" if result.practice else name,
                        tests=str(len(cases) + errors), failures=str(failures), errors=str(errors),
                        skipped=str(skipped), timestamp=entry.time or result.started,  # a check: when it ran
                        time=f"{sum(nb.execution.wall_s for nb in result.notebooks):.1f}")
        props = {"practice": "true"} if result.practice else {}
        if entry.number is not None:
            props["submission_number"] = str(entry.number)
        node = element(suite, "properties") if props else suite
        for key, value in props.items():
            element(node, "property", name=key, value=value)
        for nb, c in cases:
            graded = f" ({c.points:g} of {c.max_points:g} points)" if c.status == "graded" else ""
            case = element(suite, "testcase", classname=f"{result.submission}.{nb.challenge}", name=c.id + graded)
            if c.status == "awaiting":
                element(case, "skipped", c.message, message="awaiting the coach")
            elif c.status == "graded":
                graded_props = element(case, "properties")
                element(graded_props, "property", name="points", value=f"{c.points:g}")
                element(graded_props, "property", name="max_points", value=f"{c.max_points:g}")
                if c.comment:
                    element(graded_props, "property", name="comment", value=c.comment[:2000])
                if not c.met:
                    element(case, "failure" if c.required else "skipped", c.message,
                            message=_xml_text(c.message)[:500], **({"type": "required"} if c.required else {}))
            elif c.status != "pass":
                element(case, "failure" if c.required else "skipped", f"{c.message}\nFix: {c.fix}",
                        message=_xml_text(c.message)[:500], **({"type": "required"} if c.required else {}))
        for nb in result.notebooks:
            if not nb.criteria:
                case = element(suite, "testcase", classname=result.submission, name=nb.notebook)
                element(case, "error", nb.execution.message, message=_xml_text(nb.execution.message)[:500])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def gradescope_results(item: Item) -> dict[str, Any]:
    """Gradescope's autograder ``results.json`` of one submission (Gradescope's "Autograder
    Specifications", the output format): ``score``, ``execution_time`` (s), ``output``,
    ``output_format`` (``text``), ``visibility``, ``tests`` (per criterion: ``name``, ``number``
    ``<notebook>.<criterion>`` counted from 1, ``score``, ``max_score``, ``status`` ``passed`` or
    ``failed``, ``output`` with the fix, ``tags`` the challenge and ``required`` or ``optional``,
    ``visibility``; a notebook that produced no criteria one failed test; a written answer's test
    ``"visibility": "after_published"``, with the coach's points and comment once graded and no
    ``status`` while it awaits the coach), ``leaderboard`` (the
    ``predict`` accuracy on the hidden test set) and ``extra_data`` (``submission``, and on the
    event server ``submission_number``; ``submitted``, ISO 8601 UTC).

    Built field by field from what a team may see: the per-image results the grader keeps for
    paired comparisons (``ModelReport.correct``, ``ModelReport.public_mask``) never reach it. A
    practice result's output text starts with ``PRACTICE`` and says what it was scored on.
    """
    [entry] = _entries([item])
    result = entry.result
    tests: list[dict[str, Any]] = []
    for i, nb in enumerate(result.notebooks, start=1):
        for j, c in enumerate(nb.criteria, start=1):
            if c.coach_graded:
                tests.append(_written_test(nb, c, f"{i}.{j}"))
                continue
            tests.append({"name": f"{nb.notebook}: {c.title}", "number": f"{i}.{j}", "score": c.points,
                          "max_score": c.max_points, "status": "passed" if c.status == "pass" else "failed",
                          "output": c.message + ("" if c.status == "pass" else f"\nFix: {c.fix}"),
                          "tags": [nb.challenge or "", "required" if c.required else "optional"],
                          "visibility": "visible"})
        if not nb.criteria:
            tests.append({"name": nb.notebook, "number": f"{i}", "score": 0, "max_score": 0, "status": "failed",
                          "output": nb.execution.message, "visibility": "visible"})
    said = f"{result.verdict.upper()}: {result.score:g} of {result.max_score:g} points"
    extra: dict[str, Any] = {"submission": result.submission} | ({"submitted": entry.time} if entry.time else {})
    if entry.number is not None:
        extra["submission_number"] = entry.number
    out: dict[str, Any] = {
        "score": result.score,
        "execution_time": round(sum(nb.execution.wall_s for nb in result.notebooks)),
        "output": said if not result.practice
        else f"PRACTICE (scored on the practice split of the public data, not on the hidden test set): {said}",
        "output_format": "text", "visibility": "visible", "tests": tests, "extra_data": extra,
    }
    found = [m.accuracy for nb in result.notebooks for m in nb.models if m.role == "predict"]
    if found:
        accuracy = max(found)
        out["leaderboard"] = [{"name": "Practice accuracy" if result.practice else "Accuracy",
                               "value": round(accuracy, 4), "order": "desc"}]
    return out


def _written_test(nb: NotebookResult, c: CriterionResult, number: str) -> dict[str, Any]:
    """Gradescope's test of a coach-graded criterion: the coach's points and comment, visible to the
    student once the coach publishes the grades (Gradescope's ``"visibility": "after_published"``);
    ``status`` passed when met, failed when missed, absent while it awaits the coach."""
    if c.status == "graded":
        checked = [f"[x] {c.rubric_items[k - 1].text}" for k in c.items if 0 < k <= len(c.rubric_items)]
        output = "\n".join([c.message, *checked, *([f"Coach: {c.comment}"] if c.comment else [])])
    elif c.status == "awaiting":
        output = "Awaiting the coach's grade."
    else:
        output = f"{c.message}\nFix: {c.fix}"
    test: dict[str, Any] = {"name": f"{nb.notebook}: {c.title}", "number": number, "score": c.points,
                            "max_score": c.max_points, "output": output,
                            "tags": [nb.challenge or "", "required" if c.required else "optional", "coach-graded"],
                            "visibility": "after_published"}
    if c.status != "awaiting":
        test["status"] = "passed" if c.met else "failed"
    return test


def gradescope_zip(items: Sequence[Item]) -> bytes:
    """A zip of one Gradescope ``results.json`` (:func:`gradescope_results`) per submission, at
    ``<team>/<challenge>/results.json``: names made safe (:func:`grader.core.safe_name`; ``all``
    for a submission of several challenges or none), a ``-2``, ``-3``, ... on the team's folder
    where two would meet. Entries dated 1980-01-01 (the zip epoch), so the same cohort gives the
    same bytes."""
    buf = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in _entries(items):
            team, challenge = safe_name(entry.result.submission), safe_name(_challenge_of(entry.result) or "all")
            path, k = f"{team}/{challenge}/results.json", 1
            while path in used:
                k += 1
                path = f"{team}-{k}/{challenge}/results.json"
            used.add(path)
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, json.dumps(gradescope_results(entry), indent=2) + "\n")
    return buf.getvalue()
