"""Where VerifyPatch runs a solve's tests: `solves.verify_in` (fresh_sandbox or same_sandbox).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("solves") as batch:
        batch.add_column(
            sa.Column("verify_in", sa.String(20), nullable=False, server_default="fresh_sandbox"),
        )


def downgrade() -> None:
    with op.batch_alter_table("solves") as batch:
        batch.drop_column("verify_in")
