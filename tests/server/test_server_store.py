"""The event server's store: events, tokens, caps, uploads, the job queue; the worker pool with a
stubbed pipeline; the ``grader event`` command. No kernel starts here. Every test of the store
runs twice (``database_url``, see tests/support/pg.py): on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

import errno
import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.cli.event import parse_cap, parse_ends
from grader.cli.teamsfile import read_teams
from grader.core.errors import ConfigError, UsageError
from grader.core.settings import Settings
from grader.server.store.rows import UploadRow
from grader.server.store.state import resolve_state_dir
from grader.server.store.store import Store
from grader.server.store.submissions import CapReached
from grader.server.store.uploads import UploadRefused
from grader.server.web.routes.history import team_numbers

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[Store]:
    s = Store(tmp_path / "state", database_url)
    yield s
    s.close()


def _stored_text(store: Store) -> bytes:
    """Everything the database holds, as bytes: the SQLite file, or every row of every table."""
    from sqlalchemy import MetaData, select

    if store.database_url.startswith("sqlite"):
        return (store.state_dir / "grader.db").read_bytes()
    tables = MetaData()
    tables.reflect(store._engine)
    with store._engine.connect() as conn:
        rows = [repr(tuple(row)) for table in tables.sorted_tables for row in conn.execute(select(table))]
    assert any("hack" in row for row in rows)  # the reflection saw the rows
    return "\n".join(rows).encode()


def _event(store: Store, *, cap: int | None = None, teams: tuple[str, ...] = ("red", "blue"),
           name: str = "hack") -> dict[str, str]:
    return store.create_event(name, challenges=["toy", "toy2"], teams=teams, cap_per_day=cap).team_tokens


def _upload(store: Store, data: bytes = NOTEBOOK, name: str = "toy.ipynb") -> UploadRow:
    return store.store_upload(io.BytesIO(data), filename=name, max_bytes=8 << 20)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_event_tokens_verify_and_wrong_ones_do_not(store: Store) -> None:
    created = store.create_event("hack", challenges=["toy"], teams=["red", "blue"], title="Hack day")
    other = store.create_event("other", challenges=["toy"], teams=["red"])
    red = store.team_for_token("hack", created.team_tokens["red"])
    assert red is not None and (red.event, red.name) == ("hack", "red")
    assert store.team_for_token("hack", created.team_tokens["red"] + "x") is None
    assert store.team_for_token("hack", other.team_tokens["red"]) is None  # another event's token
    assert store.coach_token_ok("hack", created.coach_token)
    assert not store.coach_token_ok("hack", created.team_tokens["red"])
    assert not store.coach_token_ok("nope", created.coach_token)
    assert [t.name for t in store.teams("hack")] == ["red", "blue"]
    assert store.team("other", red.id) is None and store.team("hack", red.id) == red
    assert store.event("hack").title == "Hack day" and store.event("hack").challenges == ("toy",)
    assert store.session_secret("hack") != store.session_secret("other")
    db = _stored_text(store)
    assert created.team_tokens["red"].encode() not in db and created.coach_token.encode() not in db
    with pytest.raises(UsageError, match="event hack exists already"):
        store.create_event("hack", challenges=["toy"], teams=["x"])
    with pytest.raises(UsageError, match="no event 'nope'; known: hack, other"):
        store.event("nope")
    with pytest.raises(UsageError, match="team names repeated: a"):
        store.create_event("dup", challenges=["toy"], teams=["a", "b", "a"])


def test_a_reopened_store_keeps_everything(tmp_path: Path, database_url: str | None) -> None:
    first = Store(tmp_path / "s", database_url)
    tokens = first.create_event("hack", challenges=["toy"], teams=["red"]).team_tokens
    first.close()
    again = Store(tmp_path / "s", database_url)  # migrations run again: a no-op at head
    assert again.team_for_token("hack", tokens["red"]) is not None
    again.close()


def test_cap_refuses_the_sixth_submission_of_the_day(store: Store) -> None:
    _event(store, cap=5)
    red = store.teams("hack")[0]
    up = _upload(store)
    subs = [store.submit("hack", red.id, challenge="toy", upload=up) for _ in range(5)]
    assert store.submissions_left_today("hack", red.id) == 0
    with pytest.raises(CapReached) as refused:
        store.submit("hack", red.id, challenge="toy", upload=up)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert refused.value.message == (f"red has used its 5 submissions for today (UTC); the next one can be sent "
                                     f"from {tomorrow} 00:00 UTC")
    assert isinstance(refused.value, UsageError)
    blue = store.teams("hack")[1]
    assert store.submissions_left_today("hack", blue.id) == 5  # per team
    assert store.cancel(subs[0].id)  # a cancelled submission gives its place back
    assert store.submissions_left_today("hack", red.id) == 1
    store.regrade(subs[1].id)  # the coach's re-grade does not count
    assert store.submissions_left_today("hack", red.id) == 1
    assert len(store.submissions("hack", team_id=red.id)) == 6


def test_submissions_arriving_together_share_one_commit_and_each_cap_holds(store: Store) -> None:
    """Group commit (grader/server/store/group.py): 40 submissions at once, the first batch held until
    the other 39 wait: two commits in all; each team's cap of 5 holds inside the batch (the
    refused ones do not stop the others), every id distinct, each accepted one stored once."""
    from sqlalchemy import event

    _event(store, cap=5)
    red, blue = store.teams("hack")
    up = _upload(store)
    commits: list[int] = []
    event.listen(store._engine, "commit", lambda conn: commits.append(1))
    run = store._submits._run
    batches: list[int] = []

    def held(session: object, batch: list[object]) -> object:
        batches.append(len(batch))
        deadline = time.monotonic() + 20
        while len(batches) == 1 and len(store._submits._waiting) < 39 and time.monotonic() < deadline:
            time.sleep(0.01)
        return run(session, batch)  # type: ignore[arg-type]

    store._submits._run = held  # type: ignore[method-assign]
    teams = [red.id if i % 2 else blue.id for i in range(40)]
    out = _at_once(40, lambda i: store.submit("hack", teams[i], challenge="toy", upload=up))
    assert (sorted(batches), len(commits)) == ([1, 39], 2)
    accepted = [o for o in out if not isinstance(o, Exception)]
    refused = [o for o in out if isinstance(o, Exception)]
    assert len(accepted) == 10 and len({o.id for o in accepted}) == 10  # type: ignore[attr-defined]
    assert len(refused) == 30 and all(isinstance(o, CapReached) for o in refused), refused[:3]
    assert {str(o).split(" has used")[0] for o in refused} == {"red", "blue"}
    for team in (red, blue):
        mine = store.submissions("hack", team_id=team.id)
        assert len(mine) == 5 and store.submissions_left_today("hack", team.id) == 0
    assert sorted(o.id for o in accepted) == sorted(s.id for s in store.submissions("hack"))  # type: ignore[attr-defined]
    for team in (red, blue):  # numbered in the batch as the team's history numbers them
        numbers = {o.id: o.number for o in accepted if o.team_id == team.id}  # type: ignore[attr-defined]
        assert numbers == team_numbers(store.submissions("hack", team_id=team.id))
        assert sorted(numbers.values()) == [1, 2, 3, 4, 5]


def test_a_new_submission_carries_the_teams_own_number(store: Store) -> None:
    """The number the team's flash shows (Submission N is queued) is its history's: a coach's
    re-grade and a practice check have none and take none; another team counts on its own."""
    _event(store)
    red, blue = store.teams("hack")
    up = _upload(store)
    first = store.submit("hack", red.id, challenge="toy", upload=up)
    assert first.number == 1 and store.submit("hack", blue.id, challenge="toy", upload=up).number == 1
    assert store.regrade(first.id).number is None
    assert store.submit("hack", red.id, challenge="toy", upload=up, practice=True).number is None
    second = store.submit("hack", red.id, challenge="toy2", upload=up)
    assert second.number == 2
    assert team_numbers(store.submissions("hack", team_id=red.id)) == {first.id: 1, second.id: 2}


def test_a_failed_batch_stores_none_of_its_submissions(store: Store) -> None:
    """An error inside the shared transaction fails every submission of that batch with it and
    stores none of them; the next submission is written as usual."""
    _event(store)
    red, blue = store.teams("hack")
    up = _upload(store)
    run = store._submits._run

    def broken(session: object, batch: list[object]) -> object:
        run(session, batch)  # type: ignore[arg-type]  # written, then the transaction fails
        raise RuntimeError("the disk went away")

    store._submits._run = broken  # type: ignore[method-assign]
    out = _at_once(6, lambda i: store.submit("hack", (red, blue)[i % 2].id, challenge="toy", upload=up))
    assert [str(o) for o in out] == ["the disk went away"] * 6
    assert store.submissions("hack") == []
    store._submits._run = run  # type: ignore[method-assign]
    row = store.submit("hack", red.id, challenge="toy", upload=up)
    assert [s.id for s in store.submissions("hack")] == [row.id]


def test_submit_checks_challenge_and_end(store: Store) -> None:
    _event(store)
    red = store.teams("hack")[0]
    with pytest.raises(UsageError, match="'gear' is not a challenge of hack; its challenges: toy, toy2"):
        store.submit("hack", red.id, challenge="gear", upload=_upload(store))
    store.create_event("past", challenges=["toy"], teams=["a"], ends_at=datetime.now(UTC) - timedelta(hours=1))
    a = store.teams("past")[0]
    with pytest.raises(UsageError, match="the event ended at .* UTC: submissions are closed"):
        store.submit("past", a.id, challenge="toy", upload=_upload(store))
    assert store.submissions_left_today("past", a.id) is None


def test_queue_order_position_and_newest_first(store: Store) -> None:
    _event(store)
    red, blue = store.teams("hack")
    one = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    two = store.submit("hack", blue.id, challenge="toy2", upload=_upload(store, b"other"))
    assert [store.queue_position(one.id), store.queue_position(two.id)] == [1, 2]
    assert [s.id for s in store.submissions("hack")] == [two.id, one.id]
    assert [s.id for s in store.submissions("hack", team_id=blue.id)] == [two.id]
    claimed = store.claim("w", lease_s=30)
    assert claimed is not None and claimed.id == one.id and claimed.state == "running" and claimed.attempts == 1
    assert store.queue_position(one.id) is None and store.queue_position(two.id) == 1
    three = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    # the pages' one query for many rows: the same places, none for the running one
    assert store.queue_positions([one.id, two.id, three.id]) == {two.id: 1, three.id: 2}
    assert store.queue_positions([three.id]) == {three.id: 2} and store.queue_positions([]) == {}


def test_claim_by_many_threads_never_gives_one_job_twice(tmp_path: Path, database_url: str | None) -> None:
    # two engines: as two processes would
    stores = [Store(tmp_path / "s", database_url), Store(tmp_path / "s", database_url)]
    _event(stores[0])
    red = stores[0].teams("hack")[0]
    up = _upload(stores[0])
    ids = {stores[0].submit("hack", red.id, challenge="toy", upload=up).id for _ in range(30)}
    got: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def work(n: int) -> None:
        start.wait()
        while (job := stores[n % 2].claim(f"w{n}", lease_s=60)) is not None:
            with lock:
                got.append(job.id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got) == sorted(ids)  # each exactly once
    for s in stores:
        s.close()


def test_finish_twice_stores_one_result(store: Store) -> None:
    _event(store)
    red = store.teams("hack")[0]
    sub = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    job = store.claim("w1", lease_s=30)
    assert job is not None
    assert store.progress(job.id, "w1", "cell 2 of 5")
    assert store.submission(job.id).progress == "cell 2 of 5"  # type: ignore[union-attr]
    assert not store.progress(job.id, "w2", "not mine")
    kwargs = {"result_json": '{"a": 1}', "scorecard_html": "<p>card</p>", "verdict": "pass", "score": 3.0,
              "max_score": 4.0}
    assert not store.finish(job.id, "w2", **kwargs)  # type: ignore[arg-type]
    assert store.finish(job.id, "w1", **kwargs)  # type: ignore[arg-type]
    assert not store.finish(job.id, "w1", **kwargs)  # type: ignore[arg-type]
    done = store.submission(sub.id)
    assert done is not None and (done.state, done.verdict, done.score, done.max_score) == ("done", "pass", 3.0, 4.0)
    result = store.result(sub.id)
    assert result is not None and result.scorecard_html == "<p>card</p>"
    assert [(t.name, s.id, r.result_json) for t, s, r in store.results("hack")] == [  # type: ignore[union-attr]
        ("red", sub.id, '{"a": 1}')]
    assert [(s.id, r) for _, s, r in store.results("hack", known={sub.id})] == [(sub.id, None)]  # not read again


def test_counts_tell_when_a_result_is_added(store: Store) -> None:
    """:meth:`Store.counts`, which the boards' cache trusts: submissions, graded ones, newest graded id."""
    _event(store)
    red = store.teams("hack")[0]
    assert store.counts("hack") == (0, 0, 0)
    first = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    second = store.submit("hack", red.id, challenge="toy", upload=_upload(store, b"other", "b.ipynb"))
    assert store.counts("hack") == (2, 0, 0)
    kwargs = {"result_json": "{}", "scorecard_html": "", "verdict": "fail", "score": 0.0, "max_score": 1.0}
    for expected in ((2, 1, first.id), (2, 2, second.id)):
        job = store.claim("w1", lease_s=30)
        assert job is not None and store.finish(job.id, "w1", **kwargs)  # type: ignore[arg-type]
        assert store.counts("hack") == expected
    assert [s.id for s in store.submissions("hack", limit=1)] == [second.id]
    assert store.submissions("hack", states=("queued", "running")) == []


