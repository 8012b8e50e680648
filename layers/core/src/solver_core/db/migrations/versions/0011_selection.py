"""Champion selection: a run's kind (an agent's attempt, or the solve's baseline: the test command on
the base commit) and the solve's `selection` record.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("runs", sa.Column("kind", sa.String(20), nullable=False, server_default="attempt"))
    op.add_column("solves", sa.Column("selection", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("solves", "selection")
    op.drop_column("runs", "kind")
