"""``grader serve``: one event's pages under uvicorn, with the worker threads that grade.

At start the jobs a previous server left running are put back in the queue (all of them in
embedded mode, where this server is the only worker; else those whose lease expired), then the
:class:`~grader.server.work.worker.WorkerPool` starts and uvicorn serves the app
(``uvicorn.Config`` / ``uvicorn.Server``, uvicorn's documented programmatic use). On SIGINT or
SIGTERM uvicorn stops accepting requests, then the workers stop: running notebooks are killed and
their jobs go back to the queue, to be graded by the next start.

In embedded mode (SQLite in the state folder) the server holds an exclusive lock on
``<state>/serve.lock`` (``fcntl.flock``, released by the kernel however the process ends) while
it runs: a second server on the same folder would requeue the first one's running jobs at its
start and grade them twice, so it refuses to start. Several servers on one database need
PostgreSQL (``--database-url``), where a job is requeued only once its lease has expired.

Start-up work (issue 28), in one background thread (:class:`StartUpWork`) so that the server answers
at once: first each challenge's public-data zip (:func:`grader.data.export.public_data_zip`, cached
on disk by content: a restart finds it built), then the coach's similar pairs over the results so far
(1.7 to 4.9 s for 60 teams on the 2-core benchmark machine, kept for the coach's first
``/coach/similar``), computed in a child process (:func:`in_child`, :mod:`grader.server.child`,
at a lower CPU priority): in the server's interpreter the computation held the GIL for
seconds while the pages waited (issue 28's benchmark: the coach's leaderboard went from 79 to 733 ms
at p95 during it). The imports the pages need later are done before the server listens, not in
that thread: the upload checks' (:func:`grader.server.web.precheck.load_upload_checks`, about 0.5 s)
and the similar pairs' (:func:`grader.integrity.load_dependencies`, about 1.8 s, which the next
``/coach/similar`` after a new result computes with): left to the first upload or view they held
every page for as long (the similar view after a new result took 1.7 s instead of 0.3 s); the price
is a start that much later. The zips come first: at an event's start every team downloads its data and
there are no results to compare; on a restart the zips are on disk already and the pairs follow at
once. A zip is built at start, not on the first download, which took 25.6 s for gear's 57 MB; in
the background, not before serving, because a build takes minutes for CIFAR-10's 50,000 files and a
restart must not keep teams from their pages and uploads that long. A download asked for during the
build waits for it (the zip's lock) instead of starting a second one. Progress is logged (INFO,
``grader -v serve``); a challenge whose data cannot be exported is logged as a warning and left out
(its download answers 404, as before). On the way out the thread stops at its next step or
progress call (every 2,000 files; the half-built export is removed) and is waited for up to
:data:`START_UP_JOIN_S` seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from grader.core import Settings, UsageError, environ_snapshot
from grader.pipeline import GradeOptions, warm_keys
from grader.sandbox import clean_stale_mounts
from grader.server.cpus import pin_server
from grader.server.store import Store
from grader.server.web import ConnectionLimits, ProxyOptions
from grader.server.work import WorkerPool

__all__ = ["KERNEL_NICE", "LOCK_FILE", "START_UP_JOIN_S", "AppFactory", "StartUpWork", "serve", "state_lock"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# the CPU niceness of the notebooks a server grades on its own machine (GradeOptions.nice): the
# pages and uploads are answered first, the notebooks take the rest of the cores (alone on the
# machine they run as fast; the scheduler's weights, nice 0 to 10, are about 9 to 1)
KERNEL_NICE = 10

AppFactory = Callable[..., Any]  # create_app(store, settings, *, workers, options) -> ASGI app


LOCK_FILE = "serve.lock"
START_UP_JOIN_S = 10.0  # how long the way out waits for the start-up thread (a zip being written finishes)


class _Stopped(Exception):
    """Raised in the start-up thread's progress call once the server is stopping."""