def test_requeue_stale_and_give_up_after_three_attempts(store: Store) -> None:
    _event(store)
    red = store.teams("hack")[0]
    sub = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    for attempt in (1, 2, 3):
        job = store.claim(f"w{attempt}", lease_s=0.5)
        assert job is not None and job.attempts == attempt
        assert store.requeue_stale() == 0  # its lease runs
        time.sleep(0.6)
        assert store.requeue_stale() == 1
        if attempt < 3:
            assert store.submission(sub.id).state == "queued"  # type: ignore[union-attr]
    gone = store.submission(sub.id)
    assert gone is not None and gone.state == "failed"
    assert gone.error == ("gave up after 3 attempts: the grading worker stopped (killed, out of memory or lost "
                          "its lease) during each run")
    assert store.claim("w4", lease_s=30) is None


def test_requeue_all_running_at_start_and_release(store: Store) -> None:
    _event(store)
    red = store.teams("hack")[0]
    one = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    two = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    store.claim("old", lease_s=600)
    assert store.requeue_stale() == 0  # its lease runs
    assert store.requeue_stale(all_running=True) == 1
    assert store.submission(one.id).state == "queued"  # type: ignore[union-attr]
    job = store.claim("new", lease_s=600)
    assert job is not None and job.id == one.id and job.attempts == 2
    assert store.release(one.id, "new") and store.submission(one.id).attempts == 1  # type: ignore[union-attr]
    assert store.submission(two.id).state == "queued"  # type: ignore[union-attr]


