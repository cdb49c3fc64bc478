"""What a team sees of its own result (grader.report.teamcard): no finer than the public board's Ladder before
the coach's Reveal, every figure after it, matches with hidden images never; through the real app too."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from grader.report.render import render_scorecard, render_team_scorecards
from grader.report.teamcard import AFTER_REVEAL, BOARD_SLOT, BoardStep, pack, team_view, unpack, with_board
from grader.score.bars import Bar
from grader.score.measure import measure
from grader.score.scorecard import (
    CellRow,
    CriterionResult,
    Environment,
    ExecutionSummary,
    ModelReport,
    NewImageRow,
    NotebookResult,
    SubmissionResult,
)
from grader.server.store.store import Store
from grader.server.web.boards import Graded, board_steps, public_boards
from tests.server.test_server_app import Event, event, join, notebook_bytes, upload  # noqa: F401  (event: a fixture)

CLASSES = ["red", "green", "blue"]
N_PART = 30  # images per part: 10 red, then 10 green, then 10 blue


def graded(k_public: int, k_private: int, *, threshold: float = 0.85, min_recall: float = 0.5,
           decision: Literal["point", "lower_bound"] = "point", new_images: tuple[NewImageRow, ...] = (),
           split: bool = True, name: str = "alpha") -> SubmissionResult:
    """A graded submission whose ``predict`` got the first ``k_public`` of the 30 public and the first
    ``k_private`` of the 30 private hidden images right (each part: 10 red, 10 green, 10 blue), graded on the
    whole hidden test set as the checks grade it: accuracy >= ``threshold`` (3 points, required), every
    class's recall >= ``min_recall`` (1 point, optional), the notebook ran (1 point)."""
    n = 2 * N_PART
    labels = [CLASSES[(i % N_PART) // 10] for i in range(n)]
    right = [i < k_public for i in range(N_PART)] + [i < k_private for i in range(N_PART)]
    predictions = [label if ok else CLASSES[(CLASSES.index(label) + 1) % 3]
                   for label, ok in zip(labels, right, strict=True)]
    m = measure(labels, predictions, CLASSES)
    model = ModelReport.of("predict", "predict", m, 1.0, correct=right,
                           public=[i < N_PART for i in range(n)] if split else None,
                           predictions=predictions, labels=labels)
    accuracy_ok = (model.accuracy_ci.low if decision == "lower_bound" else m.accuracy) >= threshold  # type: ignore[union-attr]
    recalls = [row["recall"] for row in model.per_class]
    recall_ok = min(float(r) for r in recalls) >= min_recall
    criteria = [
        CriterionResult(id="accuracy", title="Accuracy on the hidden test set",
                        status="pass" if accuracy_ok else "fail", required=True,
                        points=3 if accuracy_ok else 0, max_points=3,
                        message=f"`predict` scored {m.accuracy:.3f} on {n} hidden test images",
                        fix="train longer", short="" if accuracy_ok else f"{m.accuracy:.2f} < {threshold:.2f}",
                        decision=decision, borderline="0.650, 95% interval 0.52-0.76 over 60 images",
                        measured={"accuracy": round(m.accuracy, 4), "accuracy_low": 0.5, "accuracy_high": 0.8, "n": n},
                        bar=Bar(figure="accuracy", role="predict", threshold=threshold)),
        CriterionResult(id="per-class", title="Every class recognised", status="pass" if recall_ok else "fail",
                        required=False, points=1 if recall_ok else 0, max_points=1,
                        message=f"lowest: {min(float(r) for r in recalls):.2f} (7 of 20 images)", fix="balance",
                        measured={"worst_recall": 0.35, "worst_recall_low": 0.2, "worst_recall_high": 0.5,
                                  "worst_n": 20},
                        bar=Bar(figure="worst_recall", role="predict", threshold=min_recall)),
        CriterionResult(id="runs", title="The notebook runs", status="pass", required=True, points=1, max_points=1,
                        message="every cell ran", fix=""),
    ]
    score = sum(c.points for c in criteria)
    verdict: Literal["pass", "fail"] = "pass" if accuracy_ok else "fail"
    nb = NotebookResult(
        notebook="toy.ipynb", challenge="toy", profile="ci", verdict=verdict, score=score, max_score=5,
        criteria=criteria, execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1.0,
                                                      sandboxed=True, probe_status="ok", cells=[]),
        models=[model], new_images=list(new_images), claimed_accuracy=0.99, claim_flagged=True, claim_line="acc 0.99")
    return SubmissionResult(
        submission=name, path=f"/subs/{name}", verdict=verdict, score=score, max_score=5, notebooks=[nb],
        started="2026-12-01T00:00:00+00:00", finished="2026-12-01T00:01:00+00:00",
        environment=Environment(grader="0.1.0", python="3.11", platform="linux", device="cpu", sandbox="bwrap"))


def body(html: str) -> str:
    """The page's body (the stylesheet holds figures of its own: widths, colours)."""
    return html[html.index("<body>"):]


HIDDEN = NewImageRow(file="mine.jpg", prediction="red", dataset_match=None, error=None,
                     hidden_match="axes/100937.jpeg")
PUBLIC = NewImageRow(file="copied.png", prediction="green", dataset_match="green/7.png", error=None)

# ---------------------------------------------------------------- the scorecard before and after the Reveal


def test_before_the_reveal_no_figure_of_the_hidden_test_set() -> None:
    """No exact public count, no accuracy, no interval, no per-class figure, no confusion matrix, no
    borderline words, no printed-claim check: only the board's step (put in when served)."""
    result = graded(27, 12)  # public 0.90, private 0.40, whole 0.65
    team = render_scorecard(result, audience="team")
    shown = body(team)
    assert re.search(r"\d%", shown) is None, re.findall(r".{40}\d%.{20}", shown)
    for figure in ("0.90", "0.900", "0.65", "0.650", "0.40", "27", "39", "60 ", "of 30", "0.35", "7 of 20"):
        assert figure not in shown, figure
    for words in ("interval", "Recall (per-class accuracy)", "Confusion matrix", "public part:",
                  "<td>red</td>", "Borderline", "printed", "images", "private part:"):
        assert words not in shown, words
    assert shown.count(BOARD_SLOT) == 1
    assert "this scorecard shows the hidden test set only as the leaderboard does" in shown
    full = render_scorecard(result)
    assert "accuracy 65.0%" in full and "Confusion matrix" in full and "public part: 90.0%" in full


@pytest.mark.parametrize(("k_public", "k_private", "whole", "public"), [
    (27, 12, "fail", "pass"),  # public 0.90 passes 0.85; the whole set (0.65) does not
    (24, 30, "pass", "fail"),  # the reverse: public 0.80, whole 0.90
])
def test_a_threshold_verdict_on_the_team_card_follows_the_public_part(k_public: int, k_private: int, whole: str,
                                                                      public: str) -> None:
    result = graded(k_public, k_private)
    assert result.verdict == whole and result.notebooks[0].criteria[0].status == whole
    seen = team_view(result)
    accuracy = seen.notebooks[0].criteria[0]
    assert (accuracy.status, seen.notebooks[0].verdict, seen.verdict) == (public, public, public)
    assert accuracy.points == (3 if public == "pass" else 0) and seen.score == seen.notebooks[0].score
    assert accuracy.message == (f"{'met' if public == 'pass' else 'not met'} on the public part (needs accuracy 0.85); "
                                "figures when the coach reveals the results")
    assert accuracy.short == accuracy.borderline == "" and accuracy.measured == {}
    team = render_scorecard(result, audience="team")
    assert f'Scorecard: alpha <span class="badge {public}">{public.upper()}</span>' in team
    revealed = render_scorecard(result, audience="team", revealed=True)
    assert f'Scorecard: alpha <span class="badge {whole}">{whole.upper()}</span>' in revealed
    assert result.notebooks[0].criteria[0].status == whole  # the stored result is not changed


def test_per_class_and_lower_bound_criteria_are_decided_on_the_public_part() -> None:
    # public: 10 of 10 red, 10 of 10 green, 4 of 10 blue right (recall 0.4); private: all right
    result = graded(24, 30, min_recall=0.5)
    assert result.notebooks[0].criteria[1].status == "pass"  # whole set: blue 14 of 20 = 0.70
    assert team_view(result).notebooks[0].criteria[1].status == "fail"  # public part: blue 0.40
    # public 29 of 30 (0.967, its interval's lower end 0.83) against 0.85: point passes, lower bound fails
    assert team_view(graded(29, 30, threshold=0.85)).notebooks[0].criteria[0].status == "pass"
    assert team_view(graded(29, 30, threshold=0.85, decision="lower_bound")).notebooks[0].criteria[0].status == "fail"


def test_after_the_reveal_the_team_sees_the_whole_set_figures() -> None:
    result = graded(27, 12, new_images=(HIDDEN, PUBLIC))
    revealed = body(render_scorecard(result, audience="team", revealed=True))
    assert "predict on the hidden test set: accuracy 65.0%, 95% interval" in revealed
    assert "public part: 90.0%" in revealed and "private part: 40.0%" in revealed
    assert "Recall (per-class accuracy)" in revealed and "Confusion matrix" in revealed
    assert "`predict` scored 0.650 on 60 hidden test images" in revealed and BOARD_SLOT not in revealed
    assert "100937" not in revealed and "axes" not in revealed  # still the coach's only
    assert "The notebook printed" not in revealed  # the claim check stays the coach's
    assert "The coach has revealed the results" in revealed


# ---------------------------------------------------------------- matches with the challenge's data


def test_a_match_with_a_hidden_image_is_shown_to_the_coach_only() -> None:
    result = graded(27, 12, new_images=(HIDDEN, PUBLIC))
    full = render_scorecard(result)
    assert "a hidden test image: axes/100937.jpeg" in full and "in the dataset: green/7.png" in full
    for revealed in (False, True):
        assert [im.hidden_match for im in team_view(result, revealed=revealed).notebooks[0].new_images] == [None, None]
    for team in (render_scorecard(result, audience="team"), render_scorecard(result, audience="team", revealed=True),
                 render_team_scorecards(result)):
        assert "100937" not in team and "axes" not in team and "hidden test image:" not in team
        assert "in the dataset: green/7.png" in team  # a public match is named to the team
    # a schema 2 result's dataset_match may name a hidden image: a team sees none of them
    old = result.model_copy(update={"schema_version": 2, "notebooks": [result.notebooks[0].model_copy(update={
        "new_images": [PUBLIC.model_copy(update={"dataset_match": "axes/100937.jpeg"})]})]})
    assert "100937" not in render_scorecard(old, audience="team", revealed=True)
    assert "in the dataset: axes/100937.jpeg" in render_scorecard(old)


def test_new_images_names_public_matches_and_keeps_hidden_ones_apart(tmp_path: Path) -> None:
    """grader.execute.prepare.new_images: a copy of a public image is ``dataset_match``, of a hidden one
    ``hidden_match`` only; an image in both is the public one; a new photo neither."""
    import imagehash
    import numpy as np
    from PIL import Image

    from grader.execute.prepare import new_images

    rng = np.random.default_rng(25)

    def photo(name: str) -> Image.Image:
        image = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((64, 64))
        image.save(tmp_path / name)
        return image

    public, secret, both, fresh = photo("p.png"), photo("h.png"), photo("b.png"), photo("n.png")
    hashes = {entry: str(imagehash.phash(image)) for entry, image in (
        ("green/7.png", public), ("axes/100937.png", secret), ("red/1.png", both), ("blue/2.png", both))}
    rows = new_images(tmp_path, ["p.png", "h.png", "b.png", "n.png"], hashes, hidden={"axes/100937.png", "blue/2.png"})
    assert [(r.file, r.dataset_match, r.hidden_match) for r in rows] == [
        ("p.png", "green/7.png", None), ("h.png", None, "axes/100937.png"), ("b.png", "red/1.png", None),
        ("n.png", None, None)]
    assert fresh is not None


# ---------------------------------------------------------------- the board's step


def at(minutes: int) -> datetime:
    return datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=minutes)