class StartUpWork:
    """The server's start-up work in one daemon thread (module docstring): the public-data zip of
    each of ``challenges``, then the ``warm`` steps in order.

    Args:
        settings: the project, data and cache folders.
        challenges: the event's challenge ids.
        warm: named steps run first, each timed and logged; one that raises is logged with its
            traceback and the next runs (a warm-up only saves a later page its wait: its failure is
            that page's to report, not the server's).

    Attributes:
        ready: per challenge, the path of its built zip (filled as each is built).
        failed: per challenge, why its zip was not built.
        done: set once the thread has finished.
    """

    def __init__(self, settings: Settings, challenges: Sequence[str], *,
                 warm: Sequence[tuple[str, Callable[[], object]]] = ()) -> None:
        self.settings = settings
        self.challenges = tuple(challenges)
        self.warm = tuple(warm)
        self.ready: dict[str, Path] = {}
        self.failed: dict[str, str] = {}
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grader-start-up", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, *, timeout_s: float = START_UP_JOIN_S) -> None:
        """Ask the thread to stop at its next step or progress call and wait up to ``timeout_s`` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            for challenge in self.challenges:
                if self._stop.is_set():
                    return
                self._build(challenge)
            for name, step in self.warm:
                if self._stop.is_set():
                    return
                t0 = time.monotonic()
                try:
                    step()
                except _Stopped:
                    log.info("start-up: %s stopped (the server is stopping)", name)
                    return
                except Exception:  # noqa: BLE001  # a warm-up's fault is the page's to report (class docstring)
                    log.warning("start-up: %s failed", name, exc_info=True)
                    continue
                log.info("start-up: %s in %.1f s", name, time.monotonic() - t0)
        finally:
            self.done.set()

    def _build(self, challenge: str) -> None:
        from grader.core import GraderError
        from grader.data import public_data_zip

        t0 = time.monotonic()
        shown = [0.0]

        def progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            if time.monotonic() - shown[0] >= 5 or done == total:
                shown[0] = time.monotonic()
                log.info("public data of %s: %d of %d files copied", challenge, done, total)

        try:
            path = public_data_zip(self.settings, challenge, on_progress=progress)
        except _Stopped:
            log.info("public data of %s: build stopped (the server is stopping)", challenge)
            return
        except (GraderError, OSError) as err:
            self.failed[challenge] = str(err)
            log.warning("public data of %s not built at start: %s", challenge, err)
            return
        self.ready[challenge] = path
        log.info("public data of %s ready: %s (%.0f MB) after %.1f s", challenge, path.name,
                 path.stat().st_size / 1e6, time.monotonic() - t0)


def _warm_ups(store: Store, settings: Settings, event: str,
              options: GradeOptions, stop: threading.Event) -> list[tuple[str, Callable[[], object]]]:
    """The start-up thread's warm-ups: the event's similar pairs over its results so far, computed in
    a child process (:func:`in_child`; ``stop`` ends it) and kept beside ``store`` for the coach's
    first ``/coach/similar`` (:mod:`grader.server.web.similar`; the Ladder's margin as the app's,
    whose options these are)."""
    from grader.server.web import AppOptions, keep_similar, similar_in_child

    def pairs() -> object:
        app = AppOptions(event=event, profile=options.profile)
        kept = in_child(similar_in_child, store.state_dir, store.database_url, settings, stop=stop,
                        kwargs={"event": event, "options": app})
        keep_similar(store, kept)
        return len(kept.pairs)

    return [("the similar pairs of the results so far", pairs)]


def in_child(fn: Callable[..., T], *args: object, stop: threading.Event, kwargs: dict[str, object] | None = None,
             poll_s: float = 0.2) -> T:
    """``fn(*args, **kwargs)`` in a child process (``python -m grader.server.child``: a fresh
    interpreter with ``env=`` given, the call and its value pickled through its stdin and stdout,
    at a lower CPU priority); returns its value.

    Raises:
        _Stopped: ``stop`` was set first (the child is killed).
        RuntimeError: ``fn`` raised in the child (its type and message), or the child died.
    """
    payload: bytes | None = pickle.dumps((fn, args, kwargs or {}))
    proc = subprocess.Popen([sys.executable, "-m", "grader.server.child"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=environ_snapshot())
    try:
        while True:
            try:
                out, _ = proc.communicate(payload, timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                payload = None  # sent (being sent) by the first call
                if stop.is_set():
                    raise _Stopped from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    try:
        ok, value = pickle.loads(out)  # noqa: S301  # the grader's own child (grader.server.child), not a student's
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise RuntimeError(f"the child process exited with status {proc.returncode} and no answer") from err
    if not ok:
        raise RuntimeError(f"in the child process: {value}")
    return cast(T, value)


def freeze_start_up() -> int:
    """Collect, then freeze (:func:`gc.freeze`) every object the garbage collector tracks; returns how
    many are frozen.

    A served process holds some 200,000 tracked objects once its imports are done (the upload
    checks', the similar pairs', SQLAlchemy's, Jinja's); each full (generation 2) collection
    walks them all with the interpreter's lock held: 110 ms on the 2-core VM of
    benchmarks/RESULTS.md, during which no request moves. Frozen, they are left out of every
    later collection, which walks only what the server made since (Python's documentation of
    ``gc.freeze``: "move them to a permanent generation and ignore them in all the future
    collections"). The imports' cycles are freed first (:func:`gc.collect`); frozen objects are
    never freed, which is what modules and the app are for the life of the process.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir/serve.lock`` exclusively (``fcntl.flock``, non-blocking) while inside,
    with this process's id written in it.

    Raises:
        UsageError: another process holds it (the message gives its pid, as written in the file).
    """
    path = Path(state_dir) / LOCK_FILE
    with path.open("a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise UsageError(f"another grader serve (pid {holder}) is serving this state folder's SQLite database: "
                             "a second server would take over its running jobs and grade them twice", path=state_dir,
                             fix="stop the other server first; for several servers on one database use PostgreSQL "
                                 "(--database-url)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def serve(store: Store, settings: Settings, options: GradeOptions, *, event: str, host: str, port: int,
          workers: int = 1, gpus: Sequence[str] = (), embedded: bool = True, lease_s: float = 60,
          log_level: str = "info", app_factory: AppFactory | None = None,
          on_ready: Callable[[str], None] | None = None, scheduler: str | None = None,
          scoring: Literal["here", "workers"] = "here", proxy: ProxyOptions | None = None,
          limits: ConnectionLimits | None = None, freeze_heap: bool = False, one_cpu: bool = False) -> int:
    """Serve ``event`` on ``http://host:port/`` until SIGINT or SIGTERM; return the exit status (0).

    Args:
        store: the open store (closed here on the way out).
        settings: the project, data and cache folders.
        options: how the workers grade (profile, device, sandbox).
        event: the event's name.
        host: address to listen on, e.g. ``127.0.0.1``.
        port: TCP port (0: any free one).
        workers: grading threads.
        gpus: GPU ids handed to the workers, worker n the n-th (round robin); empty: no pinning.
        scheduler: a Dask scheduler's address: the workers send each job there as one task.
        scoring: with a scheduler, where the labels are (:class:`grader.pipeline.job.CohortOptions`).
        embedded: this server is the only worker of the database (SQLite in the state folder):
            it holds :func:`state_lock` while it runs, and every job left running is requeued at
            start.
        lease_s: seconds a job stays a worker's without a heartbeat.
        log_level: uvicorn's log level.
        app_factory: builds the ASGI app (default :func:`grader.server.web.app.create_app`).
        on_ready: called with the URL once the workers run, before uvicorn starts listening.
        proxy: how it runs behind an HTTPS proxy (Secure cookies, HSTS, the proxy's forwarded
            headers trusted from ``forwarded_allow_ips``); None: plain http, uvicorn's defaults.
        limits: header and body read timeouts and the connection limit
            (:mod:`grader.server.web.limits`, enforced by :mod:`grader.server.web.guard`); None: the defaults.
        freeze_heap: once the app is built and its imports done, before it listens, move every object
            of this process to the garbage collector's permanent generation (:func:`freeze_start_up`):
            for a process of its own (``grader serve``), not a caller's (its objects would never be
            collected).
        one_cpu: keep the server's threads on one CPU and its children on all (:mod:`grader.server.cpus`):
            for a process of its own, set before any of its threads start.

    Raises:
        UsageError: no such event (the message names the known ones); embedded, another server
            holds the state folder's lock (the store is closed).
    """
    with contextlib.ExitStack() as stack:
        if embedded:
            try:
                stack.enter_context(state_lock(store.state_dir))
            except UsageError:
                store.close()
                raise
        return _serve(store, settings, options, event=event, host=host, port=port, workers=workers, gpus=gpus,
                      embedded=embedded, lease_s=lease_s, log_level=log_level, app_factory=app_factory,
                      on_ready=on_ready, scheduler=scheduler, scoring=scoring, proxy=proxy or ProxyOptions(),
                      limits=limits or ConnectionLimits(), freeze_heap=freeze_heap, one_cpu=one_cpu)


def _serve(store: Store, settings: Settings, options: GradeOptions, *, event: str, host: str, port: int,
           workers: int, gpus: Sequence[str], embedded: bool, lease_s: float, log_level: str,
           app_factory: AppFactory | None, on_ready: Callable[[str], None] | None, scheduler: str | None,
           scoring: Literal["here", "workers"], proxy: ProxyOptions, limits: ConnectionLimits,
           freeze_heap: bool, one_cpu: bool) -> int:
    import uvicorn

    from grader.integrity import load_dependencies
    from grader.server.web import fit_open_files, guarded_protocol, load_upload_checks

    if one_cpu:
        pinned = pin_server()
        if pinned is not None:
            log.info("start-up: the server's threads on CPU %d, its children on CPUs %s", pinned[0],
                     ",".join(map(str, pinned[1])))
    challenges = store.event(event).challenges
    clean_stale_mounts()  # the tmpfs mounts of graders killed with SIGKILL (root only; never raises)
    requeued = store.requeue_stale(all_running=embedded)
    if requeued:
        log.warning("%d job(s) left running by a previous server put back in the queue (or failed after "
                    "too many attempts)", requeued)
    pool = WorkerPool(store, settings, options, workers=workers, lease_s=lease_s, gpus=gpus,
                      scheduler=scheduler, scoring=scoring)
    if app_factory is None:
        from grader.server.web import AppOptions, create_app

        app = create_app(store, settings, workers=pool,
                         options=AppOptions(event=event, https=proxy.https, hsts_s=proxy.hsts_s,
                                            profile=options.profile))
    else:
        app = app_factory(store, settings, workers=pool, event=event)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off",
                                           forwarded_allow_ips=proxy.forwarded_allow_ips,
                                           # slow clients: read timeouts and a connection limit
                                           http=guarded_protocol(limits), timeout_keep_alive=limits.keep_alive_s,
                                           limit_concurrency=fit_open_files(limits.max_connections)))
    previous = signal.signal(signal.SIGTERM, _terminate)  # uvicorn re-raises it after its shutdown
    t0 = time.monotonic()
    load_upload_checks()  # before it listens: the first uploads must not wait for these imports
    load_dependencies()  # nor the coach's first similar pairs computed here (after a new result)
    if settings.data_dir is not None and settings.data_dir.is_dir():  # else the workers' jobs say so
        warm_keys(settings)  # nor the first jobs' cache keys, in the workers' threads
    log.info("start-up: the upload checks' and the similar pairs' imports, the cache keys' fixed parts in %.1f s",
             time.monotonic() - t0)
    if freeze_heap:
        log.info("start-up: %d objects left out of the garbage collector's passes (gc.freeze)", freeze_start_up())
    stopping = threading.Event()
    start_up = StartUpWork(settings, challenges, warm=_warm_ups(store, settings, event, options, stopping))
    pool.start()
    start_up.start()
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{port}/")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        start_up.stop()
        pool.stop()
        store.close()
        signal.signal(signal.SIGTERM, previous)
    return 0