def test_cancel_queued_and_running(store: Store) -> None:
    _event(store)
    red = store.teams("hack")[0]
    running = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    queued = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    store.claim("w", lease_s=60)
    assert store.cancel(queued.id) and store.submission(queued.id).state == "cancelled"  # type: ignore[union-attr]
    assert store.cancel(running.id)
    assert store.submission(running.id).cancel_requested  # type: ignore[union-attr]
    assert not store.progress(running.id, "w", "cell 3")  # the worker is told to stop
    store.fail(running.id, "w", "cancelled")
    row = store.submission(running.id)
    assert row is not None and (row.state, row.error) == ("cancelled", "cancelled by the coach")
    assert not store.cancel(running.id) and not store.cancel(9999)
    again = store.regrade(running.id)
    assert (again.state, again.regrade_of, again.upload_sha256) == ("queued", running.id, running.upload_sha256)


def test_upload_is_content_addressed_and_stored_once(store: Store) -> None:
    first = _upload(store, b"x" * 3_000_000, "a.ipynb")  # over one chunk
    second = _upload(store, b"x" * 3_000_000, "b.ipynb")
    assert first.sha256 == second.sha256 and (first.size, first.filename, second.filename) == (3_000_000, "a.ipynb",
                                                                                                "b.ipynb")
    path = store.upload_path(first.sha256)
    assert path == store.state_dir / "uploads" / first.sha256
    assert path.read_bytes() == b"x" * 3_000_000
    assert _files(store.state_dir / "uploads") == [first.sha256]
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.upload_path("../../grader.db")


