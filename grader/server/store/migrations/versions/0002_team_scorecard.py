"""The scorecard a team sees, rendered when its job finishes (the loss plot and thumbnails are
not part of ``result.json``, so it cannot be rendered again from the stored result alone).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``results.team_scorecard_html`` ("" for results stored before it)."""
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("team_scorecard_html", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop ``results.team_scorecard_html``."""
    with op.batch_alter_table("results") as batch:
        batch.drop_column("team_scorecard_html")
