"""Cloud batches (POST /batches): the batches table, and each instance's solve pointing at its batch.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STATUSES = "status IN ('running', 'finished', 'failed', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("models", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("execution_ref", sa.String(2048), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("owner", "idempotency_key", name=op.f("uq_batches_owner_idempotency_key")),
        sa.CheckConstraint(STATUSES, name=op.f("ck_batches_status_valid")),
    )
    op.create_index("ix_batches_owner_created", "batches", ["owner", "created_at"])
    with op.batch_alter_table("solves") as table:
        table.add_column(sa.Column("batch_id", sa.Uuid(), nullable=True))
        table.create_foreign_key(
            op.f("fk_solves_batch_id_batches"), "batches", ["batch_id"], ["id"], ondelete="CASCADE"
        )
        table.create_index(op.f("ix_solves_batch_id"), ["batch_id"])


def downgrade() -> None:
    with op.batch_alter_table("solves") as table:
        table.drop_index(op.f("ix_solves_batch_id"))
        table.drop_constraint(op.f("fk_solves_batch_id_batches"), type_="foreignkey")
        table.drop_column("batch_id")
    op.drop_index("ix_batches_owner_created", table_name="batches")
    op.drop_table("batches")