def test_an_upload_stored_by_an_earlier_version_is_read_where_it_is(store: Store) -> None:
    """State folders of earlier versions keep uploads under ``uploads/<sha[:2]>/<sha>``."""
    import hashlib

    data = b"an upload of last week"
    sha = hashlib.sha256(data).hexdigest()
    nested = store.state_dir / "uploads" / sha[:2] / sha
    nested.parent.mkdir()
    nested.write_bytes(data)
    assert store.upload_path(sha) == nested
    again = _upload(store, data, "again.ipynb")  # the same bytes: kept once, where they are
    assert again.sha256 == sha and _files(store.state_dir / "uploads") == [f"{sha[:2]}/{sha}"]


def test_an_upload_recorded_with_its_submission_is_one_commit(store: Store) -> None:
    """``record=False`` writes the file only; :meth:`Store.submit` commits its row with the
    submission. A made-up upload is refused."""
    import dataclasses

    from sqlalchemy import func, select

    from grader.server.store import models as m

    store.create_event("solo", challenges=["toy"], teams=["red"])
    team = store.teams("solo")[0]
    upload = store.store_upload(io.BytesIO(b"{}" * 10), filename="toy.ipynb", max_bytes=1000, record=False)
    with store._read() as s:
        assert s.scalar(select(func.count()).select_from(m.Upload)) == 0
    sub = store.submit("solo", team.id, challenge="toy", upload=upload)
    with store._read() as s:
        assert s.scalar(select(func.count()).select_from(m.Upload)) == 1
    assert (sub.state, sub.upload_sha256) == ("queued", upload.sha256)
    for sha in ("0" * 64, "../../grader.db"):
        with pytest.raises(UsageError, match="is not stored"):
            store.submit("solo", team.id, challenge="toy", upload=dataclasses.replace(upload, sha256=sha))


