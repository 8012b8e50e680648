"""Alembic environment: runs on a connection handed over by `solver_core.db.migrate`, or a URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from solver_core.db.engine import make_engine
from solver_core.db.schema import Base

# Serialises concurrent upgrades (several Lambda cold starts, a deploy hook and a CLI) on PostgreSQL.
MIGRATION_LOCK_ID = 0x501E_0001


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as fresh:
        _run(fresh)
    engine.dispose()


main()
