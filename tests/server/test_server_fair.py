"""Fair and exact (issue 25): the daily cap per UTC day of each submission's own arrival, also for
uploads committed together across midnight; the queue fair across teams, in the claims of one
worker, of two servers on one database and in the queue places the pages show (the store's and,
through the app, the team's and the coach's pages). Every test runs on SQLite and on PostgreSQL
(``database_url``, tests/support/pg.py). The clock is the store's (``grader.server.store.submissions.utcnow``),
replaced by one that each thread sets."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from grader.core.errors import ConfigError
from grader.core.settings import Settings
from grader.server.store.rows import SubmissionRow, UploadRow
from grader.server.store.store import Store
from grader.server.store.submissions import CapReached
from tests.server.test_server_app import Event, event, join  # noqa: F401  # the app's event fixture

MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)  # 00:00 UTC of "day 2"
BEFORE = MIDNIGHT - timedelta(milliseconds=500)  # 23:59:59.5 of day 1
AFTER = MIDNIGHT + timedelta(milliseconds=500)  # 00:00:00.5 of day 2


class Clock:
    """The store's clock: ``at`` for every thread, or what a thread set for itself."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._mine = threading.local()

    def set_mine(self, at: datetime) -> None:
        self._mine.at = at

    def __call__(self) -> datetime:
        return getattr(self._mine, "at", self.at)


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[Store]:
    s = Store(tmp_path / "state", database_url)
    yield s
    s.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(MIDNIGHT - timedelta(hours=1))
    monkeypatch.setattr("grader.server.store.submissions.utcnow", c)
    return c


def _upload(store: Store, tag: str = "") -> UploadRow:
    data = b'{"cells": [], "metadata": {"tag": "%s"}, "nbformat": 4, "nbformat_minor": 5}' % tag.encode()
    return store.store_upload(io.BytesIO(data), filename="toy.ipynb", max_bytes=8 << 20)


def _in_one_batch(store: Store, clock: Clock, arrivals: list[tuple[int, datetime]]) -> list[object]:
    """Submit ``(team id, arrival time)`` each from its own thread, all committed in one batch of
    the group commit: a first submission (the event's last team, an hour before midnight) holds
    the lead until every one of ``arrivals`` waits behind it. What each submit returned or raised."""
    run = store._submits._run
    batches: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def held(session: Any, batch: Any) -> Any:
        batches.append(len(batch))
        if not entered.is_set():
            entered.set()
            release.wait(30)
        return run(session, batch)

    store._submits._run = held
    up = _upload(store)
    leader = threading.Thread(target=store.submit, args=("hack", store.teams("hack")[-1].id),
                              kwargs={"challenge": "toy", "upload": up})
    leader.start()
    assert entered.wait(30)
    outcomes: list[object] = [None] * len(arrivals)

    def send(i: int) -> None:
        team_id, at = arrivals[i]
        clock.set_mine(at)
        try:
            outcomes[i] = store.submit("hack", team_id, challenge="toy", upload=up)
        except Exception as err:  # the outcome under test
            outcomes[i] = err

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(arrivals))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(store._submits._waiting) < len(arrivals) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in [leader, *threads]:
        t.join(30)
    store._submits._run = run
    assert batches == [1, len(arrivals)]  # the leader's batch, then all of them together
    return outcomes


def _per_day(store: Store, team_id: int) -> dict[int, int]:
    """Team ``team_id``'s submissions per day of March 2026 (by their stored arrival)."""
    days: dict[int, int] = {}
    for sub in store.submissions("hack", team_id=team_id):
        days[sub.created.day] = days.get(sub.created.day, 0) + 1
    return days


def test_uploads_arriving_together_across_midnight_count_on_their_own_days(store: Store, clock: Clock) -> None:
    """One batch holds red's ten uploads (five before midnight, where red has used its cap of 5
    already, five after) and blue's fourteen (seven on each side, none used before): each is
    counted on the UTC day of its arrival."""
    store.create_event("hack", challenges=["toy"], teams=["red", "blue", "green"], cap_per_day=5)
    red, blue, _ = store.teams("hack")
    clock.at = MIDNIGHT - timedelta(minutes=10)
    for i in range(5):
        store.submit("hack", red.id, challenge="toy", upload=_upload(store, f"early{i}"))
    arrivals = [(red.id, BEFORE if i % 2 else AFTER) for i in range(10)]
    arrivals += [(blue.id, AFTER if i % 2 else BEFORE) for i in range(14)]
    outcomes = _in_one_batch(store, clock, arrivals)

    accepted = [(team, at) for (team, at), o in zip(arrivals, outcomes, strict=True) if isinstance(o, SubmissionRow)]
    refused = [(team, at, o) for (team, at), o in zip(arrivals, outcomes, strict=True) if isinstance(o, CapReached)]
    assert len(accepted) + len(refused) == 24, [o for o in outcomes if not isinstance(o, SubmissionRow | CapReached)]
    assert sorted((t == red.id, at == AFTER) for t, at in accepted) == sorted(
        [(True, True)] * 5 + [(False, False)] * 5 + [(False, True)] * 5)
    assert {(t, at) for t, at, _ in refused} == {(red.id, BEFORE), (blue.id, BEFORE), (blue.id, AFTER)}
    told = {err.message.split("; ")[1] for t, at, err in refused if at == BEFORE}
    assert told == {"the next one can be sent from 2026-03-02 00:00 UTC"}
    assert _per_day(store, red.id) == {1: 10 - 5, 2: 5} and _per_day(store, blue.id) == {1: 5, 2: 5}
    for at in (BEFORE, AFTER):
        clock.at = at
        assert store.submissions_left_today("hack", red.id) == 0 and store.submissions_left_today("hack", blue.id) == 0
    clock.at = MIDNIGHT + timedelta(days=1)
    assert store.submissions_left_today("hack", red.id) == 5


