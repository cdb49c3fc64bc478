"""The event server's database tables (SQLAlchemy 2 declarative, typed ``Mapped[...]``).

Only :mod:`grader.server.store.store` uses these classes; it hands out frozen dataclass rows, never
live ORM objects. The schema is created by the Alembic migrations in ``migrations/versions/``
(keep the two in step: a change here is a new migration). Times are UTC; on SQLite, which has
no time zones, they are stored without an offset and read back as UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Announcement", "Base", "BrowserSession", "Event", "EventChallenge", "FinalChoice", "GradeRelease",
           "Result", "Submission", "Team", "TeamMember", "Upload", "WrittenGrade"]

NAME_LEN = 64
SHA_LEN = 64
TITLE_LEN = 200
FILENAME_LEN = 255


class Base(DeclarativeBase):
    """The declarative base of the server's tables."""


class Event(Base):
    """An event (a hack day, a course): its teams submit to its challenges."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_LEN))
    cap_per_day: Mapped[int | None] = mapped_column(Integer)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revealed: Mapped[bool] = mapped_column(Boolean, default=False)
    # practice checks a team may run a UTC day (revision 0004); None: no limit
    practice_per_day: Mapped[int | None] = mapped_column(Integer, default=3, server_default="3")
    coach_token_hash: Mapped[str] = mapped_column(String(SHA_LEN))
    session_secret: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventChallenge(Base):
    """A challenge of an event, in the order the coach gave them."""

    __tablename__ = "event_challenges"
    __table_args__ = (UniqueConstraint("event_id", "challenge"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    challenge: Mapped[str] = mapped_column(String(NAME_LEN))
    position: Mapped[int] = mapped_column(Integer)


class Team(Base):
    """A team of an event; its join token is stored only as its SHA-256 hex digest. A removed
    team (``removed_at`` set, revision 0003) keeps its row and submissions for the coach's records;
    its token hash is then one of a token nobody holds."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("event_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    token_hash: Mapped[str] = mapped_column(String(SHA_LEN), unique=True)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TeamMember(Base):
    """A member of a team (revision 0004), as ``teams.csv`` lists them: the gradebook has one row
    per member. ``email`` and ``student_id`` are "" where the coach gave none."""

    __tablename__ = "team_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    student_id: Mapped[str] = mapped_column(String(64), default="", server_default="")


class FinalChoice(Base):
    """The submission a team chose as its final one for a challenge (revision 0004; Kaggle's
    "selected for final"); without a row the team's best public score is its final one."""

    __tablename__ = "final_choices"
    __table_args__ = (UniqueConstraint("team_id", "challenge"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    challenge: Mapped[str] = mapped_column(String(NAME_LEN))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    chosen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Announcement(Base):
    """A coach's announcement to every team of an event (revision 0004), shown on every page."""

    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BrowserSession(Base):
    """A signed-in browser (revision 0003): the cookie holds a random session id, stored here only
    as its SHA-256 hex digest; deleting the row ends the session. ``team_id`` None is the coach's."""

    __tablename__ = "sessions"
    id_hash: Mapped[str] = mapped_column(String(SHA_LEN), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(SHA_LEN))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Upload(Base):
    """An uploaded file, stored once under ``uploads/<sha>`` whoever sent it."""

    __tablename__ = "uploads"
    sha256: Mapped[str] = mapped_column(String(SHA_LEN), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Submission(Base):
    """A submission and its grading job: ``state`` is queued, running (held by ``lease_owner``
    until ``lease_expires``), done, failed or cancelled."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_state_id", "state", "id"),
                      Index("ix_submissions_team_created", "team_id", "created"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    challenge: Mapped[str] = mapped_column(String(NAME_LEN))
    filename: Mapped[str] = mapped_column(String(FILENAME_LEN))
    upload_sha256: Mapped[str] = mapped_column(ForeignKey("uploads.sha256"))
    regrade_of: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"))
    # a practice check (revision 0004): scored on the public practice split, not counted by the cap
    practice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress: Mapped[str] = mapped_column(Text, default="")
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    verdict: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)


class Result(Base):
    """The one result of a submission (UNIQUE ``submission_id``): its ``result.json`` and HTML
    scorecard."""

    __tablename__ = "results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), unique=True)
    result_json: Mapped[str] = mapped_column(Text)
    scorecard_html: Mapped[str] = mapped_column(Text)
    # the team's view (public part only), rendered when the job finished; "" before revision 0002
    team_scorecard_html: Mapped[str] = mapped_column(Text, default="", server_default="")
    verdict: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WrittenGrade(Base):
    """The coach's grade of one written answer (revision 0005): a coach-graded criterion of a
    submission, its points, comment and checked rubric items (a JSON list of 1-based numbers), and
    the SHA-256 of the answer text the coach read (:func:`grader.intake.answer_sha256`). One row
    per submission and question (UNIQUE ``submission_id, challenge, criterion``)."""

    __tablename__ = "grades"
    __table_args__ = (UniqueConstraint("submission_id", "challenge", "criterion"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    challenge: Mapped[str] = mapped_column(String(NAME_LEN))
    criterion: Mapped[str] = mapped_column(String(NAME_LEN))
    points: Mapped[float] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    items: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    answer_sha256: Mapped[str] = mapped_column(String(SHA_LEN))
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GradeRelease(Base):
    """A question whose grades the coach released to the teams (revision 0005): from
    ``released_at`` each team sees its points and comment for it. One row per event and question."""

    __tablename__ = "grade_releases"
    __table_args__ = (UniqueConstraint("event_id", "challenge", "criterion"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    challenge: Mapped[str] = mapped_column(String(NAME_LEN))
    criterion: Mapped[str] = mapped_column(String(NAME_LEN))
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
