"""The `solver` command line, on the embedded defaults unless SOLVER_* settings say otherwise."""

from __future__ import annotations

import typer
from rich.console import Console

from solver_core.db.engine import make_engine
from solver_core.db.migrate import current_revision, head_revision, upgrade
from solver_core.settings import local_cli_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Turn issues into tested patches.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema management.")
app.add_typer(db_app, name="db")
console = Console(stderr=True)


@db_app.command("upgrade")
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


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one this version knows."""
    settings = local_cli_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        typer.echo(f"current: {current_revision(engine) or 'empty'}\nhead: {head_revision()}")
    finally:
        engine.dispose()


def main() -> None:
    app()
