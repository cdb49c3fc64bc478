"""The event day: a team's members (for the gradebook an LMS imports), its chosen final
submission per challenge, practice checks (graded on the public practice split, never counted
against the daily cap), the coach's announcements and the practice allowance.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``team_members``, ``final_choices`` and ``announcements``; add
    ``submissions.practice`` (false for every older submission) and ``events.practice_per_day``
    (3 for every older event). ``ALTER TABLE ... ADD COLUMN`` in place, also on SQLite (revision
    0003 says why no table is copied)."""
    op.add_column("submissions", sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("events", sa.Column("practice_per_day", sa.Integer(), nullable=True, server_default="3"))
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, server_default=""),
        sa.Column("student_id", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_team_members_team_id", "team_members", ["team_id"])
    op.create_table(
        "final_choices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("team_id", "challenge"),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_announcements_event_id", "announcements", ["event_id"])


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_index("ix_announcements_event_id", table_name="announcements")
    op.drop_table("announcements")
    op.drop_table("final_choices")
    op.drop_index("ix_team_members_team_id", table_name="team_members")
    op.drop_table("team_members")
    op.drop_column("events", "practice_per_day")
    op.drop_column("submissions", "practice")
