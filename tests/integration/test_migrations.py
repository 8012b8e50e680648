"""One Alembic history upgrades an empty PostgreSQL and an empty SQLite, and matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from solver_core.db.engine import make_engine, make_sessions
from solver_core.db.migrate import alembic_config, current_revision, downgrade, head_revision, upgrade
from solver_core.db.revision import at_newest, newest_revision
from solver_core.db.schema import AgentConfigRow, AIModelRow, Base

pytestmark = pytest.mark.integration

TABLES = {"solves", "runs", "events", "ai_models", "agent_configs", "alembic_version", "owner_allowlist", "batches"}


def test_upgrade_from_empty_creates_the_schema_the_models_describe(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
        assert drift == []
    finally:
        engine.dispose()


def test_upgrade_seeds_the_registry_and_is_repeatable(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second deploy or CLI run changes nothing
        with make_sessions(engine)() as session:
            default = session.scalars(select(AgentConfigRow.name).where(AgentConfigRow.is_default)).all()
            models = session.scalars(select(AIModelRow.name)).all()
        assert default == ["default"]
        assert "anthropic/claude-sonnet-4-5" in models
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_the_command_lines_revision_check_agrees_with_alembic(empty_database_url: str) -> None:
    """`open_container` skips Alembic when the database is at the newest file's number: that number
    must be Alembic's head, and every migration's revision its file's number."""
    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    assert all(Path(s.path).name.split("_", 1)[0] == s.revision for s in scripts)
    assert newest_revision() == head_revision()
    engine = make_engine(empty_database_url)
    try:
        assert not at_newest(engine)  # no alembic_version table yet
        upgrade(engine)
        assert at_newest(engine)
        downgrade(engine, "-1")
        assert not at_newest(engine)  # one behind: the command line migrates
    finally:
        engine.dispose()
