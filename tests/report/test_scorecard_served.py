"""A team scorecard as the event server serves it (grader.report.teamcard.served): its title and heading name
the submission, a link leads back; every scorecard (the CLI's too) has a phone's viewport and tables that
scroll in their own box; a team's fixes point to what its card shows."""

from __future__ import annotations

import re

from grader.report.render import render_scorecard, render_team_scorecards
from grader.report.teamcard import BACK_SLOT, HEADING_SLOT, run_log, served, unpack, with_board
from grader.score.scorecard import SubmissionResult
from tests.report.test_teamcard import graded

COACH_FIX = "Look at the confusion matrix on the scorecard: the rare classes need more examples."


def _with_fix(result: SubmissionResult) -> SubmissionResult:
    nb = result.notebooks[0]
    criteria = [c.model_copy(update={"fix": COACH_FIX}) if c.id == "per-class" else c for c in nb.criteria]
    return result.model_copy(update={"notebooks": [nb.model_copy(update={"criteria": criteria})]})


def test_a_served_team_card_names_its_submission_and_leads_back() -> None:
    before = unpack(render_team_scorecards(graded(27, 12)), revealed=False)
    assert before is not None and HEADING_SLOT in before and BACK_SLOT in before
    html = served(with_board(before, []), number=3, filename="<b>try</b>.ipynb", team="alpha")
    assert re.findall(r"<title>[^<]*</title>", html) == [
        "<title>Submission 3 (&lt;b&gt;try&lt;/b&gt;.ipynb) · Scorecard: alpha</title>"]
    assert '<h1><span class="which">Submission 3 (&lt;b&gt;try&lt;/b&gt;.ipynb)</span>Scorecard: alpha' in html
    assert '<nav class="back"><a href="/">&larr; Your team\'s page</a></nav>' in html
    assert HEADING_SLOT not in html and BACK_SLOT not in html and "<b>try" not in html
    regrade = served(before, number=None, filename="t.ipynb", team="alpha", regrade_of=2)
    assert "<title>Re-grade by the coach of submission 2 (t.ipynb) · Scorecard: alpha</title>" in regrade
    practice = served(before, number=None, filename="t.ipynb", team="alpha", practice=True)
    assert "<title>Practice check (t.ipynb) · Practice scorecard: alpha</title>" in practice
    # a card stored before the slots existed: its title only
    old = "<html><head><title>Scorecard: alpha</title></head><body><h1>Scorecard: alpha</h1></body></html>"
    assert served(old, number=1, filename="a.ipynb", team="alpha") == old.replace(
        "<title>Scorecard: alpha</title>", "<title>Submission 1 (a.ipynb) · Scorecard: alpha</title>")


def test_every_scorecard_fits_a_phone_and_only_the_served_one_leads_back() -> None:
    full = render_scorecard(graded(27, 12))
    team = render_scorecard(graded(27, 12), audience="team", revealed=True)
    for html in (full, team):
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        style = html[html.index("<style>"):html.index("</style>")]
        assert "@media (max-width: 640px)" in style and "overflow-x: auto" in style and "img { max-width: 100%; }" \
            in style
    assert HEADING_SLOT not in full and BACK_SLOT not in full and '<nav class="back">' not in full
    assert BACK_SLOT in team


def test_a_teams_fix_before_the_reveal_points_to_what_its_card_shows() -> None:
    result = _with_fix(graded(27, 12, min_recall=0.95))  # the per-class criterion fails
    before = render_scorecard(result, audience="team")
    after = render_scorecard(result, audience="team", revealed=True)
    full = render_scorecard(result)
    assert "Confusion matrix" not in before and COACH_FIX not in before
    assert "classification_report" in before and "after the coach reveals the results" in before
    assert COACH_FIX in after and "Confusion matrix" in after  # the card shows the matrix now
    assert COACH_FIX in full and "Confusion matrix" in full
    for words in ("when the event ends", "when the coach reveals", "appear here when"):
        assert words not in after, words


def test_the_log_of_a_submission_without_a_result() -> None:
    text = run_log(None, revealed=False, header=["Submission 2 (x.ipynb), team alpha"], state="failed",
                   error="the notebook is not valid JSON")
    assert text == "Submission 2 (x.ipynb), team alpha\n\nState: failed. the notebook is not valid JSON\n"
