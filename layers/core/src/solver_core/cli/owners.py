"""`solver owners …`: the per-owner allowlists of a deployment (services/allowlist.py).

An administrator runs these against the deployment's database (SOLVER_DATABASE_URL). An owner is
the identity the API sees: a Cognito or JWT `sub`, a Lambda authorizer's principal, or an IAM ARN
(of an assumed role, without its session name).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import inspect

from solver_core.cli.common import console
from solver_core.errors import SolverError
from solver_core.settings import Settings
from solver_core.wiring import Container, build_container

app = typer.Typer(no_args_is_help=True, help="Who may use the deployment's Git credentials and publishing, where.")

Owner = Annotated[str, typer.Argument(help="The owner, as the API identifies callers.")]
Target = Annotated[str, typer.Argument(help="org, org/repo, or host/org[/repo] (github.com when no host).")]


def open_container(settings: Settings) -> Container:
    """The deployment's database as it is: an administration command never migrates it."""
    container = build_container(settings)
    if "owner_allowlist" not in inspect(container.engine).get_table_names():
        container.close()
        console.print("[red]the database has no allowlist table yet: run `solver db upgrade` first[/]")
        raise typer.Exit(2)
    return container


@app.command("list")
def list_entries(
    owner: Annotated[str | None, typer.Argument(help="Only this owner's entries.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List allowlist entries (all owners', or one's)."""
    container = open_container(Settings())
    try:
        entries = container.allowlist.entries(owner)
    finally:
        container.close()
    if as_json:
        shown = [
            {"owner": e.owner, "target": e.target, "allow_workflows": e.allow_workflows,
             "created_at": e.created_at.isoformat() if e.created_at else None}
            for e in entries
        ]  # fmt: skip
        typer.echo(json.dumps(shown, indent=2))
        return
    if not entries:
        console.print("no allowlist entries" + (f" for {escape(owner)}" if owner else ""))
    for e in entries:
        flag = "  (may change .github/workflows/)" if e.allow_workflows else ""
        typer.echo(f"{e.owner}\t{e.target}{flag}")


@app.command("add")
def add(
    owner: Owner,
    target: Target,
    allow_workflows: Annotated[
        bool, typer.Option("--allow-workflows", help="Draft pull requests may change .github/workflows/.")
    ] = False,
) -> None:
    """Allow an owner to use the deployment's credentials and publishing on a repository or organisation
    (adding an existing entry again sets its workflow flag)."""
    container = open_container(Settings())
    try:
        grant = container.allowlist.add(owner, target, allow_workflows=allow_workflows)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    flag = " (may change .github/workflows/)" if grant.allow_workflows else ""
    console.print(f"{escape(grant.owner)} may use {escape(grant.target)}{flag}")


@app.command("remove")
def remove(owner: Owner, target: Target) -> None:
    """Remove an entry; exits 1 when there was none."""
    container = open_container(Settings())
    try:
        removed = container.allowlist.remove(owner, target)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    if not removed:
        console.print(f"[yellow]{escape(owner)} has no entry for {escape(target)}[/]")
        raise typer.Exit(1)
    console.print(f"removed: {escape(owner)} {escape(target)}")
