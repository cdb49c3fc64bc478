"""Write a run's outputs.

Per submission: ``scorecard.html``, ``result.json`` and Gradescope's ``results.json``. Per run:
``index.html`` (a leaderboard per challenge with rank groups, :mod:`grader.report.leaderboard`, and the
pass rate per criterion), ``gradebook.csv`` and ``junit.xml`` (:mod:`grader.report.exports`), and for
written answers ``grading-sheet.csv`` and ``answers.html`` (:mod:`grader.report.written`).

Templates own the HTML (jinja2, autoescape on, ``StrictUndefined``); they receive scorecard
objects, never raw dicts. Every file is written to a temporary name and moved into place, so an
interrupted run never leaves half a result.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grader.core import write_atomic
from grader.report.exports import gradebook_csv, gradescope_results, junit_xml
from grader.report.jinja import template
from grader.report.leaderboard import Part, leaderboards
from grader.report.written import answers_html, grading_sheet_csv, has_written
from grader.score import SubmissionResult, hide_unreleased

if TYPE_CHECKING:
    from grader.integrity import SimilarPair

__all__ = ["ANSWERS", "SHEET", "earlier_results", "previous_result", "render_index", "render_scorecard",
           "render_team_scorecards", "write_cohort", "write_index", "write_submission"]


SHEET = "grading-sheet.csv"  # beside the scorecards, where a rubric has coach-graded criteria
ANSWERS = "answers.html"  # the grade-by-question page, beside it


def _cell_colour(count: int, row_total: int) -> str:
    share = count / row_total if row_total else 0.0
    return f"rgba(37, 99, 235, {0.08 + 0.8 * share:.2f})" if count else "transparent"


Audience = Literal["full", "team"]


def render_scorecard(result: SubmissionResult, *, audience: Audience = "full", revealed: bool = False,
                     released: Collection[str] | None = None) -> str:
    """The self-contained HTML scorecard of one submission.

    Args:
        result: the graded submission.
        audience: ``full`` (the coach, ``grader check``): everything measured. ``team`` (a team
            during an event, :mod:`grader.server.web.app`): :func:`grader.report.teamcard.team_view` of it;
            before the Reveal no finer than the public board's Ladder (the board's step is put
            in its :data:`grader.report.teamcard.BOARD_SLOT` when it is served), after it every figure
            but the coach's records (matches with hidden images, the printed-claim check).
        revealed: with ``team``: the scorecard after the coach's Reveal.
        released: the questions whose coach's grades are shown (:func:`grader.score.grade_key`
            ``<challenge>:<criterion id>``); any other graded written answer shows as awaiting the
            coach (:func:`grader.score.hide_unreleased`). None: every grade applied is shown
            (``grader check``'s scorecards).

    Raises:
        ValueError: ``audience`` is not ``full`` or ``team``.
    """
    from grader.report.teamcard import BACK_SLOT, BOARD_SLOT, HEADING_SLOT, team_view

    if audience not in ("full", "team"):
        raise ValueError(f"unknown scorecard audience {audience!r}; choose full or team")
    bounded = audience == "team" and not revealed and not result.practice
    result = team_view(result, revealed=revealed, released=released) if audience == "team" else hide_unreleased(
        result, released)
    written = result.verdict == "awaiting" or any(c.coach_graded for nb in result.notebooks for c in nb.criteria)
    return str(template("scorecard.html.j2").render(r=result, colour=_cell_colour, audience=audience,
                                                    bounded=bounded, revealed=revealed, board_slot=BOARD_SLOT,
                                                    heading_slot=HEADING_SLOT, back_slot=BACK_SLOT,
                                                    practice_n=practice_images(result), written=written))


def render_team_scorecards(result: SubmissionResult, *, released: Collection[str] | None = ()) -> str:
    """The text an event stores as a submission's team scorecard: the scorecard before the Reveal
    and the one after it, :func:`grader.report.teamcard.pack`-ed (served by
    :func:`grader.report.teamcard.unpack`, never as it is). ``released``: as
    :func:`render_scorecard`'s (default: no grade released: the team sees its written answers
    awaiting the coach)."""
    from grader.report.teamcard import pack

    return pack(render_scorecard(result, audience="team", released=released),
                render_scorecard(result, audience="team", revealed=True, released=released))


def practice_images(result: SubmissionResult) -> int | None:
    """The images of the practice split ``result`` was scored on (the largest ``n`` of its
    ``predict`` models), or None for a result that is not practice or measured no model."""
    if not result.practice:
        return None
    found = [m.n for nb in result.notebooks for m in nb.models if m.role == "predict"]
    return max(found) if found else None


def render_index(results: Sequence[SubmissionResult], folders: Sequence[str], *,
                 leaderboard: Part = "all", pairs: Sequence[SimilarPair] = ()) -> str:
    """The HTML overview of a run: a leaderboard per challenge ranked by ``leaderboard`` (the
    part of the hidden test set: ``all``, ``public`` or ``private``; rules in
    :mod:`grader.report.leaderboard`) with each challenge's pass rate per criterion, then the similar
    ``pairs`` of the cohort (:func:`grader.integrity.pairs.cohort_pairs`: evidence for the coach, the
    section absent without any), then every submission by name.

    Raises:
        ValueError: ``leaderboard`` is not a part, or ``folders`` differs in length from ``results``.
    """
    boards = leaderboards(results, folders, part=leaderboard)
    rows = sorted(zip(results, folders, strict=True), key=lambda row: row[0].submission)
    return str(template("index.html.j2").render(boards=boards, rows=rows, part=leaderboard,
                                                           pairs=pairs, sheet=has_written(results)))


def write_submission(out_dir: Path, result: SubmissionResult, folder: str,
                     scorecard: str | None = None) -> Path:
    """Write ``out_dir/<folder>/`` ``result.json``, ``scorecard.html`` (``scorecard`` if given,
    else rendered) and Gradescope's ``results.json``; return the folder."""
    target = out_dir / folder
    write_atomic(target / "scorecard.html", scorecard or render_scorecard(result))
    write_atomic(target / "results.json", json.dumps(gradescope_results(result), indent=2))
    write_atomic(target / "result.json", result.model_dump_json(indent=2))
    return target


