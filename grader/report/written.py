"""Grading written answers from the command line: the grading sheet a coach fills in a
spreadsheet (``grading-sheet.csv``), reading it back, applying it to the results, and the
grade-by-question page (``answers.html``).

The sheet has one row per submission and coach-graded criterion, columns :data:`SHEET_COLUMNS`:
``submission`` (the output folder's name: unique in the run), ``team`` (the submission's name),
``challenge``, ``criterion``, ``question``, ``max_points``, ``answer`` (the team's text),
``points`` (empty until graded), ``comment`` and ``items`` (the checked rubric items' numbers,
``;``-separated). The coach fills ``points`` (or only ``items``: the points are then their sum),
``comment`` and ``items``; :func:`apply_sheet` applies them (:func:`grader.score.apply_grades`) and
names every row it could not apply, with its line. A row whose ``answer`` differs from the team's
answer now (compared with runs of white space made one space: spreadsheets rewrap and change line
endings) is not applied: "answer changed".

Cells a spreadsheet could run as a formula (student text starting with ``=``, ``+``, ``-``, ``@``)
are written with a leading ``'`` (OWASP's CSV injection advice) and read back without it.

Pure: results in, text out; :mod:`grader.report.render` and the CLI write and read the files.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from grader.report.exports import FORMULA_START, csv_safe
from grader.report.jinja import template
from grader.score import CriterionResult, Grade, SubmissionResult, apply_grades, grade_key

__all__ = ["SHEET_COLUMNS", "Question", "SheetRow", "answers_html", "apply_sheet", "grading_sheet_csv", "has_written",
           "question_sections", "read_grading_sheet", "written_answer_html"]

SHEET_COLUMNS = ("submission", "team", "challenge", "criterion", "question", "max_points", "answer", "points",
                 "comment", "items")
def _unsafe(text: str) -> str:
    """A cell as written by :func:`grader.report.exports.csv_safe`, its leading ``'`` taken off again."""
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_START and text[1:2] else text


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def has_written(results: Sequence[SubmissionResult]) -> bool:
    """Whether any notebook of ``results`` has a coach-graded criterion."""
    return any(c.coach_graded for r in results for nb in r.notebooks for c in nb.criteria)


def grading_sheet_csv(results: Sequence[SubmissionResult], folders: Sequence[str]) -> str:
    """The grading sheet (module docstring) of ``results``, each named by its output folder in
    ``folders`` (same order): one row per coach-graded criterion of each notebook, question by
    question (the rubric's order), submissions in folder order; the coach's grades already applied
    filled in, so that a sheet applied twice gives the same result.

    Raises:
        ValueError: ``folders`` differs in length from ``results``.
    """
    if len(folders) != len(results):
        raise ValueError(f"{len(results)} results but {len(folders)} folders")
    rows: dict[str, list[list[str]]] = {}
    for result, folder in sorted(zip(results, folders, strict=True), key=lambda pair: pair[1]):
        for nb in result.notebooks:
            for c in nb.criteria:
                if not c.coach_graded:
                    continue
                graded = c.status == "graded"
                rows.setdefault(grade_key(nb.challenge, c.id), []).append([
                    csv_safe(folder), csv_safe(result.submission), nb.challenge or "", c.id, csv_safe(c.question),
                    f"{c.max_points:g}", csv_safe(c.answer or ""), f"{c.points:g}" if graded else "",
                    csv_safe(c.comment) if graded else "", ";".join(str(i) for i in c.items) if graded else ""])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180, as spreadsheets write it
    writer.writerow(SHEET_COLUMNS)
    for question in rows.values():
        writer.writerows(question)
    return buf.getvalue()


@dataclass(frozen=True)
class SheetRow:
    """One row of a grading sheet as read: its ``line`` (1-based, where the row starts in the file),
    the submission's folder, the challenge and criterion, the ``answer`` the coach read and the grade."""

    line: int
    submission: str
    challenge: str
    criterion: str
    answer: str
    grade: Grade


def _number(text: str) -> float | None:
    text = text.strip()
    if "," in text and "." not in text:  # a spreadsheet with a decimal comma
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def read_grading_sheet(text: str) -> tuple[list[SheetRow], list[str]]:
    """Read a grading sheet a coach filled (module docstring; a byte order mark, CRLF, ``;`` as
    the separator and a decimal comma, as spreadsheets save them, are read).

    Returns:
        the rows with a grade (points or items given), and one line per row that could not be read
        (``line 7: points 'two' is not a number``); rows with neither points nor items are skipped
        (not graded yet).
    """
    text = text.removeprefix("\ufeff")
    head = text.split("\n", 1)[0]
    delimiter = ";" if head.count(";") > head.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    problems: list[str] = []
    header = next(reader, None)
    if header is None:
        return [], ["the sheet is empty: write it with grader check (grading-sheet.csv)"]
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in ("submission", "challenge", "criterion", "answer", "points") if c not in columns]
    if missing:
        return [], [f"line 1: no column {', '.join(missing)}: start from the grading-sheet.csv grader check wrote"]
    rows: list[SheetRow] = []
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1

        def cell(name: str, cells: list[str] = cells) -> str:
            i = columns.get(name)
            return cells[i] if i is not None and i < len(cells) else ""

        raw_points, raw_items, comment = cell("points").strip(), cell("items").strip(), _unsafe(cell("comment"))
        if not any(c.strip() for c in cells) or (not raw_points and not raw_items):
            if comment.strip():
                problems.append(f"line {line}: a comment without points or items; give the points too")
            continue
        points = _number(raw_points) if raw_points else None
        if raw_points and points is None:
            problems.append(f"line {line}: points {raw_points[:20]!r} is not a number")
            continue
        items = [p for p in re.split(r"[;,\s]+", raw_items) if p]
        if not all(p.isdigit() for p in items):
            problems.append(f"line {line}: items {raw_items[:40]!r}: write the rubric items' numbers, e.g. 1;3")
            continue
        rows.append(SheetRow(line=line, submission=_unsafe(cell("submission")).strip(),
                             challenge=cell("challenge").strip(), criterion=cell("criterion").strip(),
                             answer=_unsafe(cell("answer")),
                             grade=Grade(points=points, comment=comment, items=tuple(int(p) for p in items))))
    return rows, problems


