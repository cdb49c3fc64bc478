"""Group commit: writes that arrive together share one transaction and one durable commit.

Fifty teams uploading at the same moment each need a durable commit before their upload is
acknowledged. One commit each, one after the other (SQLite admits one writer; each commit waits
for its fsync), puts the fiftieth answer behind fifty fsyncs. Here the first writer to arrive
leads: it takes every write waiting at that moment (up to :data:`MAX_BATCH`), hands them to the
batch function in one transaction (which writes them with one statement per table, not one per
write), commits once and hands the lead to the first write that arrived meanwhile. Each caller
returns only after the commit that holds its write, so "returned" still means durable. The
technique is the group commit of database logs (Gray and Reuter, *Transaction Processing:
Concepts and Techniques*, 1993, section 9.4.7; PostgreSQL's ``commit_delay`` shares one WAL
flush among one server's commits the same way).

The batch function decides each write's refusal (a :class:`~grader.core.errors.GraderError` it
returns in that write's place: the team's cap reached) before it writes anything: the other
writes of the batch are committed. An error it raises, or a failed commit, fails every write
of the batch with that error, none of them stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from grader.core import GraderError

__all__ = ["MAX_BATCH", "GroupCommit"]

P = TypeVar("P")
R = TypeVar("R")
MAX_BATCH = 200  # the most writes one transaction holds


class _Write(Generic[P, R]):
    """One caller's write waiting for its commit."""

    __slots__ = ("done", "error", "finished", "lead", "payload", "result")

    def __init__(self, payload: P) -> None:
        self.payload = payload
        self.done = threading.Event()  # set when committed (or failed), or when made the leader
        self.lead = False
        self.finished = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[P, R]):
    """Runs writes in shared transactions (see the module's docstring).

    Args:
        begin: opens a write transaction, committed when its context exits without an error
            (:meth:`grader.server.store.db.Database._write`), as a context manager yielding the session.
        run: writes a batch of payloads (in the order they arrived) in that session and returns
            one outcome each, in the same order: the write's result, or the GraderError that
            refuses it. It must not commit, roll back or close the session.
    """

    def __init__(self, begin: Callable[[], AbstractContextManager[Session]],
                 run: Callable[[Session, Sequence[P]], Sequence[R | GraderError]]) -> None:
        self._begin, self._run = begin, run
        self._lock = threading.Lock()
        self._waiting: list[_Write[P, R]] = []
        self._leading = False

    def write(self, payload: P) -> R:
        """Write ``payload`` in a transaction shared with the writes waiting now; returns its
        result once that transaction is committed.

        Raises:
            GraderError: the batch function refused this write (the others of its batch stand).
            DatabaseUnavailable: the transaction could not be begun or committed (nothing of it stored).
            Exception: any other error of the batch function (nothing of the batch stored).
        """
        me: _Write[P, R] = _Write(payload)
        with self._lock:
            self._waiting.append(me)
            if not self._leading:
                self._leading = me.lead = True
        if not me.lead:
            me.done.wait()  # committed by a leader, or made the leader
        if not me.finished:
            with self._lock:  # the leader is the first waiting: its write is in this batch
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                self._commit(batch)
            finally:
                with self._lock:
                    if self._waiting:
                        self._waiting[0].lead = True
                        self._waiting[0].done.set()
                    else:
                        self._leading = False
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]  # finished without an error: a result

    def _commit(self, batch: list[_Write[P, R]]) -> None:
        try:
            with self._begin() as session:
                outcomes = self._run(session, [w.payload for w in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"the batch function returned {len(outcomes)} outcomes for {len(batch)} writes")
        except BaseException as err:  # nothing of the batch is stored
            for item in batch:
                item.error = err
        else:
            for item, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, GraderError):
                    item.error = outcome
                else:
                    item.result = outcome
        finally:
            for item in batch:
                item.finished = True
                item.done.set()
