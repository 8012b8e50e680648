"""Initial schema: solves, runs, events and the model/agent-config registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations carry their own copies of column types so later changes to the models cannot rewrite
# history.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SOLVE_STATUSES = ("queued", "running", "succeeded", "failed", "cancelling", "cancelled")
RUN_STATUSES = (
    "queued", "launching", "preparing", "solving", "collecting", "verifying", "succeeded", "failed", "cancelled",
)  # fmt: skip
EVENT_KINDS = ("status", "step", "log", "error")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    ]


def _registry() -> None:
    op.create_table(
        "agent_configs",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("base", sa.String(255), nullable=False),
        sa.Column("overrides", JSON, nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agent_configs")),
    )
    op.create_table(
        "ai_models",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model_kwargs", JSON, nullable=False),
        sa.Column("input_cost_per_token", sa.Double(), nullable=True),
        sa.Column("output_cost_per_token", sa.Double(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ai_models")),
    )


def _solves() -> None:
    op.create_table(
        "solves",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("repo_url", sa.String(2048), nullable=False),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("issue_title", sa.String(300), nullable=False),
        sa.Column("issue_body", sa.Text(), nullable=False),
        sa.Column("issue_url", sa.String(2048), nullable=True),
        sa.Column("external_ref", JSON, nullable=True),
        sa.Column("models", JSON, nullable=False),
        sa.Column("attempts_per_model", sa.Integer(), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("agent_config", sa.String(100), nullable=True),
        sa.Column("limits", JSON, nullable=False),
        sa.Column("setup_command", sa.Text(), nullable=True),
        sa.Column("test_command", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.String(2048), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("execution_ref", sa.String(2048), nullable=True),
        sa.Column("champion_run_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(_in("status", SOLVE_STATUSES), name=op.f("ck_solves_status_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_solves")),
        sa.UniqueConstraint("owner", "idempotency_key", name=op.f("uq_solves_owner_idempotency_key")),
    )
    op.create_index("ix_solves_owner_created", "solves", ["owner", "created_at", "id"])
    op.create_index("ix_solves_owner_status_created", "solves", ["owner", "status", "created_at", "id"])


def _runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("solve_id", sa.Uuid(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("agent_config", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("exit_status", sa.String(100), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("sandbox_id", sa.String(255), nullable=True),
        sa.Column("base_commit", sa.String(64), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("checkpoint_key", sa.String(1024), nullable=True),
        sa.Column("trajectory_key", sa.String(1024), nullable=True),
        sa.Column("patch_key", sa.String(1024), nullable=True),
        sa.Column("log_key", sa.String(1024), nullable=True),
        sa.Column("patch_stats", JSON, nullable=True),
        sa.Column("tests", JSON, nullable=True),
        *_timestamps(),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name=op.f("ck_runs_status_valid")),
        sa.ForeignKeyConstraint(["solve_id"], ["solves.id"], name=op.f("fk_runs_solve_id_solves"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("solve_id", "index", name=op.f("uq_runs_solve_id_index")),
    )
    op.create_index("ix_runs_status_heartbeat", "runs", ["status", "heartbeat_at"])


def _events() -> None:
    op.create_table(
        "events",
        sa.Column("seq", SEQ, sa.Identity(always=False), nullable=False),
        sa.Column("solve_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=True),
        sa.CheckConstraint(_in("kind", EVENT_KINDS), name=op.f("ck_events_kind_valid")),
        sa.ForeignKeyConstraint(
            ["solve_id"], ["solves.id"], name=op.f("fk_events_solve_id_solves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )
    op.create_index("ix_events_solve_seq", "events", ["solve_id", "seq"])


def upgrade() -> None:
    _registry()
    _solves()
    _runs()
    _events()


def downgrade() -> None:
    for table in ("events", "runs", "solves", "ai_models", "agent_configs"):
        op.drop_table(table)
