"""The coach's grading of written answers (issue 29), question by question.

- ``/coach/grading``: every question of the event's challenges (their coach-graded criteria) with
  how many final submissions are graded, await the coach or have no answer, and whether its grades
  are released; a Release button per question (with a confirmation: ``form[data-confirm]``, as the
  console asks), and a way to withdraw a release.
- ``/coach/grading/{challenge}/{criterion}``: the question, its rubric items and every team's
  answer in its final submission (:class:`grader.server.web.marks.Marks`), rendered from Markdown
  with raw HTML off (:func:`grader.report.markdown_html`); for each, the rubric items as
  checkboxes, the points (empty: the sum of the checked items), a comment with the rubric's
  reusable comments one click away.
- ``POST /coach/grading/{challenge}/{criterion}/{submission_id}``: save one grade. The page's
  script (``static/grading.js``) sends it with ``fetch`` and ``Accept: application/json`` and
  gets JSON back (the grade as saved, or ``error``), so the coach moves on without a reload; a
  plain form POST (no script) is answered 303 to the page at the next answer, the message shown
  once (post/redirect/get). The grade is checked against the answer as the page showed it
  (``answer_sha256``): an answer changed since (a re-grade came in) is refused with 409.
- ``POST /coach/grading/{challenge}/{criterion}/release``: release the question's grades to
  the teams (``released=0``: withdraw the release). From then on each team's scorecard and
  history show its own points and comment for it (:meth:`Marks.team_card`).

Keyboard (the script): ``j``/``n`` next answer, ``k``/``p`` previous, digits toggle the rubric
items, Enter saves and goes to the next (Ctrl+Enter in the comment), as Gradescope's and
nbgrader's formgrader grade by question. Every route refuses a team session and no session with
403; every form checks the CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from grader.core import UsageError
from grader.score import Grade, apply_grades
from grader.server.store import release, save_grade
from grader.server.web.answers import AnswerRow, WrittenQuestion, criterion_of
from grader.server.web.marks import Marks
from grader.server.web.pages import Refused, Site

__all__ = ["add_grading_routes", "counts_of"]


class AnswerChanged(UsageError):
    """The answer is no longer the one the coach's page showed."""


def counts_of(rows: list[AnswerRow]) -> dict[str, int]:
    """How many of ``rows`` are graded, await the coach, or have no answer (``missing``)."""
    out = {"graded": 0, "awaiting": 0, "missing": 0}
    for row in rows:
        out[row.state] += 1
    return out


def _number(text: str) -> float | None:
    text = text.strip()
    if "," in text and "." not in text:  # a decimal comma
        text = text.replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as err:
        raise UsageError(f"points {text[:20]!r} is not a number", fix="give the points, e.g. 1.5") from err
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"points {text[:20]!r} is not a number", fix="give the points, e.g. 1.5")
    return value