def test_board_steps_are_the_boards_own_transcript() -> None:
    starter = graded(0, 0)
    starter = starter.model_copy(update={"notebooks": [starter.notebooks[0].model_copy(update={"models": []})]})
    subs = [Graded("alpha", 1, at(0), graded(24, 0)),  # public 0.80: the first score, set
            Graded("beta", 2, at(1), graded(30, 0, name="beta")),
            Graded("alpha", 3, at(2), graded(24, 30)),  # 0.80 again (private all right): kept
            Graded("alpha", 4, at(3), graded(25, 0)),  # 0.833 beats 0.80 + 0.01: set, shown 0.83
            Graded("alpha", 5, at(4), starter)]  # no model: unscored
    steps = {i: board_steps(subs, i) for i in (1, 3, 4, 5)}
    assert steps == {1: [BoardStep("toy", "set", 0.8, 0.01)], 3: [BoardStep("toy", "kept", 0.8, 0.01)],
                     4: [BoardStep("toy", "set", 0.83, 0.01)], 5: [BoardStep("toy", "unscored", 0.83, 0.01)]}
    board = public_boards(subs, ["toy"])[0]
    assert next(r.shown for r in board.rows if r.team == "alpha") == steps[5][0].shown
    assert board_steps(subs, 99) == []
    unsplit = [Graded("alpha", 1, at(0), graded(24, 0, split=False))]
    assert board_steps(unsplit, 1) == [BoardStep("toy", "set", 0.4, 0.01, whole=True)]
    drawn = {i: with_board(BOARD_SLOT, s) for i, s in steps.items()}
    assert "this submission set your team's score to <strong>80%</strong> on the public part" in drawn[1]
    assert "no better than your team's score on the board (80%) by more than 1 point: the board keeps 80%" in drawn[3]
    assert "no score on the board" in drawn[5] and "your team's score stays 83%" in drawn[5]
    assert "83.5%" in with_board(BOARD_SLOT, [BoardStep("toy", "set", 0.835, 0.005)])


