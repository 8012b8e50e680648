"""Publishing to GitHub: the solve's publish option and what publishing left there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
COLUMNS = ("publish", "publication")


def upgrade() -> None:
    # Nullable columns without defaults: a plain ADD COLUMN on both databases, no table rewrite.
    for name in COLUMNS:
        op.add_column("solves", sa.Column(name, JSON, nullable=True))


def downgrade() -> None:
    # SQLite has had ALTER TABLE … DROP COLUMN since 3.35; these columns carry no constraints.
    for name in reversed(COLUMNS):
        op.drop_column("solves", name)
