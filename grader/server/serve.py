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
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from grader.core import Settings, UsageError
from grader.pipeline import GradeOptions
from grader.sandbox import clean_stale_mounts
from grader.server.store import Store
from grader.server.web import ConnectionLimits, ProxyOptions
from grader.server.work import WorkerPool

__all__ = ["KERNEL_NICE", "LOCK_FILE", "AppFactory", "serve", "state_lock"]

log = logging.getLogger(__name__)
# the CPU niceness of the notebooks a server grades on its own machine (GradeOptions.nice): the
# pages and uploads are answered first, the notebooks take the rest of the cores (alone on the
# machine they run as fast; the scheduler's weights, nice 0 to 10, are about 9 to 1)
KERNEL_NICE = 10

AppFactory = Callable[..., Any]  # create_app(store, settings, *, workers, options) -> ASGI app


LOCK_FILE = "serve.lock"


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
          limits: ConnectionLimits | None = None) -> int:
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
                      limits=limits or ConnectionLimits())


def _serve(store: Store, settings: Settings, options: GradeOptions, *, event: str, host: str, port: int,
           workers: int, gpus: Sequence[str], embedded: bool, lease_s: float, log_level: str,
           app_factory: AppFactory | None, on_ready: Callable[[str], None] | None, scheduler: str | None,
           scoring: Literal["here", "workers"], proxy: ProxyOptions, limits: ConnectionLimits) -> int:
    import uvicorn

    from grader.server.web import fit_open_files, guarded_protocol

    store.event(event)
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
    pool.start()
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{port}/")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        store.close()
        signal.signal(signal.SIGTERM, previous)
    return 0