def add_grading_routes(app: FastAPI, site: Site) -> Marks:
    """Add the ``/coach/grading`` pages of ``site`` to ``app``; their :class:`Marks` (kept as
    ``app.state.marks`` for the team's pages and the exports: :func:`grader.server.web.marks.marks_of`)."""
    marks = Marks(site)
    app.state.marks = marks

    def question_of(challenge: str, criterion: str) -> WrittenQuestion:
        q = marks.question(challenge, criterion)
        if q is None:
            raise Refused(404, "No such question: the event's questions are listed on /coach/grading.")
        return q

    @app.get("/coach/grading")
    def grading(request: Request, refused: int = 0) -> HTMLResponse:
        site.coach_of(request)
        released = marks.released()
        listed = []
        for q in marks.questions():
            rows = marks.answers(q)
            listed.append({"q": q, "counts": counts_of(rows), "teams": len(rows), "released": released.get(q.key)})
        return site.page(request, "grading.html.j2", questions=listed, team_count=site.team_count(),
                         flash=request.session.pop("flash", ""), refused=bool(refused))

    @app.get("/coach/grading/{challenge}/{criterion}")
    def grading_question(request: Request, challenge: str, criterion: str, refused: int = 0) -> HTMLResponse:
        site.coach_of(request)
        q = question_of(challenge, criterion)
        csrf = str(request.session.get("csrf", ""))
        rows, answers = marks.answers_section(q, csrf, lambda rows: site.env.get_template(
            "_grading_answers.html.j2").render(q=q, rows=rows, csrf=csrf, answer_html=marks.answer_html))
        every = marks.questions()
        at = every.index(q)
        return site.page(request, "grading_question.html.j2", q=q, rows=rows, counts=counts_of(rows),
                         answers=answers, released=marks.released().get(q.key), team_count=site.team_count(),
                         previous=every[at - 1] if at > 0 else None,
                         next=every[at + 1] if at + 1 < len(every) else None,
                         flash=request.session.pop("flash", ""), refused=bool(refused))

    @app.post("/coach/grading/{challenge}/{criterion}/release")
    async def release_question(request: Request, challenge: str, criterion: str) -> Response:
        await run_in_threadpool(site.coach_of, request)
        form = await request.form()
        site.check_csrf(request, form.get("csrf"))
        q = await run_in_threadpool(question_of, challenge, criterion)
        on = form.get("released", "1") != "0"
        changed = await run_in_threadpool(lambda: release(site.store, site.event, challenge, criterion, released=on))
        marks.forget()
        if on:
            said = (f"Released {q.title}: each team now sees its points and comment for it on its scorecard."
                    if changed else f"{q.title} was released already.")
        else:
            said = (f"Withdrawn: teams no longer see their grades for {q.title}." if changed
                    else f"{q.title} was not released.")
        request.session["flash"] = said
        return RedirectResponse("/coach/grading", status_code=303)

    def grade_one(challenge: str, criterion: str, submission_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Check and save one grade (the route's docstring); the grade as saved, as JSON."""
        q = question_of(challenge, criterion)
        sub = site.event_submission(submission_id)
        graded = site.graded_of([sub])
        if not graded:
            raise Refused(404, "This submission has no result to grade.")
        result = marks.applied(sub.id, graded[0].result)
        c = criterion_of(result, challenge, criterion)
        if c is None:
            raise Refused(404, f"Submission {sub.id} has no answer to {q.title}: it was graded before the rubric "
                               "asked it.")
        sent = str(fields.get("answer_sha256", "")).strip()
        if sent and sent != c.answer_sha256:
            raise AnswerChanged("the answer is no longer the one this page showed (a re-grade came in)",
                                fix="reload the page and grade the answer as it is now")
        items: list[int] = []
        for value in fields.get("items", []):
            if not str(value).isdigit():
                raise UsageError(f"rubric item {str(value)[:10]!r} is not a number")
            items.append(int(value))
        comment = str(fields.get("comment", ""))
        reuse = str(fields.get("reuse", ""))
        if reuse.isdigit() and 1 <= int(reuse) <= len(q.comments):  # a reusable comment's button, without script
            comment = f"{comment.rstrip()}\n{q.comments[int(reuse) - 1]}".strip()
        grade = Grade(points=_number(str(fields.get("points", ""))), comment=comment, items=tuple(items),
                      answer_sha256=c.answer_sha256)
        checked, refused = apply_grades(result, {criterion: grade}, challenge=challenge)
        if refused:
            raise UsageError(refused[criterion])
        done = criterion_of(checked, challenge, criterion)
        assert done is not None
        row = save_grade(site.store, site.event, sub.id, challenge=challenge, criterion=criterion,
                         points=done.points, comment=done.comment, items=done.items, answer_sha256=c.answer_sha256)
        marks.note(row)
        return {"ok": True, "submission": sub.id, "team": sub.team_name, "status": "graded", "points": done.points,
                "max_points": done.max_points, "items": list(row.items), "comment": row.comment,
                "said": f"Saved {sub.team_name}: {done.points:g} of {done.max_points:g} points."}

    @app.post("/coach/grading/{challenge}/{criterion}/{submission_id:int}")
    async def save(request: Request, challenge: str, criterion: str, submission_id: int) -> Response:
        await run_in_threadpool(site.coach_of, request)
        form = await request.form()
        site.check_csrf(request, form.get("csrf"))
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "items"}
        fields["items"] = [v for v in form.getlist("items") if isinstance(v, str)]
        wants_json = "application/json" in request.headers.get("accept", "")
        page = f"/coach/grading/{challenge}/{criterion}"
        try:
            saved = await run_in_threadpool(grade_one, challenge, criterion, submission_id, fields)
        except UsageError as err:
            message = f"{err.message}; {err.fix}" if err.fix else err.message
            status = 409 if isinstance(err, AnswerChanged) else 400
            if wants_json:
                return JSONResponse({"ok": False, "error": message}, status_code=status)
            request.session["flash"] = f"Not saved: {message}."
            return RedirectResponse(f"{page}?refused=1#sub-{submission_id}", status_code=303)
        except Refused as err:
            if wants_json:
                return JSONResponse({"ok": False, "error": err.message}, status_code=err.status)
            raise
        if wants_json:
            return JSONResponse(saved)
        request.session["flash"] = saved["said"]
        following = str(fields.get("next", ""))
        return RedirectResponse(f"{page}#sub-{following if following.isdigit() else submission_id}", status_code=303)

    return marks
