# The face of grader.server.store: the names other packages import, read by lazy_loader.attach_stub
# at run time and by type checkers (names on __all__ are re-exported).

from .announcements import AnnouncementRow, announcements_of, delete_announcement, post_announcement
from .cap import left_today
from .db import DatabaseUnavailable, shown_url
from .finals import FinalRefused, choose_final, clear_final, finals_of
from .grades import GradeRow, GradingState, grades_of, grading_state, release, released_of, save_grade
from .members import MemberRow, members_of, set_members
from .rows import EventRow, SubmissionRow, TeamRow, arrival_numbers
from .sessions import SESSION_S, Sessions, SignedIn, digest
from .state import resolve_state_dir
from .store import Store
from .submissions import CapReached
from .teams import (
    RosterRow,
    add_team,
    remove_team,
    removed_team_ids,
    roster,
    rotate_coach_link,
    rotate_team_link,
    team_rows,
)
from .uploads import UploadRefused, refusal

__all__ = ["FinalRefused", "choose_final", "clear_final", "finals_of",
    "AnnouncementRow", "RosterRow", "announcements_of", "delete_announcement", "post_announcement", "roster",
    "CapReached", "DatabaseUnavailable", "EventRow", "MemberRow", "SESSION_S", "Sessions", "SignedIn", "Store",
    "SubmissionRow", "TeamRow", "arrival_numbers", "UploadRefused", "add_team", "digest", "members_of", "refusal",
    "remove_team",
    "removed_team_ids", "resolve_state_dir", "rotate_coach_link", "rotate_team_link", "set_members", "shown_url",
    "team_rows", "left_today", "GradeRow", "GradingState", "grades_of", "grading_state", "release", "released_of",
    "save_grade"]
