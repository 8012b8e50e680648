"""The `solver` command line, on the embedded defaults unless SOLVER_* settings say otherwise."""

from __future__ import annotations

import typer

from solver_core.cli import batch, client, db, demo, doctor, internal, owners, serve, solve, template

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Turn issues into tested patches.")
app.add_typer(db.app, name="db")
app.add_typer(owners.app, name="owners")
app.add_typer(internal.app, name="internal", hidden=True)
app.add_typer(template.app, name="template")
app.command("solve")(solve.solve)
app.command("publish")(solve.publish)
app.command("resume")(solve.resume)
app.command("batch")(batch.batch)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("doctor")(doctor.run_doctor)
app.command("status")(client.status)
app.command("list")(client.list_solves)
app.command("cancel")(client.cancel)
app.command("events")(client.events)


def main() -> None:
    app()
