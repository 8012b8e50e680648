"""A detected test command: whether a solve detects one when none is given (`--no-tests` turns it
off), and the command each run detected from its repository.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant server default and a nullable column: no table rewrite on PostgreSQL 11+.
    op.add_column("solves", sa.Column("detect_tests", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("runs", sa.Column("detected_test_command", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "detected_test_command")
    op.drop_column("solves", "detect_tests")
