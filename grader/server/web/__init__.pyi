# The face of grader.server.web: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .app import create_app
from .guard import fit_open_files, guarded_protocol
from .limits import HSTS_S, ConnectionLimits, ProxyOptions, add_limit_options, connection_limits
from .options import AppOptions
from .similar import precompute_similar

__all__ = ["AppOptions", "ConnectionLimits", "HSTS_S", "ProxyOptions", "add_limit_options", "connection_limits",
    "create_app", "fit_open_files", "guarded_protocol", "precompute_similar"]
