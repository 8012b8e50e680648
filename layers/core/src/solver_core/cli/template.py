"""`solver template build`: the e2b template that cloud sandboxes start from."""

from __future__ import annotations

import typer

from solver_core.cli.common import console
from solver_core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The e2b sandbox template.")


@app.command("build")
def build(
    name: str = typer.Option(
        "", help="Template name ('name' or 'name:tag'); default SOLVER_SANDBOX_TEMPLATE or 'solver'."
    ),
    cpu: int = typer.Option(2, min=1, help="vCPUs of each sandbox."),
    memory_mb: int = typer.Option(4096, min=512, help="Memory of each sandbox."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the template as a Dockerfile and stop."),
) -> None:
    """Build Solver's e2b template (git, ripgrep, build tools, Python, Node)."""
    from solver_core.sandbox import template

    if dry_run:
        typer.echo(template.dockerfile())
        return
    settings = Settings()
    target = name or settings.sandbox_template or template.DEFAULT_NAME
    key = settings.e2b_api_key.get_secret_value() if settings.e2b_api_key else None
    console.print(f"building e2b template [bold]{target}[/] …")
    info = template.build(
        target, api_key=key, cpu_count=cpu, memory_mb=memory_mb, on_log=lambda e: console.print(str(e))
    )
    console.print(f"built: {info}")
