# The face of grader.sandbox: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .gate import HiddenGate, make_gate
from .mounts import clean_stale_mounts
from .session import Sandbox, SandboxSession, resolve_sandbox

__all__ = ["HiddenGate", "Sandbox", "SandboxSession", "clean_stale_mounts", "make_gate", "resolve_sandbox"]