def test_an_upload_from_before_midnight_committed_after_one_from_after_counts_on_its_own_day(
        store: Store, clock: Clock) -> None:
    """Commit order is not arrival order: an upload that arrived at 23:59:59.5 and is committed
    after one of 00:00:00.5 still has its own day's room, and no more."""
    store.create_event("hack", challenges=["toy"], teams=["red"], cap_per_day=1)
    red = store.teams("hack")[0]
    clock.at = AFTER
    assert store.submit("hack", red.id, challenge="toy", upload=_upload(store, "a")).created == AFTER
    clock.at = BEFORE
    assert store.submissions_left_today("hack", red.id) == 1
    assert store.submit("hack", red.id, challenge="toy", upload=_upload(store, "b")).created == BEFORE
    for at in (BEFORE, AFTER):
        clock.at = at
        with pytest.raises(CapReached):
            store.submit("hack", red.id, challenge="toy", upload=_upload(store, "c"))
        assert store.submissions_left_today("hack", red.id) == 0
    assert _per_day(store, red.id) == {1: 1, 2: 1}


# ----- the queue


def _queue(store: Store, sends: str) -> dict[int, str]:
    """Submit one upload per letter of ``sends`` (r: red, b: blue, g: green), in that order; each
    new submission's id and its team's letter."""
    teams = {t.name[0]: t for t in store.teams("hack")}
    return {store.submit("hack", teams[c].id, challenge="toy", upload=_upload(store, f"{c}{i}")).id: c
            for i, c in enumerate(sends)}


def _done(store: Store, job: SubmissionRow, worker: str) -> None:
    assert store.finish(job.id, worker, result_json="{}", scorecard_html="", verdict="pass", score=1.0, max_score=1.0)


def test_one_worker_takes_a_teams_second_submission_after_the_other_teams_first(store: Store) -> None:
    """Red sends five, then blue one and green two: one worker, finishing each job before it
    claims the next, grades them round robin over the teams; the queue places the pages show
    before the first claim are that order, and stay true as the queue drains."""
    store.create_event("hack", challenges=["toy"], teams=["red", "blue", "green"])
    team_of = _queue(store, "rrrrrbgg")
    places = store.queue_positions(list(team_of))
    assert sorted(places.values()) == list(range(1, 9))
    expected = sorted(team_of, key=lambda sid: places[sid])
    assert "".join(team_of[sid] for sid in expected) == "rbgrgrrr"
    claimed: list[int] = []
    while (job := store.claim("the-worker", lease_s=60)) is not None:
        left = expected[len(claimed):]
        assert job.id == left[0]
        assert store.queue_positions(left) == {sid: place for place, sid in enumerate(left[1:], start=1)}
        claimed.append(job.id)
        _done(store, job, "the-worker")
    assert claimed == expected


def test_a_team_sending_while_its_last_one_runs_waits_behind_the_others(store: Store) -> None:
    """Arrivals during a run: red's second, sent while its first runs, goes behind blue's first
    sent later; once red's first has finished before red's next arrives, red is first come
    again; a cancelled submission holds no turn."""
    store.create_event("hack", challenges=["toy"], teams=["red", "blue", "green"])
    _queue(store, "r")
    first = store.claim("w", lease_s=60)
    assert first is not None
    later = _queue(store, "rb")
    assert [later[sid] for sid in sorted(later, key=store.queue_positions(list(later)).__getitem__)] == ["b", "r"]
    _done(store, first, "w")
    job = store.claim("w", lease_s=60)
    assert job is not None and later[job.id] == "b"  # red's first ran while red's second waited
    _done(store, job, "w")
    job = store.claim("w", lease_s=60)
    assert job is not None and later[job.id] == "r"
    _done(store, job, "w")
    g1, r3, g2 = _queue(store, "grg")  # red's earlier ones all finished before these arrived
    assert store.queue_positions([g1, r3, g2]) == {g1: 1, r3: 2, g2: 3}
    assert store.cancel(g1)  # green's first, cancelled before it ran: it holds no turn
    assert store.queue_positions([g1, r3, g2]) == {r3: 1, g2: 2}


