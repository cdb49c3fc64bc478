"""The event server's state: its database (SQLite or PostgreSQL, migrated at open), events,
teams and sessions, uploads and submissions, the job queue and results.

Modules:

- ``announcements``: The coach's announcements to every team of an event (revision 0004's ``announcements``).
- ``cap``: The daily cap.
- ``db``: The event server's database.
- ``events``: Events, their teams and join tokens.
- ``fair``: The queue's order.
- ``finals``: A team's final submission per challenge, as the team chooses it (revision 0004).
- ``grades``: The coach's grades of written answers and their release to the teams (revision 0005).
- ``group``: Group commit.
- ``jobs``: The job queue of the event server.
- ``members``: A team's members, as the coach's ``teams.csv`` lists them (revision 0004).
- ``models``: The event server's database tables (SQLAlchemy 2 declarative, typed ``Mapped[...]``).
- ``rows``: The rows the event server's store hands out.
- ``sessions``: Sessions kept by the server.
- ``state``: The server's state folder.
- ``store``: The event server's state.
- ``submissions``: Uploads and submissions.
- ``teams``: Who may sign in to an event, as the coach changes it while it runs (``grader event``).
- ``uploads``: Uploads on disk, content-addressed.

Other packages import through this face (``from grader.server.store import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
