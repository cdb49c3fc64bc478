"""What scoring needs, imported while a notebook runs: scikit-learn's metrics, matplotlib and the
scorecard's compiled templates, so that the grader's fixed cost per notebook does not include them.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable

__all__ = ["import_scoring", "prefetch_imports"]


def _compile_templates() -> None:
    from grader.report import compile_templates

    compile_templates()


# what scoring needs, in order, each with how long the run must have lasted more before it starts
_PREFETCH: tuple[tuple[float, Callable[[], object]], ...] = (
    (0.0, lambda: importlib.import_module("sklearn.metrics")),
    (0.0, _compile_templates),
    (1.0, lambda: importlib.import_module("matplotlib.figure")),
    (0.0, lambda: importlib.import_module("matplotlib.backends.backend_svg")),
)


def import_scoring() -> None:
    """Import what scoring needs and compile the scorecard's templates now, in this thread (each
    step of :func:`prefetch_imports`; a failure is left for the real import). A grading process
    that lives for many jobs (``grader serve``'s children) does it once, at its start."""
    for _, step in _PREFETCH:
        try:
            step()
        except Exception:  # the real import reports it
            return


def prefetch_imports() -> threading.Event:
    """Import what scoring needs (scikit-learn: about 0.6 s here, matplotlib 0.3 s) and compile
    the scorecard's templates in a background thread while the notebook runs in its own
    process, so the grader's fixed cost per notebook does not include them.

    Returns an event to set when the run is over: from then on the thread starts no further
    step, since each would hold the GIL against the scoring that follows (what is missing is
    imported when used). matplotlib, needed only for a loss history, waits until the run has
    lasted a second more: a notebook that trains lasts longer, and a one-cell notebook is not
    slowed by an import it does not need. The thread runs at nice 19 (Linux: per thread),
    behind the notebook. A step already done costs a dictionary lookup; the import lock makes a
    later ``import`` wait for one in progress; a failure is left for that import.
    """
    over = threading.Event()

    def load() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        for delay, step in _PREFETCH:
            if over.wait(delay) if delay else over.is_set():
                return
            try:
                step()
            except Exception:  # the real import reports it
                return

    threading.Thread(target=load, name="grader-prefetch", daemon=True).start()
    return over
