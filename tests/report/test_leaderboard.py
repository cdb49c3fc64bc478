"""Leaderboards on constructed results: one entry per team per challenge, McNemar rank groups."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from grader.report.leaderboard import NOT_COMPARED_NOTE, WHOLE_VECTOR_NOTE, Board, leaderboards
from grader.score.measure import measure
from grader.score.scorecard import (
    CriterionResult,
    Environment,
    ExecutionSummary,
    ModelReport,
    NotebookResult,
    SubmissionResult,
    Verdict,
)

N = 424  # the gear hidden test set


def vector(k: int, n: int = N, *, offset: int = 0) -> list[bool]:
    """``k`` of ``n`` images right: images ``offset .. offset + k - 1`` (cyclically)."""
    return [(i - offset) % n < k for i in range(n)]


def notebook(name: str, correct: Sequence[bool] | None, *, challenge: str = "gear-cnn", points: float = 12,
             max_points: float = 12, public: Sequence[bool] | None = None,
             verdict: str = "pass") -> NotebookResult:
    """A graded notebook whose ``predict`` model got ``correct`` right (None: no model measured)."""
    models = []
    if correct is not None:
        labels = ["a"] * len(correct)
        predictions = ["a" if c else "b" for c in correct]
        models = [ModelReport.of("predict", "predict", measure(labels, predictions, ["a", "b"]), 1.0,
                                 correct=correct, public=public)]
    criteria = [CriterionResult(id="accuracy", title="accuracy", status="pass" if verdict == "pass" else "fail",
                                required=True, points=points, max_points=max_points, message="", fix="")]
    return NotebookResult(
        notebook=name, challenge=challenge, profile="ci", verdict=verdict,  # type: ignore[arg-type]
        score=points, max_score=max_points, criteria=criteria,
        execution=ExecutionSummary(status="ok", message="", failed_cell=None, wall_s=1.0, sandboxed=True,
                                   probe_status="ok", cells=[]),
        models=models)


def team(name: str, *notebooks: NotebookResult) -> SubmissionResult:
    verdict: Verdict = "pass" if all(nb.verdict == "pass" for nb in notebooks) else "fail"
    return SubmissionResult(
        submission=name, path=f"/subs/{name}", verdict=verdict, score=sum(nb.score for nb in notebooks),
        max_score=sum(nb.max_score for nb in notebooks), notebooks=list(notebooks),
        started="2026-12-01T00:00:00+00:00", finished="2026-12-01T00:01:00+00:00",
        environment=Environment(grader="0.1.0", python="3.11", platform="linux", device="cpu", sandbox="bwrap"))


def board(results: Sequence[SubmissionResult], challenge: str = "gear-cnn", **options: object) -> Board:
    found = [b for b in leaderboards(results, **options) if b.challenge == challenge]  # type: ignore[arg-type]
    assert len(found) == 1
    return found[0]


def test_identical_submissions_share_a_rank_group() -> None:
    b = board([team("alpha", notebook("a.ipynb", vector(380))), team("beta", notebook("b.ipynb", vector(380))),
               team("gamma", notebook("c.ipynb", vector(200)))])
    assert [(e.submission, e.group, e.label) for e in b.entries] == [
        ("alpha", 1, "1 = 2"), ("beta", 1, "1 = 2"), ("gamma", 2, "3")]
    assert b.entries[1].p_value == 1.0 and b.entries[0].p_value is None
    assert b.groups == 2 and b.notes == ()


def test_095_against_060_on_424_images_are_different_groups() -> None:
    b = board([team("weak", notebook("w.ipynb", vector(round(0.60 * N)))),
               team("strong", notebook("s.ipynb", vector(round(0.95 * N))))])
    strong, weak = b.entries
    assert (strong.submission, strong.label, weak.submission, weak.label) == ("strong", "1", "weak", "2")
    assert weak.p_value is not None and weak.p_value < 1e-10
    assert strong.figure is not None and (strong.figure.k, strong.figure.n) == (403, 424)
    assert round(strong.figure.low, 3) == 0.925 and round(strong.figure.high, 3) == 0.967


def test_groups_compare_with_the_groups_top_not_the_entry_above() -> None:
    # nested: A right on 400, B on 395 of those, C on 390; A vs B: 5 discordant pairs, p = 2 * 0.5**5
    b = board([team("C", notebook("c.ipynb", vector(390))), team("A", notebook("a.ipynb", vector(400))),
               team("B", notebook("b.ipynb", vector(395)))])
    assert [(e.submission, e.group, e.label) for e in b.entries] == [("A", 1, "1 = 2"), ("B", 1, "1 = 2"),
                                                                      ("C", 2, "3")]
    assert b.entries[1].p_value == pytest.approx(0.0625)
    assert b.entries[2].p_value == pytest.approx(2 * 0.5 ** 10)  # against A, though B vs C is 0.0625


def test_a_notebook_handed_in_twice_counts_once_and_does_not_rank_first_by_points() -> None:
    twice = team("twice", notebook("gear.ipynb", vector(382)), notebook("gear copy.ipynb", vector(382)))
    assert twice.score == 24
    b = board([twice, team("better", notebook("gear.ipynb", vector(403)))])
    assert [e.submission for e in b.entries] == ["better", "twice"]
    entry = b.entries[1]
    assert (entry.notebook, entry.also, entry.points_share) == ("gear copy.ipynb", ("gear.ipynb",), "12/12 (100%)")
    assert len(b.entries) == 2


def test_the_best_notebook_stands_for_the_team() -> None:
    b = board([team("t", notebook("old.ipynb", vector(300), points=8), notebook("new.ipynb", vector(350), points=6),
                    notebook("tie.ipynb", vector(350), points=7))])
    (entry,) = b.entries
    assert (entry.notebook, entry.also, entry.points) == ("tie.ipynb", ("new.ipynb", "old.ipynb"), 7)


def test_a_stray_scratch_notebook_does_not_lift_a_failing_team() -> None:
    failing = team("failing", notebook("gear.ipynb", vector(300), points=8, verdict="fail"),
                   notebook("scratch.ipynb", vector(100), challenge="gear-deep", points=5, verdict="fail"))
    passing = [team("p1", notebook("gear.ipynb", vector(395))), team("p2", notebook("gear.ipynb", vector(400)))]
    assert failing.score > passing[0].score
    cnn = board([failing, *passing])
    assert [e.submission for e in cnn.entries] == ["p2", "p1", "failing"]
    assert cnn.entries[2].points_share == "8/12 (67%)" and cnn.entries[2].group == 2
    deep = board([failing, *passing], "gear-deep")
    assert [e.submission for e in deep.entries] == ["failing"]
    assert [r.passed for r in cnn.rates] == [2] and [r.total for r in cnn.rates] == [3]


def test_a_part_ranks_on_its_own_images_with_the_public_mask() -> None:
    public = [i % 2 == 0 for i in range(N)]
    # equal on the public images, 30 apart on the private ones
    a = [True] * N
    b_ = [True if p else i % 8 != 1 for i, p in enumerate(public)]
    results = [team("b", notebook("b.ipynb", b_, public=public)), team("a", notebook("a.ipynb", a, public=public))]
    assert results[1].notebooks[0].models[0].public_mask == "10" * (N // 2)
    on_public = board(results, part="public")
    assert [e.label for e in on_public.entries] == ["1 = 2", "1 = 2"] and on_public.notes == ()
    assert on_public.entries[1].p_value == 1.0
    on_private = board(results, part="private")
    assert [(e.submission, e.label) for e in on_private.entries] == [("a", "1"), ("b", "2")]
    assert on_private.entries[1].private is not None and on_private.entries[1].private.n == N // 2


def test_without_a_public_mask_the_whole_vectors_are_compared_and_said_so() -> None:
    public = [i % 2 == 0 for i in range(N)]
    a = team("a", notebook("a.ipynb", [True] * N, public=public))
    stale = team("b", notebook("b.ipynb", [i % 8 != 1 for i in range(N)], public=public))
    nb = stale.notebooks[0]
    stale = stale.model_copy(update={"notebooks": [nb.model_copy(update={
        "models": [nb.models[0].model_copy(update={"public_mask": ""})]})]})
    b = board([a, stale], part="public")
    assert b.notes == (WHOLE_VECTOR_NOTE,)
    assert [e.label for e in b.entries] == ["1", "2"]  # 53 discordant images over the whole set


def test_results_without_parts_or_models_rank_last_with_a_note() -> None:
    public = [i % 2 == 0 for i in range(N)]
    b = board([team("nosplit", notebook("n.ipynb", vector(420))), team("crashed", notebook("c.ipynb", None)),
               team("split", notebook("s.ipynb", vector(300), public=public))], part="public")
    assert [(e.submission, e.label, e.group) for e in b.entries] == [
        ("split", "1", 1), ("crashed", "\u2013", None), ("nosplit", "\u2013", None)]
    assert b.entries[1].note == "not ranked: no accuracy of predict on the hidden test set was measured"
    assert b.entries[2].note.startswith("not ranked: no public part recorded")
    assert b.entries[2].public is None and b.entries[2].all is not None


def test_schema_1_results_rank_on_all_but_are_not_compared() -> None:
    old = team("old", notebook("o.ipynb", vector(390)))
    data = old.model_dump()
    data["schema_version"] = 1
    for key in ("accuracy_ci", "parts", "correct", "public_mask"):
        del data["notebooks"][0]["models"][0][key]
    old = SubmissionResult.model_validate(data)
    b = board([team("new", notebook("n.ipynb", vector(400))), old])
    assert [(e.submission, e.label, e.compared) for e in b.entries] == [("new", "1", True), ("old", "2", False)]
    assert b.entries[1].figure is not None and b.entries[1].figure.k == 390
    assert b.entries[1].note == "not compared" and b.notes == (NOT_COMPARED_NOTE,)


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown leaderboard part 'hidden'; choose one of all, public, private"):
        leaderboards([], part="hidden")  # type: ignore[arg-type]