def apply_sheet(results: Sequence[SubmissionResult], folders: Sequence[str],
                rows: Sequence[SheetRow]) -> tuple[list[SubmissionResult], list[str]]:
    """``results`` (named by their output ``folders``, same order) with the grades of ``rows``
    applied, and one line per row not applied with its line and why: an unknown submission or
    criterion, points out of range, a rubric item that does not exist, the answer changed since
    the sheet was written (its ``answer`` is not the team's now), a row repeated (the last counts).

    Raises:
        ValueError: ``folders`` differs in length from ``results``.
    """
    if len(folders) != len(results):
        raise ValueError(f"{len(results)} results but {len(folders)} folders")
    index = {folder: i for i, folder in enumerate(folders)}
    out = list(results)
    problems: list[str] = []
    chosen: dict[tuple[str, str, str], SheetRow] = {}
    for row in rows:
        key = (row.submission, row.challenge, row.criterion)
        if key in chosen:
            problems.append(f"line {chosen[key].line}: repeated on line {row.line}, which counts")
        chosen[key] = row
    for (folder, challenge, criterion), row in chosen.items():
        if folder not in index:
            problems.append(f"line {row.line}: unknown submission {folder[:80]!r} (not among this call's PATHs)")
            continue
        result = out[index[folder]]
        current = next((c for nb in result.notebooks if nb.challenge == challenge for c in nb.criteria
                        if c.id == criterion), None)
        if current is not None and current.coach_graded and not _same_text(row.answer, current.answer or "") \
                and not _same_text(row.answer, csv_safe(current.answer or "")):
            problems.append(f"line {row.line}: {folder}, {challenge}:{criterion}: answer changed since the sheet was "
                            "written; not applied (grade the new answer)")
            continue
        graded, refused = apply_grades(result, {criterion: row.grade}, challenge=challenge)
        if refused:
            problems.append(f"line {row.line}: {folder}, {challenge}:{criterion}: {refused[criterion]}")
            continue
        out[index[folder]] = graded
    return out, problems


@dataclass(frozen=True)
class Question:
    """One question of the grade-by-question page: its challenge, criterion, title, question,
    max points, rubric items (from the first result that has it) and every submission's answer row
    as ``(folder, team, criterion result)``."""

    challenge: str
    criterion: str
    title: str
    question: str
    max_points: float
    items: tuple[tuple[float, str], ...]
    answers: tuple[tuple[str, str, CriterionResult], ...]


def question_sections(results: Sequence[SubmissionResult], folders: Sequence[str]) -> list[Question]:
    """The questions of ``results`` (named by their output ``folders``), one after another in the
    order first seen, each with every submission's answer in folder order: what the
    grade-by-question page shows (the event server lists its own answers the same way)."""
    found: dict[str, Question] = {}
    for result, folder in sorted(zip(results, folders, strict=True), key=lambda pair: pair[1]):
        for nb in result.notebooks:
            for c in nb.criteria:
                if not c.coach_graded:
                    continue
                key = grade_key(nb.challenge, c.id)
                q = found.get(key) or Question(nb.challenge or "", c.id, c.title, c.question, c.max_points,
                                               tuple((i.points, i.text) for i in c.rubric_items), ())
                found[key] = Question(q.challenge, q.criterion, q.title, q.question, q.max_points, q.items,
                                      (*q.answers, (folder, result.submission, c)))
    return list(found.values())


def answers_html(results: Sequence[SubmissionResult], folders: Sequence[str]) -> str:
    """``answers.html``: every submission's answer to one question after another (grade by
    question), each rendered from Markdown with raw HTML off (:mod:`grader.report.markdown`), with
    the question's rubric items and points, its status and the coach's grade. Self-contained, no
    script, readable 390 pixels wide."""
    return str(template("answers.html.j2").render(questions=question_sections(results, folders)))


def written_answer_html(criterion: CriterionResult, *, show_question: bool = True) -> Markup:
    """One written answer as the scorecards and ``answers.html`` show it (``_written.html.j2``): the
    question (unless ``show_question`` is False), the answer rendered from Markdown with raw HTML off,
    its status, and the coach's points, comment and checked rubric items once graded. For a page of
    another environment (the event server's) to embed; the CSS is ``_written.css.j2``'s classes."""
    module = template("_written.html.j2").make_module()
    return Markup(str(module.written(criterion, show_question=show_question)))
