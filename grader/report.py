"""Write a run's outputs.

Per submission: ``scorecard.html``, ``result.json`` and Gradescope's ``results.json``. Per run:
``index.html`` (a leaderboard per challenge with rank groups, :mod:`grader.leaderboard`, and the
pass rate per criterion), ``gradebook.csv`` (one row per submission and notebook, one column per
``challenge:criterion``) and ``junit.xml`` (one test case per criterion).

Templates own the HTML (jinja2, autoescape on, ``StrictUndefined``); they receive scorecard
objects, never raw dicts. Every file is written to a temporary name and moved into place, so an
interrupted run never leaves half a result.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from grader.leaderboard import Part, best_notebooks, figure, leaderboards
from grader.scorecard import NotebookResult, Share, SubmissionResult, verdict_reason

if TYPE_CHECKING:
    from grader.integrity import SimilarPair

__all__ = ["gradescope_results", "render_index", "render_scorecard", "safe_name", "write_atomic",
           "write_cohort", "write_index", "write_submission"]


def _bytecode_cache() -> Any:
    """jinja2's ``FileSystemBytecodeCache`` in its per-user folder under the system's temporary
    folder (mode 0700; jinja2 checks its owner and mode), made so that a cache it cannot read or
    write is skipped rather than an error: the folder can be cleaned away under a long run, or
    the disk be full, and a scorecard must still be drawn. None where no safe folder can be had.
    """
    import jinja2

    class Cache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # unreadable or damaged: compile the template instead
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:  # not kept; compiled again next time
                pass

    try:
        return Cache()
    except (OSError, RuntimeError):
        return None


@cache
def _env() -> Any:
    """The templates' environment. Compiled templates are kept in a bytecode cache
    (:func:`_bytecode_cache`; an entry is used only while its template's source is unchanged):
    loading them took 0.001 s here against 0.017 s to compile, in every ``grader check``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("grader", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%"
    env.filters["pts"] = lambda v: f"{v:g}"
    env.filters["secs"] = lambda v: "–" if v is None else f"{v:.1f} s"
    env.filters["ci"] = lambda s: f"{100 * s.low:.1f}–{100 * s.high:.1f}%"
    return env


def compile_templates() -> None:
    """Load every template now (compiled: 0.017 s here; from the bytecode cache: 0.001 s), not
    when the first page is drawn."""
    for name in ("scorecard.html.j2", "index.html.j2"):
        _env().get_template(name)


def safe_name(name: str) -> str:
    """A file-system-safe folder name for a submission."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "submission"


def _cell_colour(count: int, row_total: int) -> str:
    share = count / row_total if row_total else 0.0
    return f"rgba(37, 99, 235, {0.08 + 0.8 * share:.2f})" if count else "transparent"


Audience = Literal["full", "team"]


def render_scorecard(result: SubmissionResult, *, audience: Audience = "full") -> str:
    """The self-contained HTML scorecard of one submission.

    Args:
        result: the graded submission.
        audience: ``full`` (the coach, ``grader check``): everything measured. ``team`` (a team
            during an event, :mod:`grader.server.app`): the accuracy on the public part of the
            hidden test set only (where the set is split), without the per-class table, the
            confusion matrix and the printed-claim comparison, which are figures on the whole
            hidden set and would tell the private part.

    Raises:
        ValueError: ``audience`` is not ``full`` or ``team``.
    """
    if audience not in ("full", "team"):
        raise ValueError(f"unknown scorecard audience {audience!r}; choose full or team")
    if audience == "team":
        result = team_view(result)
    return str(_env().get_template("scorecard.html.j2").render(r=result, colour=_cell_colour, audience=audience,
                                                                       practice_n=practice_images(result)))


# measured fields of a criterion that are figures on the hidden test set as a whole
_WHOLE_SET_FIGURES = ("accuracy", "worst_recall")


def team_view(result: SubmissionResult) -> SubmissionResult:
    """``result`` as a team may see it during an event: each criterion measured on the whole
    hidden test set keeps its status and points, but its message, short figure and borderline
    words (which state whole-set figures, and so with the public part's figure would tell the
    private part's) give way to a sentence without figures; the verdict reasons are built again
    from those criteria. A notebook whose hidden test set has no public/private split is shown
    whole. ``result`` itself is not changed (results are frozen; a copy is returned)."""
    notebooks = []
    for nb in result.notebooks:
        if not any(m.parts for m in nb.models):  # no public/private split: nothing is private
            notebooks.append(nb)
            continue
        criteria = [c.model_copy(update={
            "message": f"{'met' if c.status == 'pass' else 'not met'} on the whole hidden test set; its "
                       "figures are shown when the event ends (the public part's accuracy is below)",
            "short": "", "borderline": "", "measured": {}})
            if c.status != "not_measured" and any(key in c.measured for key in _WHOLE_SET_FIGURES) else c
            for c in nb.criteria]
        notebooks.append(nb.model_copy(update={
            "criteria": criteria, "verdict_reason": verdict_reason(criteria) if criteria else nb.verdict_reason}))
    reason = result.verdict_reason
    if not result.problems:
        failing = [f"{nb.notebook}: {nb.verdict_reason}" for nb in notebooks if nb.verdict != "pass"]
        reason = "; ".join(failing) if failing else reason
    return result.model_copy(update={"notebooks": notebooks, "verdict_reason": reason})


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
    :mod:`grader.leaderboard`) with each challenge's pass rate per criterion, then the similar
    ``pairs`` of the cohort (:func:`grader.integrity.cohort_pairs`: evidence for the coach, the
    section absent without any), then every submission by name.

    Raises:
        ValueError: ``leaderboard`` is not a part, or ``folders`` differs in length from ``results``.
    """
    boards = leaderboards(results, folders, part=leaderboard)
    rows = sorted(zip(results, folders, strict=True), key=lambda row: row[0].submission)
    return str(_env().get_template("index.html.j2").render(boards=boards, rows=rows, part=leaderboard,
                                                           pairs=pairs))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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


def write_cohort(out_dir: Path, results: Sequence[SubmissionResult],
                 folders: Sequence[str], *, leaderboard: Part = "all",
                 pairs: Sequence[SimilarPair] = ()) -> list[Path]:
    """Write ``index.html`` (ranked by ``leaderboard``: ``all``, ``public`` or ``private``; with
    the similar ``pairs`` of :mod:`grader.integrity`), ``gradebook.csv`` and ``junit.xml`` for
    the run; return their paths.

    Raises:
        ValueError: ``leaderboard`` is not a part, or ``folders`` differs in length from ``results``.
    """
    write_atomic(out_dir / "gradebook.csv", gradebook_csv(results, leaderboard=leaderboard))
    write_atomic(out_dir / "junit.xml", junit_xml(results))
    return [write_index(out_dir, results, folders, leaderboard=leaderboard, pairs=pairs),
            out_dir / "gradebook.csv", out_dir / "junit.xml"]


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
    ranked by ``leaderboard``, see :mod:`grader.leaderboard`; ``no`` for its other notebooks for
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
