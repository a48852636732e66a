"""Per-track surge flags: each track's count against its own history.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (("surge", sa.Boolean), ("surge_ratio", sa.Float), ("baseline_cars", sa.Float))


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("track_counts", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("track_counts") as batch:
        for name, _ in COLUMNS:
            batch.drop_column(name)