def test_refused_uploads_leave_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UploadRefused, match="the upload is larger than the limit of 1 MiB"):
        store.store_upload(io.BytesIO(b"y" * (2 << 20)), filename="big.zip", max_bytes=1 << 20)
    with pytest.raises(UploadRefused, match="the upload is empty"):
        store.store_upload(io.BytesIO(b""), filename="e.ipynb", max_bytes=1 << 20)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("grader.server.store.uploads.os.fsync", full)
    with pytest.raises(UploadRefused) as refused:
        _upload(store, b"z" * 1000)
    assert refused.value.message == "the server's disk is full: the upload was not stored"
    assert _files(store.state_dir / "uploads") == []
    _event(store)
    red = store.teams("hack")[0]
    with pytest.raises(UsageError, match="is not stored"):  # no row was written either
        store.submit("hack", red.id, challenge="toy",
                     upload=UploadRow(sha256="a" * 64, size=1000, filename="x.ipynb"))


def test_state_dir_resolution(tmp_path: Path) -> None:
    assert resolve_state_dir(tmp_path / "s", environ={"GRADER_STATE_DIR": "/x"}) == tmp_path / "s"
    assert resolve_state_dir(environ={"GRADER_STATE_DIR": str(tmp_path / "e")}) == tmp_path / "e"
    assert resolve_state_dir(environ={"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "grader"
    assert resolve_state_dir(environ={}) == Path.home() / ".local" / "share" / "grader"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="the state folder cannot be used"):
        Store(tmp_path / "file" / "state")


def test_event_options_parse(tmp_path: Path) -> None:
    assert parse_cap("5/day") == 5 and parse_cap("3") == 3 and parse_cap(None) is None
    with pytest.raises(UsageError, match="--cap 0/day: give submissions per day as N/day"):
        parse_cap("0/day")
    assert parse_ends("2026-12-24T18:00Z") == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    assert parse_ends("2026-12-24T19:00+01:00") == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    with pytest.raises(UsageError, match="--ends tomorrow: not an ISO 8601 time"):
        parse_ends("tomorrow")
    teams = tmp_path / "teams.csv"
    teams.write_text("\ufeffRoom,Team\nann,Red Team\nbob,\ncy,Blue\n", encoding="utf-8")
    assert read_teams(teams) == ["Red Team", "Blue"]  # blank team cells skipped, other columns ignored
    teams.write_text("Name,Team\nann,Red Team\nbob,\n", encoding="utf-8")
    with pytest.raises(UsageError, match="line 3: member 'bob' has no team"):
        read_teams(teams)
    teams.write_text("name\nRed\n")
    with pytest.raises(UsageError, match="no `team` column"):
        read_teams(teams)
    teams.write_text("team\nRed\nRed\n")
    with pytest.raises(UsageError, match="team names repeated: Red"):
        read_teams(teams)
    teams.write_text("team\n" + "x" * 65 + "\n")
    with pytest.raises(UsageError, match="team names over 64 characters"):
        read_teams(teams)


def test_event_create_command_prints_links_that_join(make_toy: Callable[..., Settings], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import main

    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    (tmp_path / "teams.csv").write_text("team\nRed\nBlue\n")
    state = tmp_path / "st"
    argv = ["event", "create", "hack", "--challenge", "toy", "--teams", str(tmp_path / "teams.csv"), "--cap",
            "5/day", "--state", str(state), "--port", "8123"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"event hack: toy; 2 teams; 5 submissions a day each; state in {state}"
    assert out[1] == "join links (secret: each is shown only this once, the server keeps only hashes):"
    red, coach = out[2].split(": ", 1), out[4].split(": ", 1)
    assert red[0] == "  Red" and red[1].startswith("http://127.0.0.1:8123/join/")
    assert coach[0] == "  coach" and coach[1].startswith("http://127.0.0.1:8123/coach/join/")
    opened = Store(state)
    assert opened.team_for_token("hack", red[1].rsplit("/", 1)[1]) is not None
    assert opened.coach_token_ok("hack", coach[1].rsplit("/", 1)[1])
    opened.close()
    assert main(argv) == 2
    assert "grader: error: event hack exists already" in capsys.readouterr().err
    assert main([*argv[:4], "gear", *argv[5:]]) == 2
    assert "--challenge gear: no such challenge; known: toy" in capsys.readouterr().err


def test_worker_fails_one_job_on_a_grader_bug_and_goes_on(make_toy: Callable[..., Settings], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          database_url: str | None) -> None:
    from grader.pipeline.grade import GradeOptions
    from grader.server.work.child import GradingProcess
    from grader.server.work.worker import WorkerPool

    settings = make_toy()
    store = Store(tmp_path / "st", database_url)
    _event(store)
    red = store.teams("hack")[0]
    calls: list[str] = []

    def grade(submission: object, settings: Settings, options: GradeOptions) -> object:
        calls.append(str(options.challenge))
        raise RuntimeError("boom") if len(calls) == 1 else ConfigError("the dataset folder is gone")

    # the worker's side of its child (tests/server/test_server_child.py has the child's): what the child raises
    monkeypatch.setattr(GradingProcess, "grade", lambda self, submission, settings, options, **_: grade(
        submission, settings, options))
    ids = [store.submit("hack", red.id, challenge=c, upload=_upload(store)).id for c in ("toy", "toy2")]
    assert store.claim("a-worker-that-dies", lease_s=0.2) is not None  # the pool's sweep takes it back
    pool = WorkerPool(store, settings, GradeOptions(), workers=1, lease_s=1, poll_s=0.05)
    pool.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(store.submission(i).state != "failed" for i in ids):  # type: ignore[union-attr]
        time.sleep(0.05)
    pool.stop()
    rows = [store.submission(i) for i in ids]
    assert calls == ["toy2", "toy"]  # the first job's worker died: it ran after its lease expired
    assert [r.attempts for r in rows if r] == [2, 1]
    assert [r.error for r in rows if r] == [
        "the dataset folder is gone", "internal error of the grader (RuntimeError: boom); the server's log has its "
        "traceback"]
    assert pool.running() == [] and list((store.state_dir / "work").iterdir()) == []
    store.close()


def test_workers_hold_back_while_submissions_keep_arriving(make_toy: Callable[..., Settings], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads first (grader/server/work/worker.py SETTLE_S): an idle worker claims no job while
    submissions keep being queued less than SETTLE_S apart, and claims one at most SETTLE_MAX_S
    after it first held back however they keep coming."""
    from grader.pipeline.grade import GradeOptions
    from grader.server.work import worker
    from grader.server.work.child import GradingProcess

    settings = make_toy()
    store = Store(tmp_path / "st")
    _event(store)
    red = store.teams("hack")[0]
    started: list[float] = []

    def grade(*_: object, **__: object) -> object:
        started.append(time.monotonic())
        raise ConfigError("stubbed")

    monkeypatch.setattr(GradingProcess, "grade", grade)
    pool = worker.WorkerPool(store, settings, GradeOptions(), workers=1, lease_s=5, poll_s=0.05)
    pool.start()
    up = _upload(store)

    def arrive(for_s: float) -> tuple[float, float]:
        """Submissions queued every SETTLE_S / 2 for ``for_s`` seconds; (first, last) queued at."""
        first = last = time.monotonic()
        while last - first < for_s:
            store.submit("hack", red.id, challenge="toy", upload=up)
            pool.wake()
            last = time.monotonic()
            time.sleep(worker.SETTLE_S / 2)
        return first, last

    try:
        time.sleep(0.3)  # the worker idle, polling
        first, last = arrive(worker.SETTLE_MAX_S / 2)
        deadline = time.monotonic() + 20
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started and started[0] >= last  # none while they kept coming
        while any(r.state == "queued" for r in store.submissions("hack")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the queue drained
        time.sleep(0.2)
        started.clear()
        first, last = arrive(worker.SETTLE_MAX_S * 3)
        assert started and first < started[0] < last  # not starved by a stream that never settles
    finally:
        pool.stop()
        store.close()


def test_migration_matches_the_models_and_renders_for_postgresql(store: Store) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from grader.server.store.models import Base

    with store._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []  # a change to models.py needs a new migration
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    migrations = Path(__file__).resolve().parents[2] / "grader" / "server" / "store" / "migrations"
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", "postgresql://nobody@nowhere/grader")
    command.upgrade(config, "head", sql=True)  # offline: the DDL PostgreSQL would run
    sql = buffer.getvalue()
    assert "CREATE TABLE results" in sql and "UNIQUE (submission_id)" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql and "CREATE INDEX ix_submissions_state_id" in sql


def test_a_database_of_revision_0001_is_migrated_and_keeps_its_results(tmp_path: Path,
                                                                        database_url: str | None) -> None:
    """Alembic at start: a state folder written before ``results.team_scorecard_html`` (revision
    0002; made here by downgrading one that holds a result) opens, its result intact and the new
    column empty."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect, text

    from grader.server.store.db import MIGRATIONS

    first = Store(tmp_path, database_url)
    _event(first)
    red = first.teams("hack")[0]
    sub = first.submit("hack", red.id, challenge="toy", upload=_upload(first))
    job = first.claim("w1", lease_s=30)
    assert job is not None and first.finish(job.id, "w1", result_json="{}", scorecard_html="<p>coach</p>",
                                            verdict="pass", score=1.0, max_score=1.0,
                                            team_scorecard_html="<p>team</p>")
    first.close()
    url = database_url or f"sqlite:///{tmp_path / 'grader.db'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert "team_scorecard_html" not in {c["name"] for c in inspect(engine).get_columns("results")}
    engine.dispose()
    again = Store(tmp_path, database_url)  # upgrades to head
    head = ScriptDirectory.from_config(config).get_current_head()  # the newest revision
    stored = again.result(sub.id)
    assert stored is not None and (stored.scorecard_html, stored.team_scorecard_html) == ("<p>coach</p>", "")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()
    again.close()


def test_one_file_sent_by_many_teams_at_once_is_stored_once(store: Store) -> None:
    start = threading.Barrier(8)
    got: list[UploadRow] = []

    def send(n: int) -> None:
        start.wait()
        got.append(_upload(store, b"the starter notebook", f"t{n}.ipynb"))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 8 and len({u.sha256 for u in got}) == 1
    assert _files(store.state_dir / "uploads") == [got[0].sha256]


def test_servers_opening_one_new_database_at_once_migrate_it_once(tmp_path: Path, database_url: str | None) -> None:
    start = threading.Barrier(4)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            opened.append(Store(tmp_path / "s", database_url))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == [] and len(opened) == 4
    opened[0].create_event("hack", challenges=["toy"], teams=["red"])
    assert [e.name for e in opened[3].events()] == ["hack"]
    for s in opened:
        s.close()


def test_long_names_fit_their_columns(store: Store) -> None:
    with pytest.raises(UsageError, match="the title is 201 characters long, over the limit of 200"):
        store.create_event("hack", challenges=["toy"], teams=["red"], title="t" * 201)
    _event(store)
    red = store.teams("hack")[0]
    sub = store.submit("hack", red.id, challenge="toy", upload=_upload(store, name="n" * 300 + ".ipynb"))
    assert sub.filename == "n" * 249 + ".ipynb"


def test_postgresql_times_come_back_as_utc(postgres_url: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    from tests.support.pg import SERVER_TIME_ZONE

    store = Store(tmp_path / "s", postgres_url)
    with store._engine.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar() == SERVER_TIME_ZONE  # UTC+14
    before = datetime.now(UTC)
    _event(store, cap=1)
    red = store.teams("hack")[0]
    sub = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    assert sub.created.tzinfo == UTC and before <= sub.created <= datetime.now(UTC)
    assert store.event("hack").created.utcoffset() == timedelta(0)
    assert store.submissions_left_today("hack", red.id) == 0  # "today" is UTC's, not the server's
    store.close()


def test_postgresql_a_worker_that_lost_its_lease_cannot_end_the_new_holders_run(postgres_url: str,
                                                                                 tmp_path: Path) -> None:
    """Worker A's ``fail`` reads the row while worker B's claim of it is not yet committed: under
    READ COMMITTED it must wait for B's lock and then find the job no longer its own."""
    from sqlalchemy import text

    store = Store(tmp_path / "s", postgres_url)
    _event(store)
    red = store.teams("hack")[0]
    sub = store.submit("hack", red.id, challenge="toy", upload=_upload(store))
    assert store.claim("A", lease_s=60) is not None
    with store._engine.connect() as other:
        other.execute(text("UPDATE submissions SET lease_owner = 'B' WHERE id = :id"), {"id": sub.id})  # not committed
        failing = threading.Thread(target=store.fail, args=(sub.id, "A", "A's kernel died"))
        failing.start()
        time.sleep(0.5)
        assert failing.is_alive()  # waits for B's lock
        other.commit()
    failing.join(30)
    row = store.submission(sub.id)
    assert row is not None and (row.state, row.error) == ("running", None)
    assert not store.progress(sub.id, "A", "cell 1")
    store.close()


def test_a_database_that_cannot_be_opened_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        Store(tmp_path / "s", "postgresql+psycopg://grader:secret@127.0.0.1:1/grader")
    assert refused.value.message.startswith("the database postgresql+psycopg://grader:***@127.0.0.1:1/grader cannot "
                                            "be opened: connection failed: ")
    assert "secret" not in str(refused.value) and "is the server running?" in str(refused.value)
    with pytest.raises(ConfigError, match="the database 'nonsense' cannot be opened: Could not parse"):
        Store(tmp_path / "s", "nonsense")
    with pytest.raises(ConfigError, match="cannot be opened: Can't load plugin: sqlalchemy.dialects:nodb"):
        Store(tmp_path / "s", "nodb://x@127.0.0.1/x")


def _at_once(n: int, act: Callable[[int], object]) -> list[object]:
    """``act(0)`` ... ``act(n - 1)`` in ``n`` threads released together: what each returned or raised."""
    start = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = act(i)
        except Exception as err:  # the outcome under test
            outcomes[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def test_the_cap_holds_when_a_team_submits_many_at_once(store: Store) -> None:
    _event(store, cap=3)
    red = store.teams("hack")[0]
    up = _upload(store)
    outcomes = _at_once(8, lambda i: store.submit("hack", red.id, challenge="toy", upload=up))
    assert sum(isinstance(o, CapReached) for o in outcomes) == 5
    assert len(store.submissions("hack", team_id=red.id)) == 3 and store.submissions_left_today("hack", red.id) == 0


def test_an_event_created_twice_at_once_exists_once(store: Store) -> None:
    outcomes = _at_once(4, lambda i: store.create_event("hack", challenges=["toy"], teams=[f"team{i}"]))
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 3 and all(isinstance(o, UsageError) and o.message == "event hack exists already"
                                     for o in refused)
    assert [e.name for e in store.events()] == ["hack"] and len(store.teams("hack")) == 1


def test_event_create_command_on_postgresql(make_toy: Callable[..., Settings], tmp_path: Path, postgres_url: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import main

    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    (tmp_path / "teams.csv").write_text("team\nRed\n")
    state = tmp_path / "st"
    assert main(["event", "create", "hack", "--challenge", "toy", "--teams", str(tmp_path / "teams.csv"),
                 "--state", str(state), "--database-url", postgres_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (f"start it with: grader serve --event hack --host 127.0.0.1 --port 8000 --state {state} "
                       f"--database-url {postgres_url}")
    assert not (state / "grader.db").exists()  # the event is in PostgreSQL
    opened = Store(tmp_path / "elsewhere", postgres_url)  # another server's state folder, the same database
    assert opened.team_for_token("hack", out[2].rsplit("/", 1)[1]) is not None
    opened.close()
    assert main(["event", "list", "--state", str(state), "--database-url", postgres_url]) == 0
    assert capsys.readouterr().out == "hack                 hack: toy; 1 teams\n"


def test_each_worker_has_its_own_gpu_and_a_share_of_the_cores(tmp_path: Path) -> None:
    """``grader serve --workers 2 --gpus 0,1``: worker n's kernels see only GPU n and cores // 2
    threads, as ``grader check --jobs 2 --gpus 0,1`` hands out slots."""
    import os

    from grader.pipeline.grade import GradeOptions
    from grader.server.work.worker import WorkerPool

    store = Store(tmp_path / "state")
    settings = Settings(project_dir=tmp_path, data_dir=None, cache_dir=tmp_path / "cache", python="python3")
    pool = WorkerPool(store, settings, GradeOptions(), workers=2, gpus=("0", "1"))
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    envs = sorted(dict(env)["CUDA_VISIBLE_DEVICES"] for env in pool._kernel_env.values())
    assert envs == ["0", "1"]
    assert all(dict(env)["OMP_NUM_THREADS"] == threads for env in pool._kernel_env.values())
    single = WorkerPool(store, settings, GradeOptions(), workers=1)
    assert [dict(env) for env in single._kernel_env.values()] == [{}]  # one worker: the kernel's defaults
    store.close()
