# The face of grader.cli: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .main import entry

__all__ = ["entry"]
