"""Solves left behind by a process that ended: settled when a command starts, marked in
`solver list` and `solver status`, continued by `solver resume` (docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from solver_core.cli.output import console
from solver_core.models import SolveView
from solver_core.status import SOLVE_TERMINAL
from solver_core.workflow import process_ref

if TYPE_CHECKING:
    from solver_core.wiring import Container


def settle_orphans(container: Container) -> list[str]:
    """Settle the solves whose local process ended (one query when there are none): their runs
    are failed as retryable and their sandboxes killed, so `solver resume` can continue them."""
    queries = container.run_queries
    orphans = [s for s in queries.open_solves_run_by(process_ref.PREFIX) if process_ref.process_ended(s.execution_ref)]
    if not orphans:
        return []
    report = container.sweeper(container.local_orchestrator()).settle_orphans()
    for solve in orphans:
        console.print(f"[yellow]solve {solve.id} was left unfinished by a process that ended[/]")
    for error in report.errors:
        console.print(f"[red]could not settle an unfinished solve: {error}[/]")
    return report.settled


def stalled_note(solve: SolveView, stale_after_s: int, now: datetime | None = None) -> str | None:
    """Why an unfinished solve is not making progress, or None when it is (or has ended)."""
    if solve.status in SOLVE_TERMINAL:
        return None
    ref = process_ref.parse(solve.execution_ref)
    if ref is not None and not process_ref.is_this_process(ref):
        return None if process_ref.process_alive(ref) else f"interrupted: `solver resume {solve.id}` continues it"
    last = max([solve.updated_at, *(r.heartbeat_at or r.started_at or r.created_at for r in solve.runs)])
    if (now or datetime.now(UTC)) - last > timedelta(seconds=stale_after_s):
        return f"no heartbeat since {last:%Y-%m-%d %H:%M} UTC"
    return None
