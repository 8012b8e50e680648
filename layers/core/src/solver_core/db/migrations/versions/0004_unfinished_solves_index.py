"""A partial index on each owner's unfinished solves, for the per-owner cap checked at every start.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = "status NOT IN ('succeeded', 'failed', 'cancelled')"


def upgrade() -> None:
    op.create_index(
        "ix_solves_owner_unfinished",
        "solves",
        ["owner"],
        postgresql_where=sa.text(UNFINISHED),
        sqlite_where=sa.text(UNFINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_solves_owner_unfinished", table_name="solves")
