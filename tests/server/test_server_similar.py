"""The coach's similar pairs kept per set of results, and the work ``grader serve`` does at start
(issue 28): the similar pairs' imports and each challenge's public-data zip, built before the
first download asks for it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from grader.integrity.pairs import notebook_code
from grader.server.serve import StartUpWork
from grader.server.web.options import AppOptions
from grader.server.web.pages import Site
from grader.server.web.similar import precompute_similar, similar
from grader.server.work.worker import CODE_FOLDER
from tests.server.test_server_app import Event, event, finish, join, result  # noqa: F401  # the app's event fixture

REFERENCES = Path(__file__).resolve().parents[2] / "reference_solutions" / "gear-cnn"


def graded(ev: Event, team: str, code: str, *, right: int = 18) -> int:
    """A graded submission of ``team`` whose kept code (:func:`grader.server.work.worker.save_code`)
    is ``code`` and whose model got ``right`` of the 20 public hidden images right, stored through
    the Store API as a worker would; its id."""
    team_id = next(t.id for t in ev.store.teams("spring") if t.name == team)
    upload = ev.store.store_upload(io.BytesIO(f"# {team} {code[:20]}".encode()), filename="toy.ipynb",
                                   max_bytes=1 << 20)
    ev.store.submit("spring", team_id, challenge="toy", upload=upload)
    sub_id = finish(ev.store, result(team, right, 8))
    (ev.store.state_dir / CODE_FOLDER).mkdir(exist_ok=True)
    (ev.store.state_dir / CODE_FOLDER / f"{sub_id}.json").write_text(json.dumps({"toy.ipynb": code}))
    return sub_id


def test_similar_pairs_are_kept_per_set_of_chosen_submissions(event: Event) -> None:  # noqa: F811
    site = Site(store=event.store, settings=event.settings, event="spring", options=AppOptions(), workers=None)
    pytorch, tensorflow = (notebook_code(REFERENCES / f"{name}.ipynb") for name in ("pytorch", "tensorflow"))
    graded(event, "alpha", pytorch)
    graded(event, "beta", pytorch)
    pairs, compared = similar(site)
    assert compared == 2 and [(p.a.team, p.b.team, p.flagged_on) for p in pairs] == [("alpha", "beta", ["code"])]
    again, _ = similar(site)
    assert again is pairs  # the same set of results: kept, not computed again
    other = Site(store=event.store, settings=event.settings, event="spring", options=AppOptions(), workers=None)
    assert similar(other)[0] is pairs  # kept beside the store, whichever app's page asks
    # beta's newer submission scores better: its chosen one, another set, computed again
    graded(event, "beta", tensorflow, right=20)
    pairs, compared = similar(site)
    assert compared == 2 and pairs == [] and pairs is not again
    assert similar(site)[0] is pairs


def test_the_start_up_work_warms_up_then_builds_the_public_data_zip_the_first_download_gets(event: Event) -> None:  # noqa: F811
    ran: list[str] = []

    def fails() -> None:
        ran.append("fails")
        raise RuntimeError("a warm-up that fails")

    zips = event.settings.cache_dir / "exports"
    warm = [("first", lambda: ran.append(f"first, {len(list(zips.glob('*.zip')))} zip")), ("fails", fails),
            ("last", lambda: ran.append("last"))]
    work = StartUpWork(event.settings, ["toy", "no-such-challenge"], warm=warm)
    work.start()
    assert work.done.wait(60)
    assert ran == ["first, 1 zip", "fails", "last"]  # after the zips, in order; one that fails does not stop the next
    path = work.ready["toy"]
    assert path.is_file() and path.parent == event.settings.cache_dir / "exports"
    assert list(work.failed) == ["no-such-challenge"] and "no-such-challenge" not in work.ready
    built = path.stat().st_mtime_ns
    client, _ = join(event, "alpha")
    page = client.get("/challenges/toy/public-data.zip")
    assert page.status_code == 200 and page.content == path.read_bytes()
    assert path.stat().st_mtime_ns == built and sorted(path.parent.glob("*.zip")) == [path]  # served, not built again
    with zipfile.ZipFile(io.BytesIO(page.content)) as archive:
        assert any(name.endswith("red2.png") for name in archive.namelist())


def test_a_stopped_start_up_builds_nothing(event: Event) -> None:  # noqa: F811
    work = StartUpWork(event.settings, ["toy"], warm=[("never", lambda: pytest.fail("ran after the stop"))])
    work.stop()  # the server stopped before the thread began
    work.start()
    assert work.done.wait(60)
    assert work.ready == {} and work.failed == {}
    assert not list((event.settings.cache_dir / "exports").glob("*.zip"))


def test_the_pairs_computed_at_start_answer_the_coachs_first_view(event: Event,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.integrity

    pytorch = notebook_code(REFERENCES / "pytorch.ipynb")
    graded(event, "alpha", pytorch)
    graded(event, "beta", pytorch)
    assert precompute_similar(event.store, event.settings, event="spring", options=AppOptions()) == 1

    def not_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pairs were computed again")

    monkeypatch.setattr(grader.integrity, "similar_pairs", not_again)
    site = Site(store=event.store, settings=event.settings, event="spring", options=AppOptions(), workers=None)
    pairs, compared = similar(site)
    assert compared == 2 and [(p.a.team, p.b.team) for p in pairs] == [("alpha", "beta")]


def test_the_pairs_computed_in_a_child_process_at_start_answer_the_coachs_first_view(
        event: Event, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import threading

    import grader.integrity
    from grader.server.serve import in_child
    from grader.server.web.similar import keep_similar, similar_in_child

    pytorch = notebook_code(REFERENCES / "pytorch.ipynb")
    graded(event, "alpha", pytorch)
    graded(event, "beta", pytorch)

    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pairs were computed in the server's own process")

    monkeypatch.setattr(grader.integrity, "similar_pairs", not_here)  # the child is a fresh interpreter
    kept = in_child(similar_in_child, event.store.state_dir, event.store.database_url, event.settings,
                    stop=threading.Event(), kwargs={"event": "spring", "options": AppOptions()})
    assert kept.compared == 2 and [(p.a.team, p.b.team) for p in kept.pairs] == [("alpha", "beta")]
    keep_similar(event.store, kept)
    site = Site(store=event.store, settings=event.settings, event="spring", options=AppOptions(), workers=None)
    pairs, compared = similar(site)
    assert compared == 2 and [(p.a.team, p.b.team) for p in pairs] == [("alpha", "beta")]


def test_after_the_childs_pairs_a_new_result_tokenizes_only_the_new_notebook(
        event: Event, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import threading
    import uuid

    import copydetect.utils

    from grader.server.serve import in_child
    from grader.server.web.similar import keep_similar, similar_in_child

    pytorch, tensorflow = (notebook_code(REFERENCES / f"{name}.ipynb") for name in ("pytorch", "tensorflow"))
    mark = uuid.uuid4().hex  # texts this test process has never tokenized (its caches are per text)
    graded(event, "alpha", f"{pytorch}\n# {mark} alpha")
    graded(event, "beta", f"{pytorch}\n# {mark} beta")
    kept = in_child(similar_in_child, event.store.state_dir, event.store.database_url, event.settings,
                    stop=threading.Event(), kwargs={"event": "spring", "options": AppOptions()})
    assert sorted(kept.tokens) == sorted([f"{pytorch}\n# {mark} alpha", f"{pytorch}\n# {mark} beta"])
    keep_similar(event.store, kept)
    tokenizer = copydetect.utils.filter_code
    tokenized: list[str] = []

    def counted(code: str, *args: object, **kwargs: object) -> object:
        tokenized.append(code)
        return tokenizer(code, *args, **kwargs)

    monkeypatch.setattr(copydetect.utils, "filter_code", counted)
    new = f"{tensorflow}\n# {mark} beta again"
    graded(event, "beta", new, right=20)  # beta's chosen submission now: another set, computed here
    site = Site(store=event.store, settings=event.settings, event="spring", options=AppOptions(), workers=None)
    pairs, compared = similar(site)
    assert compared == 2 and pairs == []
    assert [code for code in tokenized if mark in code] == [new]  # alpha's came from the child


def test_a_start_up_child_reports_its_error_and_stops_when_asked() -> None:
    import threading
    import time

    from grader.server.serve import _Stopped, in_child

    with pytest.raises(RuntimeError, match="ValueError: invalid literal"):
        in_child(int, "not a number", stop=threading.Event())
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(_Stopped):
        in_child(time.sleep, 60.0, stop=stop)
    assert time.monotonic() - t0 < 10  # killed, not waited for


def test_the_coachs_similar_page_shows_copied_written_answers_escaped(event: Event) -> None:  # noqa: F811
    from grader.score.scorecard import CriterionResult

    evil = "<img src=x onerror=alert(1)>"
    shared = ("Our network stops at about 52 percent test error on CIFAR-10 and under 3 percent on MNIST, because "
              "a photo of a cat or a ship varies in pose, lighting, background and colour far more than a centred "
              "digit does, and a dense layer sees every pixel on its own with no idea which pixels are neighbours.")
    answers = {"alpha": f"{evil} {shared}", "beta": f"{shared} Convolutions would share weights across positions."}
    for team, answer in answers.items():
        written = CriterionResult(id="mnist-gap", title="Why the gap", status="awaiting", required=False, points=0,
                                  max_points=2, message="", fix="", coach_graded=True, question="Why the gap?",
                                  answer=answer)
        done = result(team, 18, 8)
        nb = done.notebooks[0].model_copy(update={"criteria": [*done.notebooks[0].criteria, written]})
        team_id = next(t.id for t in event.store.teams("spring") if t.name == team)
        upload = event.store.store_upload(io.BytesIO(team.encode()), filename="toy.ipynb", max_bytes=1 << 20)
        event.store.submit("spring", team_id, challenge="toy", upload=upload)
        sub_id = finish(event.store, done.model_copy(update={"notebooks": [nb]}))
        (event.store.state_dir / CODE_FOLDER).mkdir(exist_ok=True)
        (event.store.state_dir / CODE_FOLDER / f"{sub_id}.json").write_text(json.dumps({"toy.ipynb": f"x = {team!r}"}))
    alpha, _ = join(event, "alpha")
    assert alpha.get("/coach/similar").status_code == 403  # another team's answer is the coach's to see
    coach, _ = join(event, "coach")
    page = coach.get("/coach/similar")
    assert page.status_code == 200, page.text
    assert "a reason to look: answers" in page.text and "Written answers (flagged)" in page.text
    assert evil not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert page.text.count("<mark>") == 2 and "<mark>Our network stops" in page.text
