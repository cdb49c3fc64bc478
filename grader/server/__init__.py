"""The event server: teams submit through a web page, workers grade, a coach watches.

Modules: :mod:`grader.server.state` (the state folder), :mod:`grader.server.models` (the
database tables), :mod:`grader.server.store` (the only code that reads or writes them),
:mod:`grader.server.worker` (threads that grade queued submissions through the pipeline),
:mod:`grader.server.serve` (uvicorn with the app and the workers), :mod:`grader.server.app` (the
pages). Nothing is imported here, so ``import grader.server.store`` stays light.
"""

from __future__ import annotations

__all__: list[str] = []
