"""How the CLI shows a solve: live events while it runs, a summary and the diff at the end."""

from __future__ import annotations

import threading
import time

from pydantic import ValidationError
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from solver_core.cli.common import console
from solver_core.models import SolveView
from solver_core.status import EventKind
from solver_core.wiring import Container

POLL_S = 0.2
STYLE = {EventKind.STEP: "cyan", EventKind.ERROR: "red", EventKind.STATUS: "bold", EventKind.LOG: "dim"}


def validation_message(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "request"
        lines.append(f"  {field}: {error['msg']} [{error['type']}]")
    return "\n".join(lines)


def follow_events(container: Container, solve: SolveView, worker: threading.Thread, *, quiet: bool) -> None:
    """Print the solve's events as they arrive until the worker finishes."""
    after = 0
    while True:
        alive = worker.is_alive()
        for event in container.events.read(solve.owner, solve.id, after=after, limit=500):
            after = event.seq
            if not quiet:
                console.print(f"[{STYLE[event.kind]}]{event.at:%H:%M:%S} {escape(event.message)}[/]", soft_wrap=True)
        if not alive:
            return
        time.sleep(POLL_S)


def print_summary(solve: SolveView, container: Container, patch: str | None) -> None:
    table = Table(title=f"solve {solve.id} — {solve.status.value}", title_justify="left")
    for column in ("run", "model", "status", "exit", "steps", "cost", "patch", "tests"):
        table.add_column(column)
    for run in solve.runs:
        stats = run.patch_stats
        tests = "-" if run.tests is None else ("passed" if run.tests.passed else f"failed ({run.tests.exit_code})")
        table.add_row(
            str(run.index),
            run.model,
            run.status.value,
            run.exit_status or "-",
            str(run.steps),
            f"${run.cost_usd:.4f}",
            f"{stats.files} files +{stats.added} -{stats.removed}" if stats else "-",
            tests,
        )
    console.print(table)
    if solve.error:
        console.print(f"[red]{escape(solve.error)}[/]")
    for run in solve.runs:
        if run.error:
            console.print(f"[red]run {run.index}: {escape(run.error)}[/]")
        for kind, key in sorted(run.artifacts.items()):
            console.print(f"  {kind:11} {container.artifacts.url(key)}")
    if patch:
        console.print(Syntax(patch, "diff", theme="ansi_dark", word_wrap=True))
    console.print(f"database: {container.settings.resolved_database_url.split('@')[-1]}")
