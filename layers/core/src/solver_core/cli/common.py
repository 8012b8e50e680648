"""What the commands share: the console, the local owner and a migrated container."""

from __future__ import annotations

from collections.abc import Sequence

import typer
from rich.markup import escape

from solver_core.cli.output import console
from solver_core.errors import SolverError
from solver_core.settings import Settings, local_owner
from solver_core.wiring import Container, build_container

__all__ = ["console", "local_owner", "open_container"]


def open_container(settings: Settings, *, settle: bool = True) -> Container:
    """The container on migrated storage: the embedded database is created or upgraded on first use.
    Solves left unfinished by a process that ended are settled first (cli/liveness.py)."""
    from solver_core.db.revision import at_newest

    container = build_container(settings)
    if not at_newest(container.engine):
        from solver_core.db.migrate import upgrade  # alembic takes a while to import: only when needed

        upgrade(container.engine)
    if settle:
        from solver_core.cli.liveness import settle_orphans

        settle_orphans(container)
    return container


def ensure_ready(settings: Settings, models: Sequence[str] = (), repo: str | None = None) -> None:
    """The preflight (solver_core.readiness): a missing key, git, bubblewrap or repository stops the
    command here, in one line, before any sandbox, clone or database row; warnings are printed."""
    from solver_core.readiness.doctor import preflight

    try:
        warnings = preflight(settings, models, repo)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    for warning in warnings:
        console.print(f"[yellow]warning: {escape(warning.line)}[/]", soft_wrap=True)
