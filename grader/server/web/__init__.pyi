# The face of grader.server.web: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .app import create_app
from .guard import fit_open_files, guarded_protocol
from .limits import HSTS_S, ConnectionLimits, ProxyOptions, add_limit_options, connection_limits
from .options import AppOptions
from .precheck import load_upload_checks
from .similar import KeptPairs, keep_similar, precompute_similar, similar_in_child

__all__ = ["AppOptions", "ConnectionLimits", "HSTS_S", "KeptPairs", "ProxyOptions", "add_limit_options",
    "connection_limits", "create_app", "fit_open_files", "guarded_protocol", "keep_similar", "load_upload_checks",
    "precompute_similar", "similar_in_child"]