def _claim_at_once(stores: list[Store]) -> list[SubmissionRow | None]:
    """Each store claims (as worker ``server<i>``) in its own thread, released together."""
    start = threading.Barrier(len(stores))
    jobs: list[SubmissionRow | None] = [None] * len(stores)

    def claim(i: int) -> None:
        start.wait()
        jobs[i] = stores[i].claim(f"server{i}", lease_s=60)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return jobs


def test_two_servers_on_one_database_claim_at_once_in_the_fair_order(tmp_path: Path, database_url: str | None) -> None:
    """Two stores on one database (two servers; on PostgreSQL the candidate is locked ``FOR
    UPDATE SKIP LOCKED``) claiming at the same moment take the first two of the fair order:
    the second skips the first's candidate and takes the next, never a team's second ahead of
    another team's first."""
    one, two = Store(tmp_path / "a", database_url), Store(tmp_path / "a", database_url)
    try:
        one.create_event("hack", challenges=["toy"], teams=["red", "blue", "green"])
        team_of = _queue(one, "rrrrbbg")
        rounds: list[str] = []
        for _ in range(3):
            jobs = _claim_at_once([one, two])
            rounds.append("".join(sorted(team_of[j.id] for j in jobs if j is not None)))
            for i, job in enumerate(jobs):
                assert job is not None
                _done(one, job, f"server{i}")
        assert rounds == ["br", "gr", "br"]
        assert [team_of[sid] for sid in two.queue_positions(list(team_of))] == ["r"]  # red's fourth
    finally:
        one.close()
        two.close()


def test_the_coachs_page_lists_the_queue_in_the_order_it_is_graded(store: Store) -> None:
    store.create_event("hack", challenges=["toy"], teams=["red", "blue", "green"])
    team_of = _queue(store, "rrrbg")
    job = store.claim("w", lease_s=60)
    assert job is not None
    _, active, _ = store.overview("hack", limit=None)
    assert [(team_of[s.id], s.state) for s in active] == [
        ("r", "running"), ("b", "queued"), ("g", "queued"), ("r", "queued"), ("r", "queued")]
    places = store.queue_positions([s.id for s in active])
    assert [places.get(s.id) for s in active] == [None, 1, 2, 3, 4]


def test_one_worker_of_the_pool_grades_the_teams_in_turn(make_toy: Callable[..., Settings], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         database_url: str | None) -> None:
    """The server's worker pool with one worker (its grading stubbed: each job fails at once)
    takes red's five and blue's one in the order red, blue, red, red, red, red."""
    from grader.pipeline.grade import GradeOptions
    from grader.server.work.child import GradingProcess
    from grader.server.work.worker import WorkerPool

    settings = make_toy()
    store = Store(tmp_path / "st", database_url)
    store.create_event("hack", challenges=["toy"], teams=["red", "blue"])
    order: list[str] = []

    def grade(submission: object) -> object:
        order.append(str(getattr(submission, "name", "")))
        raise ConfigError("stubbed")

    monkeypatch.setattr(GradingProcess, "grade", lambda self, submission, settings, options, **_: grade(submission))
    ids = list(_queue(store, "rrrrrb"))
    pool = WorkerPool(store, settings, GradeOptions(), workers=1, lease_s=5, poll_s=0.05)
    pool.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(store.submission(i).state != "failed" for i in ids):  # type: ignore[union-attr]
            time.sleep(0.05)
    finally:
        pool.stop()
        store.close()
    assert order == ["red", "blue", "red", "red", "red", "red"]


def test_the_team_pages_and_the_coachs_page_show_the_fair_places(event: Event) -> None:  # noqa: F811
    """Through the app: alpha queues two, then beta one; beta's is second in the queue, alpha's
    second third, on the teams' pages, their status polls and the coach's page (in that order)."""
    store = event.store
    alpha, beta = store.teams("spring")
    first, second = (store.submit("spring", alpha.id, challenge="toy", upload=_upload(store, f"a{i}")).id
                     for i in range(2))
    other = store.submit("spring", beta.id, challenge="toy", upload=_upload(store, "b")).id
    team_a, _ = join(event, "alpha")
    team_b, _ = join(event, "beta")
    assert [team_a.get(f"/submissions/{sid}/status").json()["queue_position"] for sid in (first, second)] == [1, 3]
    assert team_b.get(f"/submissions/{other}/status").json()["queue_position"] == 2
    assert "place 1 in the queue" in team_a.get("/").text and "place 3 in the queue" in team_a.get("/").text
    assert "place 2 in the queue" in team_b.get("/").text
    coach, _ = join(event, "coach")
    page = coach.get("/coach").text
    places = [page.index(f"place {n} in the queue") for n in (1, 2, 3)]
    assert places == sorted(places)  # the queue listed in the order it is graded
