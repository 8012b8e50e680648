"""The `solver` command line, on the embedded defaults unless SOLVER_* settings say otherwise."""

from __future__ import annotations

import typer

from solver_core.cli import db, demo, internal, solve

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Turn issues into tested patches.")
app.add_typer(db.app, name="db")
app.add_typer(internal.app, name="internal", hidden=True)
app.command("solve")(solve.solve)
app.command("demo")(demo.demo)


def main() -> None:
    app()
