"""`solver db …`: schema management."""

from __future__ import annotations

import typer

from solver_core.cli.common import console
from solver_core.db.engine import make_engine
from solver_core.db.migrate import current_revision, head_revision, upgrade
from solver_core.settings import local_cli_settings

app = typer.Typer(no_args_is_help=True, help="Database schema management.")


@app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the schema migrations to the configured database (SQLite file by default)."""
    settings = local_cli_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    where = "SQLite " + str(settings.home / "solver.db") if settings.uses_sqlite else "PostgreSQL"
    console.print(f"database ({where}) at revision [bold]{after}[/] (was {before or 'empty'})")


@app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one this version knows."""
    settings = local_cli_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        typer.echo(f"current: {current_revision(engine) or 'empty'}\nhead: {head_revision()}")
    finally:
        engine.dispose()
