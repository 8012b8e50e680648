"""Per-owner allowlists: where the deployment's Git credentials and publishing may be used.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owner_allowlist",
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("allow_workflows", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "target", name="pk_owner_allowlist"),
    )


def downgrade() -> None:
    op.drop_table("owner_allowlist")
