"""The event server's tables: events, event_challenges, teams, uploads, submissions, results.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-02 (drafted by ``alembic revision --autogenerate`` from
:mod:`grader.server.store.models`, then tidied by hand)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of :mod:`grader.server.store.models` as of revision 0001."""
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("cap_per_day", sa.Integer(), nullable=True),
        sa.Column("ends_at", _utc(), nullable=True),
        sa.Column("revealed", sa.Boolean(), nullable=False),
        sa.Column("coach_token_hash", sa.String(64), nullable=False),
        sa.Column("session_secret", sa.String(128), nullable=False),
        sa.Column("created", _utc(), nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created", _utc(), nullable=False),
    )
    op.create_table(
        "event_challenges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.UniqueConstraint("event_id", "challenge"),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.UniqueConstraint("event_id", "name"),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("upload_sha256", sa.String(64), sa.ForeignKey("uploads.sha256"), nullable=False),
        sa.Column("regrade_of", sa.Integer(), sa.ForeignKey("submissions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created", _utc(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires", _utc(), nullable=True),
        sa.Column("progress", sa.Text(), nullable=False),
        sa.Column("progress_at", _utc(), nullable=True),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
    )
    op.create_index("ix_submissions_event_id", "submissions", ["event_id"])
    op.create_index("ix_submissions_state_id", "submissions", ["state", "id"])
    op.create_index("ix_submissions_team_created", "submissions", ["team_id", "created"])
    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("scorecard_html", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("created", _utc(), nullable=False),
    )


def downgrade() -> None:
    """Drop every table of revision 0001."""
    op.drop_table("results")
    for index in ("ix_submissions_team_created", "ix_submissions_state_id", "ix_submissions_event_id"):
        op.drop_index(index, table_name="submissions")
    for table in ("submissions", "teams", "event_challenges", "uploads", "events"):
        op.drop_table(table)
