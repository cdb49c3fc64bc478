"""The coach's grades of written answers as the pages use them (:class:`Marks`): the questions of
the event's challenges, the answer of each team's final submission to each, the stored results
with the saved grades applied, and the team's view of them (released questions only).

- **Which answer.** Per challenge, each team's final submission
  (:func:`grader.server.web.boards.chosen`: the team's choice, else the one behind its public
  score, else its newest graded one), as the private board and the exports take it.
- **Grades through re-grades.** A grade is saved on the submission whose answer the coach read
  (:mod:`grader.server.store.grades`). A coach's re-grade (``regrade_of``) has the grades of the
  submission it re-graded, nearest first, where it has none of its own: kept where the answer's
  text is unchanged, and where it changed the question awaits the coach again, marked "answer
  changed" (:func:`grader.score.carry_grades`).
- **Who sees what.** The coach's pages, scorecards and exports: every saved grade
  (:meth:`Marks.applied`). A team: only the grades of released questions, and nothing of the
  others, not even that they were graded (:meth:`Marks.team_seen`); its scorecard is drawn again
  only where a released grade applies to it (:meth:`Marks.team_card`), else the worker's stored
  card is served. A card drawn again has its loss curves redrawn from the recorded history; the
  new images' thumbnails and the notebook's own plot, which ``result.json`` does not keep, are
  then left out.

What the database holds of the grading (every grade, the releases, the re-grades: one read
session, :func:`grader.server.store.grading_state`) is read at most once every
:data:`STATE_TTL_S` seconds, and at once after this server saved a grade or a release
(:meth:`Marks.forget`); results with grades applied, the team's views and the rendered cards are
kept per submission and the grades that apply to it, so that one saved grade costs one
submission's work, not the event's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from markupsafe import Markup

from grader.report import Board, Rate, markdown_html, pass_rates, render_scorecard, team_view
from grader.score import (
    CriterionResult,
    Grade,
    SubmissionResult,
    apply_grades,
    carry_grades,
    grade_key,
    with_loss_plots,
)
from grader.server.store import GradeRow, GradingState, SubmissionRow, finals_of, grading_state
from grader.server.web.answers import AnswerRow, WrittenQuestion, criterion_of, result_questions, rubric_questions
from grader.server.web.boards import Graded, chosen
from grader.server.web.pages import Site

__all__ = ["STATE_TTL_S", "Marks", "marks_of"]

STATE_TTL_S = 1.0  # how long a server keeps the grading it read: another server's save shows within it
_KEPT = 20_000  # entries of a cache before it is emptied (200 teams x 20 submissions x a few views)

Relevant = tuple[tuple[str, GradeRow], ...]
T = TypeVar("T")


def _earlier(result: SubmissionResult, grades: Mapping[str, GradeRow]) -> SubmissionResult:
    """``result`` as the submission it re-graded was graded: each question of ``grades`` graded on
    the answer the coach read then (its ``answer_sha256``), for :func:`carry_grades` to compare."""
    notebooks = [nb.model_copy(update={"criteria": [
        c.model_copy(update={"answer_sha256": g.answer_sha256})
        if c.coach_graded and (g := grades.get(grade_key(nb.challenge, c.id))) is not None else c
        for c in nb.criteria]}) for nb in result.notebooks]
    earlier = result.model_copy(update={"notebooks": notebooks})
    for challenge in sorted({g.challenge for g in grades.values()}):
        earlier, _ = apply_grades(earlier, {g.criterion: Grade(points=g.points, comment=g.comment, items=g.items)
                                            for g in grades.values() if g.challenge == challenge}, challenge=challenge)
    return earlier


@dataclass
class Marks:
    """The grading of the served event (module docstring); one per app.

    Args:
        site: the served event.
    """

    site: Site
    _state: tuple[float, GradingState, dict[int, dict[str, GradeRow]]] | None = None
    _last: GradingState | None = None
    version: int = 0  # changes whenever the grading read or saved does: what a page kept is then stale
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _applied: dict[tuple[Any, ...], SubmissionResult] = field(default_factory=dict)
    _seen: dict[tuple[Any, ...], SubmissionResult] = field(default_factory=dict)
    _cards: dict[tuple[Any, ...], str] = field(default_factory=dict)
    _html: dict[str, Markup] = field(default_factory=dict)
    _questions: dict[str, tuple[WrittenQuestion, ...]] = field(default_factory=dict)
    _finals: dict[str, tuple[tuple[Any, ...], list[Graded]]] = field(default_factory=dict)
    _pages: dict[tuple[Any, ...], tuple[list[AnswerRow], Markup]] = field(default_factory=dict)

    # ------------------------------------------------------------ what the database holds

    def _read(self) -> tuple[GradingState, dict[int, dict[str, GradeRow]]]:
        kept = self._state
        if kept is not None and time.monotonic() - kept[0] < STATE_TTL_S:
            return kept[1], kept[2]
        with self._lock:
            kept = self._state
            if kept is not None and time.monotonic() - kept[0] < STATE_TTL_S:
                return kept[1], kept[2]
            state = grading_state(self.site.store, self.site.event)
            if state != self._last:
                self._last, self.version = state, self.version + 1
            by_sub: dict[int, dict[str, GradeRow]] = {}
            for g in state.grades:
                by_sub.setdefault(g.submission_id, {})[grade_key(g.challenge, g.criterion)] = g
            self._state = (time.monotonic(), state, by_sub)
            return state, by_sub

    def forget(self) -> None:
        """Read the grading again on its next use (this server saved a grade or a release)."""
        self._state = None

    def note(self, row: GradeRow) -> None:
        """Keep grade ``row``, which this server has just saved, in what it holds of the grading
        (no read of every grade again after each save)."""
        with self._lock:
            if self._state is None:
                return
            at, state, by_sub = self._state
            which = (row.submission_id, row.challenge, row.criterion)
            grades = (*(g for g in state.grades if (g.submission_id, g.challenge, g.criterion) != which), row)
            by_sub = {**by_sub, row.submission_id: {**by_sub.get(row.submission_id, {}),
                                                    grade_key(row.challenge, row.criterion): row}}
            self._last = GradingState(grades=grades, released=state.released, regrade_of=state.regrade_of)
            self._state, self.version = (at, self._last, by_sub), self.version + 1

    def released(self) -> dict[str, datetime]:
        """The released questions: their :func:`grader.score.grade_key` -> when (UTC)."""
        return {grade_key(c, k): at for (c, k), at in self._read()[0].released.items()}

    def grades_of(self, submission_id: int) -> tuple[dict[str, GradeRow], dict[str, GradeRow]]:
        """The grades that apply to submission ``submission_id``: its own, and those of the
        submissions it re-graded (nearest first) for the questions it has none of its own, each by
        :func:`grader.score.grade_key`."""
        state, by_sub = self._read()
        own = by_sub.get(submission_id, {})
        inherited: dict[str, GradeRow] = {}
        seen = {submission_id}
        earlier = state.regrade_of.get(submission_id)
        while earlier is not None and earlier not in seen:
            seen.add(earlier)
            for key, g in by_sub.get(earlier, {}).items():
                if key not in own:
                    inherited.setdefault(key, g)
            earlier = state.regrade_of.get(earlier)
        return own, inherited

    # ------------------------------------------------------------ results with the grades

    def applied(self, submission_id: int, result: SubmissionResult, *,
                only: Collection[str] | None = None) -> SubmissionResult:
        """``result`` (submission ``submission_id``'s stored one) with the grades that apply to it
        (:meth:`grades_of`; ``only``: those of these questions alone): its own applied
        (:func:`grader.score.apply_grades`), those of the submission it re-graded carried where its
        answer is unchanged and marked "answer changed" where it changed
        (:func:`grader.score.carry_grades`)."""
        own, inherited = self.grades_of(submission_id)
        if only is not None:
            own = {k: g for k, g in own.items() if k in only}
            inherited = {k: g for k, g in inherited.items() if k in only}
        if not own and not inherited:
            return result
        relevant: tuple[Relevant, Relevant] = (tuple(sorted(own.items(), key=lambda kv: kv[0])),
                                               tuple(sorted(inherited.items(), key=lambda kv: kv[0])))
        key = (submission_id, relevant)
        found = self._applied.get(key)
        if found is not None:
            return found
        graded = carry_grades(_earlier(result, inherited), result) if inherited else result
        for challenge in sorted({g.challenge for g in own.values()}):
            graded, _ = apply_grades(graded, {g.criterion: Grade(points=g.points, comment=g.comment, items=g.items,
                                                                 answer_sha256=g.answer_sha256)
                                              for g in own.values() if g.challenge == challenge}, challenge=challenge)
        return self._keep(self._applied, key, graded)

    @staticmethod
    def _keep(cache: dict[tuple[Any, ...], T], key: tuple[Any, ...], value: T) -> T:
        if len(cache) >= _KEPT:
            cache.clear()
        cache[key] = value
        return value

    def team_seen(self, submission_id: int, result: SubmissionResult, *, revealed: bool) -> SubmissionResult:
        """``result`` as its team sees it (:func:`grader.report.team_view`): the grades of the
        released questions applied and shown, nothing of any other question's grading."""
        released = frozenset(self.released())
        key = (submission_id, revealed, self._released_grades(submission_id, released), released)
        found = self._seen.get(key)
        if found is None:
            found = team_view(self.applied(submission_id, result, only=released), revealed=revealed,
                              released=released)
            self._keep(self._seen, key, found)
        return found

    def _released_grades(self, submission_id: int, released: frozenset[str]) -> Relevant:
        own, inherited = self.grades_of(submission_id)
        return tuple(sorted(((k, g) for k, g in {**inherited, **own}.items() if k in released), key=lambda kv: kv[0]))

    def _parsed(self, sub: SubmissionRow) -> SubmissionResult | None:
        graded = self.site.graded_of([sub])
        return graded[0].result if graded else None

    def team_card(self, sub: SubmissionRow, *, revealed: bool) -> str | None:
        """The team scorecard of ``sub`` drawn again with the released grades that apply to it
        (its loss curves redrawn from the history: module docstring); None where none applies
        (serve the stored card)."""
        result = self._parsed(sub)
        if result is None:
            return None
        seen = self.team_seen(sub.id, result, revealed=revealed)
        if not any(c.status == "graded" for nb in seen.notebooks for c in nb.criteria):
            return None
        released = frozenset(self.released())
        key = ("team", sub.id, revealed, self._released_grades(sub.id, released), released)
        found = self._cards.get(key)
        if found is None:
            graded = self.applied(sub.id, result, only=released)
            found = self._keep(self._cards, key, render_scorecard(with_loss_plots(graded), audience="team",
                                                                  revealed=revealed, released=released))
        return found

    def coach_card(self, sub: SubmissionRow) -> str | None:
        """The coach's scorecard of ``sub`` drawn again with every grade that applies to it (its
        loss curves redrawn); None where none applies (serve the stored card)."""
        own, inherited = self.grades_of(sub.id)
        if not own and not inherited:
            return None
        result = self._parsed(sub)
        if result is None:
            return None
        key = ("coach", sub.id, tuple(sorted(own.items(), key=lambda kv: kv[0])),
               tuple(sorted(inherited.items(), key=lambda kv: kv[0])))
        found = self._cards.get(key)
        if found is None:
            found = self._keep(self._cards, key, render_scorecard(with_loss_plots(self.applied(sub.id, result))))
        return found

    # ------------------------------------------------------------ questions and answers

    def questions(self) -> list[WrittenQuestion]:
        """The coach-graded criteria of the event's challenges, challenge by challenge in the
        event's order, each in its rubric's order (a rubric that does not load: the questions its
        final submissions' results hold)."""
        out: list[WrittenQuestion] = []
        for challenge in self.site.event_row().challenges:
            if challenge not in self._questions:
                self._questions[challenge] = rubric_questions(self.site.settings.project_dir, challenge)
            found = self._questions[challenge] or result_questions([g.result for g in self.finals(challenge)],
                                                                   challenge)
            out += found
        return out

    def question(self, challenge: str, criterion: str) -> WrittenQuestion | None:
        return next((q for q in self.questions() if (q.challenge, q.criterion) == (challenge, criterion)), None)

    def finals(self, challenge: str) -> list[Graded]:
        """Each team's final submission for ``challenge`` (:func:`grader.server.web.boards.chosen`),
        by team name; computed again only when a result was added, a team removed or a final
        choice changed."""
        site = self.site
        finals = finals_of(site.store, site.event)
        key = (site.store.counts(site.event)[1:], site.removed_teams(), frozenset(finals.items()))
        kept = self._finals.get(challenge)
        if kept is not None and kept[0] == key:
            return kept[1]
        picks = chosen(site.graded(), challenge, eta=site.options.eta, finals=finals)
        self._finals[challenge] = (key, picks)
        return picks

    def pass_rates(self, board: Board) -> tuple[Rate, ...]:
        """``board``'s pass rate per criterion (:func:`grader.report.pass_rates`) with the coach's
        grades applied (:meth:`applied`): a written answer the coach graded counts as met or not,
        one not graded yet as awaiting. The board's own rates where none awaits (no grade to apply).
        Its entries are the teams' final submissions (:func:`grader.server.web.boards.private_boards`,
        each entry's ``folder`` the submission's id), as :meth:`finals` are."""
        if not any(r.awaiting for r in board.rates):
            return board.rates
        results = {g.submission_id: g.result for g in self.finals(board.challenge)}
        notebooks = []
        for e in board.entries:
            sub_id = int(e.folder)
            result = results.get(sub_id)
            applied = [] if result is None else self.applied(sub_id, result).notebooks
            same = (nb for nb in applied if (nb.challenge, nb.notebook) == (board.challenge, e.notebook))
            notebooks.append(next(same, e.result))
        return pass_rates(notebooks)

    def answers(self, q: WrittenQuestion) -> list[AnswerRow]:
        """Every team's answer to ``q`` in its final submission, by team name."""
        choices = finals_of(self.site.store, self.site.event)
        rows = []
        for g in self.finals(q.challenge):
            c = criterion_of(self.applied(g.submission_id, g.result), q.challenge, q.criterion)
            previous = None
            if c is not None and c.answer_changed:
                own, inherited = self.grades_of(g.submission_id)
                previous = own.get(q.key) or inherited.get(q.key)
            rows.append(AnswerRow(team=g.team, submission_id=g.submission_id,
                                  chosen=choices.get((g.team, q.challenge)) == g.submission_id, criterion=c,
                                  previous=previous))
        return rows

    def answers_section(self, q: WrittenQuestion, csrf: str,
                        render: Callable[[list[AnswerRow]], str]) -> tuple[list[AnswerRow], Markup]:
        """:meth:`answers` of ``q`` and their part of the page, ``render(rows)``, kept until a grade,
        a release, a result or a final choice changes (:attr:`version`, :meth:`finals`) for the
        coach's session ``csrf`` (its forms carry the token): a page of 200 answers viewed again is
        not drawn again."""
        self._read()  # the version of the grading now
        self.finals(q.challenge)
        key = (q.key, csrf, self.version, self._finals[q.challenge][0])
        found = self._pages.get(key)
        if found is None:
            rows = self.answers(q)
            found = (rows, Markup(render(rows)))
            self._pages = {k: v for k, v in self._pages.items() if k[2:] == key[2:]}  # older ones are stale
            self._pages[key] = found
        return found

    def answer_html(self, c: CriterionResult) -> Markup:
        """``c``'s answer rendered from Markdown with raw HTML off (:func:`grader.report.markdown_html`),
        kept per answer."""
        text = c.answer or ""
        found = self._html.get(c.answer_sha256)
        if found is None:
            if len(self._html) >= _KEPT:
                self._html.clear()
            found = self._html[c.answer_sha256] = markdown_html(text)
        return found


def marks_of(source: Request | FastAPI) -> Marks:
    """The :class:`Marks` of the app serving a request (or of app ``source``), set by
    :func:`grader.server.web.routes.grading.add_grading_routes`.

    Raises:
        RuntimeError: the app has none (its grading routes were not added).
    """
    marks = getattr((source.app if isinstance(source, Request) else source).state, "marks", None)
    if not isinstance(marks, Marks):
        raise RuntimeError("the app has no Marks: add_grading_routes(app, site) was not called")
    return marks