def test_both_team_scorecards_are_stored_and_served_apart() -> None:
    stored = render_team_scorecards(graded(27, 12))
    before, after = unpack(stored, revealed=False), unpack(stored, revealed=True)
    assert before is not None and after is not None and AFTER_REVEAL not in before + after
    assert BOARD_SLOT in before and "65.0%" not in before and "accuracy 65.0%" in after
    assert unpack("<html>a scorecard stored before</html>", revealed=False) is None
    assert unpack(pack("no slot", "after"), revealed=True) is None


# ---------------------------------------------------------------- through the real app


def finish(store: Store, result: SubmissionResult) -> int:
    """Grade the oldest queued submission with ``result`` as a worker does (both team scorecards stored)."""
    job = store.claim("test-worker", lease_s=60)
    assert job is not None
    assert store.finish(job.id, "test-worker", result_json=result.model_dump_json(),
                        scorecard_html=render_scorecard(result), team_scorecard_html=render_team_scorecards(result),
                        verdict=result.verdict, score=result.score, max_score=result.max_score)
    return job.id


def test_a_team_scorecard_through_the_app_before_and_after_the_reveal(event: Event) -> None:  # noqa: F811
    alpha, csrf = join(event, "alpha")
    ids = []
    for result in (graded(27, 12, new_images=(HIDDEN,)), graded(27, 30)):  # public 0.90 twice
        assert upload(alpha, csrf, [("toy.ipynb", notebook_bytes())]).status_code == 303
        ids.append(finish(event.store, result))
    first, second = (body(alpha.get(f"/submissions/{i}/scorecard").text) for i in ids)
    assert "this submission set your team's score to <strong>90%</strong>" in first
    assert "no better than your team's score on the board (90%) by more than 1 point" in second
    for page in (first, second):
        assert re.search(r"\d%", page.replace("90%", "")) is None
        assert "Confusion matrix" not in page and "Recall (per-class accuracy)" not in page
        assert "100937" not in page and "axes" not in page
    assert '<span class="badge pass">PASS</span></h1>' in first  # decided on the public part (0.90 >= 0.85)
    # the team's page and the submission's status say the same, not the whole set's verdict (fail, 1 of 5)
    assert {k: alpha.get(f"/submissions/{ids[0]}/status").json()[k] for k in ("verdict", "score")} == {
        "verdict": "pass", "score": 5}
    assert '"verdict": "pass", "score": 5' in alpha.get(f"/submissions/{ids[0]}/events").text
    assert '<span class="badge fail">fail</span>' not in alpha.get("/").text
    coach, coach_csrf = join(event, "coach")
    assert "a hidden test image: axes/100937.jpeg" in coach.get(f"/coach/submissions/{ids[0]}/scorecard").text
    assert coach.post("/coach/reveal", data={"csrf": coach_csrf, "revealed": "1"}).status_code == 200
    revealed = body(alpha.get(f"/submissions/{ids[0]}/scorecard").text)
    assert "accuracy 65.0%" in revealed and "private part: 40.0%" in revealed and "Confusion matrix" in revealed
    assert '<span class="badge fail">FAIL</span></h1>' in revealed and "Leaderboard:" not in revealed
    assert "100937" not in revealed and "axes" not in revealed
    assert {k: alpha.get(f"/submissions/{ids[0]}/status").json()[k] for k in ("verdict", "score")} == {
        "verdict": "fail", "score": 1}


