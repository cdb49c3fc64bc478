"""Sessions kept by the server (a signed-in browser's cookie holds only a random id, stored here as
its SHA-256 hex digest: signing out deletes the row) and teams a coach can remove.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``sessions``; add ``teams.removed_at`` (NULL: every team of an older database stays
    a team). ``ALTER TABLE ... ADD COLUMN``, also on SQLite: the teams table is not copied
    (a copy would drop the old table, and with foreign keys on its ON DELETE CASCADE would delete
    every submission)."""
    op.add_column("teams", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sessions_event_id", "sessions", ["event_id"])
    op.create_index("ix_sessions_team_id", "sessions", ["team_id"])


def downgrade() -> None:
    """Drop ``sessions`` and ``teams.removed_at``."""
    op.drop_index("ix_sessions_team_id", table_name="sessions")
    op.drop_index("ix_sessions_event_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_column("teams", "removed_at")  # SQLite 3.35+ drops a column in place (no copy: see upgrade)
