# The face of grader.server.work: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .worker import RunningJob, WorkerPool, load_code, load_printed

__all__ = ["RunningJob", "WorkerPool", "load_code", "load_printed"]
