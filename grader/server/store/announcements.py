"""The coach's announcements to every team of an event (revision 0004's ``announcements``): posted
and deleted on the coach's settings page, shown on every page of the event (plain text: the
pages escape it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from grader.core import UsageError
from grader.server.store import models as m
from grader.server.store.db import Database
from grader.server.store.jobs import rowcount
from grader.server.store.rows import now as utcnow
from grader.server.store.rows import utc
from grader.server.store.teams import event_named

__all__ = ["ANNOUNCEMENT_LEN", "AnnouncementRow", "announcements_of", "delete_announcement", "post_announcement"]

ANNOUNCEMENT_LEN = 2000  # characters of one announcement: a few paragraphs, not a document


@dataclass(frozen=True)
class AnnouncementRow:
    """An announcement: its id, its plain text and when it was posted (UTC)."""

    id: int
    text: str
    created: datetime


def post_announcement(db: Database, event: str, text: str) -> AnnouncementRow:
    """Post ``text`` (its ends' white space stripped; line breaks kept) to every team of ``event``.

    Raises:
        UsageError: no such event; ``text`` is empty or over :data:`ANNOUNCEMENT_LEN` characters.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise UsageError("the announcement is empty", fix="write what the teams should read")
    if len(text) > ANNOUNCEMENT_LEN:
        raise UsageError(f"the announcement is {len(text)} characters long, over the limit of {ANNOUNCEMENT_LEN}",
                         fix="say it shorter, or in two announcements")
    created = utcnow()
    with db._write() as s:
        row = m.Announcement(event_id=event_named(s, event).id, text=text, created=created)
        s.add(row)
        s.flush()
        return AnnouncementRow(id=row.id, text=text, created=created)


def announcements_of(db: Database, event: str, *, limit: int | None = None) -> list[AnnouncementRow]:
    """The announcements of ``event``, newest first, at most ``limit`` of them (None: all).

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached.
    """
    with db._read() as s:
        query = (select(m.Announcement).where(m.Announcement.event_id == event_named(s, event).id)
                 .order_by(m.Announcement.created.desc(), m.Announcement.id.desc()).limit(limit))
        return [AnnouncementRow(id=a.id, text=a.text, created=utc(a.created) or utcnow()) for a in s.scalars(query)]


def delete_announcement(db: Database, event: str, announcement_id: int) -> bool:
    """Delete announcement ``announcement_id`` of ``event``; False when ``event`` has none of that id.

    Raises:
        UsageError: no such event.
        DatabaseUnavailable: the database cannot be reached or written.
    """
    with db._write() as s:
        return rowcount(s, delete(m.Announcement).where(m.Announcement.id == announcement_id,
                                                        m.Announcement.event_id == event_named(s, event).id)) > 0