def write_index(out_dir: Path, results: Sequence[SubmissionResult], folders: Sequence[str], *,
                leaderboard: Part = "all", pairs: Sequence[SimilarPair] = ()) -> Path:
    """Write ``out_dir/index.html`` for the run, ranked by ``leaderboard``, with the similar
    ``pairs``; return its path."""
    path = out_dir / "index.html"
    write_atomic(path, render_index(results, folders, leaderboard=leaderboard, pairs=pairs))
    return path


def previous_result(out_dir: Path, folder: str) -> SubmissionResult | None:
    """The ``result.json`` an earlier call wrote in ``out_dir/<folder>/``, or None where there is
    none this grader reads: whose coach's grades of written answers a new result of the same
    submission keeps where the answer is unchanged (:func:`grader.score.carry_grades`)."""
    try:
        return SubmissionResult.model_validate_json((out_dir / folder / "result.json").read_bytes())
    except (OSError, ValueError):
        return None


def earlier_results(out_dir: Path, this_call: Collection[str], *,
                    practice: bool) -> tuple[list[SubmissionResult], list[str], list[str]]:
    """The results that earlier ``grader check`` calls wrote into ``out_dir``, so that its
    ``index.html`` and ``gradebook.csv`` list every submission graded into it, in one call or many.

    Reads ``<folder>/result.json`` of each folder of ``out_dir`` not in ``this_call`` (the folders of
    this call's submissions: their new results, or their harness faults, replace what an earlier
    call left), in folder order. Left out, each with one line saying why: a file that does not
    read as a result (damaged, or written by a grader whose schema this one does not know), and a
    result of the other kind (a practice result beside hidden-test-set results, or the reverse:
    the two are scored on different images).

    Returns:
        ``(results, folders, left_out)``: the results and their folders, in the same order, and
        the lines for what was left out.
    """
    results: list[SubmissionResult] = []
    folders: list[str] = []
    left_out: list[str] = []
    found = sorted(out_dir.glob("*/result.json")) if out_dir.is_dir() else []
    for path in found:
        folder = path.parent.name
        if folder in this_call:
            continue
        try:
            result = SubmissionResult.model_validate_json(path.read_bytes())
        except (OSError, ValueError) as err:  # pydantic's ValidationError is a ValueError
            reason = str(err).splitlines()[0][:200]
            left_out.append(f"{path}: not a result this grader reads ({reason}); left out of the index "
                            "(grade that submission again)")
            continue
        if result.practice != practice:
            kind = "a practice result" if result.practice else "a result on the hidden test set"
            left_out.append(f"{path}: {kind}, left out of this run's index (grade practice and hidden-set "
                            "runs into different --out folders)")
            continue
        results.append(result)
        folders.append(folder)
    return results, folders, left_out


def write_cohort(out_dir: Path, results: Sequence[SubmissionResult],
                 folders: Sequence[str], *, leaderboard: Part = "all",
                 pairs: Sequence[SimilarPair] = ()) -> list[Path]:
    """Write ``index.html`` (ranked by ``leaderboard``: ``all``, ``public`` or ``private``; with
    the similar ``pairs`` of :mod:`grader.integrity.pairs`), ``gradebook.csv`` and ``junit.xml`` for
    the run, and where a rubric has coach-graded criteria the grading sheet ``grading-sheet.csv``
    and the grade-by-question page ``answers.html`` (:mod:`grader.report.written`); return their
    paths (index, gradebook, JUnit, then the sheet and the page where written).

    Raises:
        ValueError: ``leaderboard`` is not a part, or ``folders`` differs in length from ``results``.
    """
    write_atomic(out_dir / "gradebook.csv", gradebook_csv(results, leaderboard=leaderboard))
    write_atomic(out_dir / "junit.xml", junit_xml(results))
    paths = [write_index(out_dir, results, folders, leaderboard=leaderboard, pairs=pairs),
             out_dir / "gradebook.csv", out_dir / "junit.xml"]
    if has_written(results):
        write_atomic(out_dir / SHEET, grading_sheet_csv(results, folders))
        write_atomic(out_dir / ANSWERS, answers_html(results, folders))
        paths += [out_dir / SHEET, out_dir / ANSWERS]
    return paths
