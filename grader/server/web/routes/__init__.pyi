# The face of grader.server.web.routes: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .coach import add_coach_routes
from .exports import add_export_routes
from .grading import add_grading_routes
from .history import add_history_routes
from .public import add_public_routes
from .team import add_team_routes

__all__ = ["add_history_routes", "add_coach_routes", "add_export_routes", "add_grading_routes", "add_public_routes",
    "add_team_routes"]
