"""The coach-graded criterion: a written answer to a question only a person can grade.

Its check, ``coach_graded``, is the automatic companion of the coach's grade: it finds the answer
in the notebook as submitted (:mod:`grader.intake.answers`: the cell tagged ``answer:<id>``, else
the markdown cell after the heading ``### Question (<id>)``) and fails at once a blank answer, so
that the coach reads only real ones. Its results:

- ``fail``: no answer cell, the starter's placeholder, or fewer than ``min_words`` words;
- ``awaiting``: an answer is present; the coach has not graded it (0 points so far, its points
  counted in the maximum). The coach's grade turns it into ``graded``
  (:func:`grader.score.grades.apply_grades`), never this check.

The answer is measured whatever became of the run (``needs_run=False``): it is text the team
wrote, not something the run produced.
"""

from __future__ import annotations

from pydantic import Field

from grader.evidence import Evidence
from grader.intake import ANSWER_TAG, MAX_ANSWER_CHARS, answer_words, find_answer, is_placeholder, question_heading
from grader.score.checks.registry import CheckResult, Params, fail, register

__all__ = ["COACH_GRADED", "AnswerParams", "coach_graded"]

COACH_GRADED = "coach_graded"
AWAITING = "awaiting the coach"


class AnswerParams(Params):
    """``min_words``: the fewest words an answer may have (default 15). ``criterion``: set from the
    criterion's own id when the rubric is read (:meth:`grader.score.rubric.Criterion.merged_params`),
    never written in ``params``."""

    min_words: int = Field(default=15, ge=1, le=5_000)
    criterion: str = ""


@register(COACH_GRADED, AnswerParams, needs_run=False)
def coach_graded(ev: Evidence, params: AnswerParams) -> CheckResult:
    """Reads the notebook's written answer to the criterion's question (the markdown cell tagged
    ``answer:<id>``, else the first markdown cell after the heading ``### Question (<id>)``). Fails
    when there is none, when it is still the starter's placeholder ``*YOUR ANSWER HERE*``, or when
    it has fewer than ``min_words`` words; else it is ``awaiting`` the coach's grade (0 points
    until graded). Measured whether or not the notebook ran."""
    cid = params.criterion
    answer = find_answer(ev.answers, cid)
    if answer is None:
        return fail(f"no cell tagged {ANSWER_TAG}{cid} and no cell after the heading {question_heading(cid)}",
                    short="no answer")
    if not answer.text or is_placeholder(answer.text):
        return CheckResult(status="fail", message=f"still the placeholder (cell {answer.cell})",
                           short="placeholder", answer=answer)
    words = answer_words(answer.text)
    if words < params.min_words:
        return CheckResult(status="fail", message=f"{words} word{'' if words == 1 else 's'}; at least "
                           f"{params.min_words} asked (cell {answer.cell})", short=f"{words} words",
                           measured={"words": words}, answer=answer)
    where = "" if answer.found == "tag" else f", found after the heading {question_heading(cid)} (the tag was lost)"
    cut = f"; cut at {MAX_ANSWER_CHARS:,} characters" if answer.cut else ""
    return CheckResult(status="awaiting", message=f"{AWAITING}: {words} words in cell {answer.cell}{where}{cut}",
                       measured={"words": words}, answer=answer)
