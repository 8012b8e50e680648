"""`solver doctor`: is this machine ready? One line per check: ✓, ✗ or ! (a warning), with the fix."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape

from solver_core.cli.common import console
from solver_core.readiness.checks import Check, Level
from solver_core.readiness.doctor import doctor
from solver_core.settings import local_cli_settings

MARK = {Level.OK: "[green]✓[/]", Level.WARNING: "[yellow]![/]", Level.ERROR: "[red]✗[/]"}


class DoctorReport(BaseModel):
    ok: bool
    checks: list[Check]


def run_doctor(
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Also check this model (repeatable); it must be usable.")
    ] = None,
    sandbox: Annotated[str | None, typer.Option(help="Check this sandbox backend: local, docker or e2b.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check that this machine can run solves: git, bubblewrap, the sandbox backend, the database,
    the artifacts folder and the models. The exit code is 1 when any check fails (✗)."""
    if sandbox is not None and sandbox not in {"local", "docker", "e2b"}:
        raise typer.BadParameter("must be local, docker or e2b", param_hint="--sandbox")
    settings = local_cli_settings(**({"sandbox": sandbox} if sandbox else {}))
    checks = doctor(settings, model or [])
    report = DoctorReport(ok=all(c.level is not Level.ERROR for c in checks), checks=checks)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for check in checks:
            fix = f" [dim]→ {escape(check.fix)}[/]" if check.fix else ""
            console.print(f"{MARK[check.level]} {escape(check.name)}: {escape(check.detail)}{fix}", soft_wrap=True)
        failed = sum(c.level is Level.ERROR for c in checks)
        warned = sum(c.level is Level.WARNING for c in checks)
        console.print(f"\n{failed} problem(s), {warned} warning(s)" if failed or warned else "\nall good")
    raise typer.Exit(0 if report.ok else 1)