def test_the_ladders_transcript_is_bounded_in_bits() -> None:
    """grader.server.web.ladder.transcript_bits: log2(1/eta + 3) bits a submission (103 outcomes at eta 0.01),
    and no more than (1/eta + 1) changes of the score, each told by its submission and value."""
    import math

    from grader.server.web.ladder import transcript_bits

    assert transcript_bits(0) == 0.0
    assert transcript_bits(1) == pytest.approx(math.log2(103)) == pytest.approx(6.69, abs=0.005)
    assert transcript_bits(5) == pytest.approx(5 * math.log2(103))
    assert transcript_bits(1000) == pytest.approx(101 * math.log2(1000 * 101))  # the second bound, smaller
    assert transcript_bits(1, eta=0.005) == pytest.approx(math.log2(203))
    with pytest.raises(ValueError, match="at least 0"):
        transcript_bits(-1)


def test_a_copy_of_a_hidden_image_neither_fails_nor_names_it_in_the_new_images_criterion() -> None:
    """A copy of a public image fails the criterion, named; of a hidden image it cannot (the team would learn
    that the image is hidden): the criterion's message, which both scorecards show, never names it."""
    from grader.evidence.records import NewImage
    from tests.score.test_checks import evidence, run

    images = tuple(NewImage(file=f"{i}.jpg", thumbnail="", dataset_match=None) for i in range(4))
    probe = {"new_images": {"files": [f"{i}.jpg" for i in range(4)] + ["x.jpg"], "predictions": ["rope"] * 5}}
    hidden = NewImage(file="x.jpg", thumbnail="", dataset_match=None, hidden_match="axes/100937.jpeg")
    result = run("new_image_predictions", evidence(probe, new_images=(*images, hidden)))
    assert result.status == "pass" and "100937" not in result.message and "axes" not in result.message
    public = NewImage(file="x.jpg", thumbnail="", dataset_match="rope/1.jpeg")
    result = run("new_image_predictions", evidence(probe, new_images=(*images, public)))
    assert result.status == "fail" and "x.jpg = rope/1.jpeg" in result.message


