"""Seed the registry with the bundled agent configurations and well-known models.

Prices are left empty for models litellm already prices; operators add or deactivate rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AGENT_CONFIGS = [
    {"name": "default", "base": "mini.yaml", "overrides": {}, "is_default": True},
    {"name": "swebench", "base": "benchmarks/swebench.yaml", "overrides": {}, "is_default": False},
]
MODELS = [
    ("anthropic/claude-sonnet-4-5", "anthropic"),
    ("anthropic/claude-opus-4-5", "anthropic"),
    ("anthropic/claude-haiku-4-5", "anthropic"),
    ("openai/gpt-5", "openai"),
    ("openai/gpt-5-mini", "openai"),
    ("gemini/gemini-2.5-pro", "gemini"),
]


def upgrade() -> None:
    now = datetime.now(UTC)
    configs = sa.table(
        "agent_configs",
        sa.column("name", sa.String),
        sa.column("base", sa.String),
        sa.column("overrides", sa.JSON),
        sa.column("is_default", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    models = sa.table(
        "ai_models",
        sa.column("name", sa.String),
        sa.column("provider", sa.String),
        sa.column("model_kwargs", sa.JSON),
        sa.column("is_active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(configs, [row | {"created_at": now} for row in AGENT_CONFIGS])
    op.bulk_insert(
        models,
        [
            {"name": name, "provider": provider, "model_kwargs": {}, "is_active": True, "created_at": now}
            for name, provider in MODELS
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ai_models"))
    op.execute(sa.text("DELETE FROM agent_configs"))
