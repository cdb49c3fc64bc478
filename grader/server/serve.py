"""``grader serve``: one event's pages under uvicorn, with the worker threads that grade.

At start the jobs a previous server left running are put back in the queue (all of them in
embedded mode, where this server is the only worker; else those whose lease expired), then the
:class:`~grader.server.worker.WorkerPool` starts and uvicorn serves the app
(``uvicorn.Config`` / ``uvicorn.Server``, uvicorn's documented programmatic use). On SIGINT or
SIGTERM uvicorn stops accepting requests, then the workers stop: running notebooks are killed and
their jobs go back to the queue, to be graded by the next start.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

from grader.grade import GradeOptions
from grader.server.store import Store
from grader.server.worker import WorkerPool
from grader.settings import Settings

__all__ = ["AppFactory", "serve"]

log = logging.getLogger(__name__)

AppFactory = Callable[..., Any]  # create_app(store, settings, *, workers, options) -> ASGI app


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(store: Store, settings: Settings, options: GradeOptions, *, event: str, host: str, port: int,
          workers: int = 1, gpus: Sequence[str] = (), embedded: bool = True, lease_s: float = 60,
          log_level: str = "info", app_factory: AppFactory | None = None,
          on_ready: Callable[[str], None] | None = None, scheduler: str | None = None) -> int:
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
        embedded: this server is the only worker of the database (SQLite in the state folder):
            every job left running is requeued at start.
        lease_s: seconds a job stays a worker's without a heartbeat.
        log_level: uvicorn's log level.
        app_factory: builds the ASGI app (default :func:`grader.server.app.create_app`).
        on_ready: called with the URL once the workers run, before uvicorn starts listening.

    Raises:
        UsageError: no such event (the message names the known ones).
    """
    import uvicorn

    store.event(event)
    requeued = store.requeue_stale(all_running=embedded)
    if requeued:
        log.warning("%d job(s) left running by a previous server put back in the queue (or failed after "
                    "too many attempts)", requeued)
    pool = WorkerPool(store, settings, options, workers=workers, lease_s=lease_s, gpus=gpus,
                      scheduler=scheduler)
    if app_factory is None:
        from grader.server.app import AppOptions, create_app

        app = create_app(store, settings, workers=pool, options=AppOptions(event=event))
    else:
        app = app_factory(store, settings, workers=pool, event=event)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off"))
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