@pytest.mark.kernel
def test_a_graded_copy_of_a_hidden_image_is_named_to_the_coach_only(tmp_path: Path) -> None:
    """The whole pipeline on the toy challenge: a new image that is a hidden test image (``red/red0.png``)
    is the coach's ``hidden_match``, on neither team scorecard; one that is a public image is named to all."""
    import shutil

    from grader.intake.submissions import discover
    from grader.pipeline.grade import GradeOptions, grade_submission
    from grader.sandbox.session import resolve_sandbox
    from tests.support.toy import GOOD_TOY_CELLS, build_toy, write_submission

    settings = build_toy(tmp_path / "toy")
    folder = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS, new_images=2)
    assert settings.data_dir is not None
    shutil.copyfile(settings.data_dir / "toy" / "red" / "red0.png", folder / "new_images" / "mine.png")  # hidden
    shutil.copyfile(settings.data_dir / "toy" / "blue" / "blue4.png", folder / "new_images" / "pub.png")  # public
    result = grade_submission(discover(folder), settings, GradeOptions(profile="ci", sandbox=resolve_sandbox("none")))
    rows = {im.file: (im.dataset_match, im.hidden_match) for im in result.notebooks[0].new_images}
    assert rows["mine.png"] == (None, "red/red0.png") and rows["pub.png"] == ("blue/blue4.png", None)
    assert '"hidden_match":"red/red0.png"' in result.model_dump_json()  # result.json keeps it
    full = render_scorecard(result)
    assert "a hidden test image: red/red0.png" in full and "in the dataset: blue/blue4.png" in full
    stored = render_team_scorecards(result)
    for team in (unpack(stored, revealed=False), unpack(stored, revealed=True)):
        assert team is not None and "red0" not in team and "red/" not in team
        assert "in the dataset: blue/blue4.png" in team and "pub.png = blue/blue4.png" in team  # the criterion


@pytest.mark.parametrize("revealed", [False, True])
def test_a_team_card_names_no_server_folder_and_rounds_the_run_time(revealed: bool) -> None:
    result = graded(30, 30)
    nb = result.notebooks[0]
    mounts = "/tmp/cache/hidden/toy-d14cdd698ec8ea57 /tmp/grader-Blue-gwqzgtf8/gate/s0 ro"
    failed = nb.model_copy(update={
        "execution": nb.execution.model_copy(update={
            "status": "cell_error", "message": f"cell 2 raised RuntimeError: {mounts}", "wall_s": 16.137,
            "cells": [CellRow(index=0, status="error", seconds=1.5, source="print(open('/proc/self/mountinfo'))",
                              error=f"RuntimeError: {mounts}")]}),
        "criteria": [c.model_copy(update={"message": f"{c.message}; cell 2 raised RuntimeError: {mounts}"})
                     for c in nb.criteria]})
    seen = team_view(result.model_copy(update={"notebooks": [failed]}), revealed=revealed)
    text = seen.model_dump_json()
    for folder in ("/tmp/cache", "hidden/toy-", "grader-Blue", "gate/s0"):
        assert folder not in text, folder
    assert "…/s0 ro" in text  # the last name kept, its folders cut
    assert seen.notebooks[0].execution.wall_s == 16.0
