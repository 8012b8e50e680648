"""The judge of tied candidates: a solve's `selector_model` and the cost of its calls.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("solves", sa.Column("selector_model", sa.String(255), nullable=True))
    op.add_column("solves", sa.Column("selection_cost_usd", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("solves", "selection_cost_usd")
    op.drop_column("solves", "selector_model")
