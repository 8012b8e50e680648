"""Reproduction scripts: a solve's `reproduce` options, an attempt's script, a check run's target and results.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("solves", sa.Column("reproduce", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("solves", sa.Column("reproduce_path", sa.String(255), nullable=True))
    op.add_column("solves", sa.Column("reproduce_command", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("reproduce_key", sa.String(1024), nullable=True))
    op.add_column("runs", sa.Column("target_run_id", sa.Uuid(), nullable=True))
    op.add_column("runs", sa.Column("reproduction", JSON, nullable=True))


def downgrade() -> None:
    for column in ("reproduction", "target_run_id", "reproduce_key"):
        op.drop_column("runs", column)
    for column in ("reproduce_command", "reproduce_path", "reproduce"):
        op.drop_column("solves", column)
