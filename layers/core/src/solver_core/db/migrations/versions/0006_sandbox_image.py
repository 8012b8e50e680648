"""The solve's own sandbox image or template (a batch instance's SWE-bench image), overriding the
deployment's default.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("solves", sa.Column("sandbox_image", sa.String(length=512), nullable=True))


def downgrade() -> None:
    op.drop_column("solves", "sandbox_image")
