"""Written answers graded by the coach (issue 29): the coach's grade of each answer
(``grades``) and the questions whose grades the coach released to the teams
(``grade_releases``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``grades`` and ``grade_releases``: new tables only, no table of an older database
    is copied or changed (revision 0003 says why a copy would cost the submissions on SQLite)."""
    op.create_table(
        "grades",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("criterion", sa.String(64), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
        sa.Column("items", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("answer_sha256", sa.String(64), nullable=False),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("submission_id", "challenge", "criterion"),
    )
    op.create_index("ix_grades_event_id", "grades", ["event_id"])
    op.create_table(
        "grade_releases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("criterion", sa.String(64), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", "challenge", "criterion"),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_table("grade_releases")
    op.drop_index("ix_grades_event_id", table_name="grades")
    op.drop_table("grades")
