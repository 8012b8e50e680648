"""`solver status`, `solver list`, `solver cancel` and `solver events`: the API's reads and cancel,
directly on the local database (the embedded defaults unless SOLVER_* settings say otherwise),
as this machine's user, who owns the solves that `solver solve` and `solver serve` started."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.markup import escape
from rich.table import Table

from solver_core.cli.liveness import stalled_note
from solver_core.cli.output import console
from solver_core.cli.render import tests_cell
from solver_core.errors import SolverError
from solver_core.models import EventView, SolveView
from solver_core.presenters import solve_out
from solver_core.settings import Settings, local_cli_settings, local_owner
from solver_core.status import SOLVE_TERMINAL, EventKind, Outcome, SolveStatus, state_label
from solver_core.wiring import build_artifact_store
from solver_core.workflow import process_ref

if TYPE_CHECKING:
    from solver_core.ports import ArtifactStore
    from solver_core.wiring import Container

FOLLOW_POLL_S = 1.0
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
STYLE = {EventKind.STEP: "cyan", EventKind.ERROR: "red", EventKind.STATUS: "bold", EventKind.LOG: "dim"}


@contextmanager
def _container(settings: Settings | None = None) -> Iterator[Container]:
    from solver_core.cli.common import open_container  # SQLAlchemy and the services: not for a direct read

    container = open_container(settings or local_cli_settings())
    try:
        yield container
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        raise typer.Exit(1) from exc
    finally:
        container.close()


def status(solve_id: UUID, as_json: JsonFlag = False) -> None:
    """Show a solve: its status, runs and artifact links."""
    settings = local_cli_settings()
    solve = _read_directly(settings, solve_id)
    if solve is not None:
        _show(solve, build_artifact_store(settings), settings.stale_heartbeat_s, as_json=as_json)
        return
    with _container(settings) as container:
        solve = container.solves.get(local_owner(), solve_id)
        _show(solve, container.artifacts, settings.stale_heartbeat_s, as_json=as_json)


def _read_directly(settings: Settings, solve_id: UUID) -> SolveView | None:
    """The solve read through the database driver, without importing SQLAlchemy (store/direct_read.py),
    when reading is all there is to do. None leaves it to the container: a database to create or
    migrate, a solve left by a process that ended to settle (open_container does both), a solve not
    found (the service's error says so), a database URL only SQLAlchemy reads, or a driver error."""
    from solver_core.store.direct_read import driver_errors, open_reader

    try:
        reader = open_reader(settings.resolved_database_url)
        if reader is None:
            return None
        try:
            if not reader.at_newest():
                return None
            if any(process_ref.process_ended(ref) for ref in reader.open_execution_refs(process_ref.PREFIX)):
                return None
            return reader.solve(local_owner(), solve_id)
        finally:
            reader.close()
    except driver_errors():
        return None


def _show(solve: SolveView, artifacts: ArtifactStore, stale_after_s: int, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_with_note(solve, artifacts, stale_after_s), indent=2))
    else:
        _print_solve(solve, artifacts, stale_after_s)


def list_solves(
    status: Annotated[SolveStatus | None, typer.Option(help="Only solves in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    cursor: Annotated[str | None, typer.Option(help="The next page, as printed after a full page.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List your solves, newest first."""
    with _container() as container:
        page = container.solves.list(local_owner(), status=status, limit=limit, cursor=cursor)
        if as_json:
            stale_after_s = container.settings.stale_heartbeat_s
            items = [_with_note(s, container.artifacts, stale_after_s) for s in page.items]
            typer.echo(json.dumps({"items": items, "next_cursor": page.next_cursor}, indent=2))
            return
        table = Table(title_justify="left")
        table.add_column("id", no_wrap=True)  # copied into other commands: never split
        for column in ("state", "outcome", "created", "repository", "issue", "runs"):
            table.add_column(column)
        for s in page.items:
            note = stalled_note(s, container.settings.stale_heartbeat_s)
            shown = f"{state_label(s.status)} [yellow]({escape(note)})[/]" if note else state_label(s.status)
            created = f"{s.created_at:%Y-%m-%d %H:%M}"
            cells = (created, s.repo_url, escape(s.issue.title), str(len(s.runs)))
            table.add_row(str(s.id), shown, s.outcome.label, *cells)
        console.print(table)
        if page.next_cursor:
            console.print(f"more: solver list --cursor {page.next_cursor}")


def cancel(solve_id: UUID, as_json: JsonFlag = False) -> None:
    """Cancel a solve (idempotent); a finished solve is left as it is."""
    with _container() as container:
        outcome = container.cancel_service().cancel(local_owner(), solve_id, reason="cancelled from the command line")
        if as_json:
            out = solve_out(outcome.solve, container.artifacts).model_dump(mode="json")
            typer.echo(json.dumps({"changed": outcome.changed, "solve": out}, indent=2))
        elif outcome.changed:
            console.print(f"solve {solve_id} {outcome.solve.status.value}")
        else:
            console.print(f"solve {solve_id} had already finished: {outcome.solve.status.value}")


def events(
    solve_id: UUID,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the solve ends.")] = False,
    after: Annotated[int, typer.Option(min=0, help="Only events after this sequence number.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print a solve's events; with --follow, as they happen."""
    with _container() as container:
        owner = local_owner()
        try:
            while True:
                batch = container.events.read(owner, solve_id, after=after, limit=500)
                for event in batch:
                    _print_event(event, as_json=as_json)
                after = batch[-1].seq if batch else after
                if not follow or (not batch and container.solves.get(owner, solve_id).status in SOLVE_TERMINAL):
                    return
                if not batch:
                    time.sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def _print_event(event: EventView, *, as_json: bool) -> None:
    if as_json:
        typer.echo(event.model_dump_json())
        return
    style = STYLE[event.kind]
    console.print(f"[{style}]{event.seq:>6} {event.at:%H:%M:%S} {escape(event.message)}[/]", soft_wrap=True)


def _with_note(solve: SolveView, artifacts: ArtifactStore, stale_after_s: int) -> dict[str, object]:
    """The solve as the API shows it, plus `stalled`: why it makes no progress (None when it does)."""
    shaped = solve_out(solve, artifacts).model_dump(mode="json")
    return shaped | {"stalled": stalled_note(solve, stale_after_s)}


def _print_solve(solve: SolveView, artifacts: ArtifactStore, stale_after_s: int) -> None:
    outcome = "" if solve.outcome is Outcome.PENDING else f" ({solve.outcome.label})"
    console.print(f"solve {solve.id}: [bold]{state_label(solve.status)}{outcome}[/] — {escape(solve.issue.title)}")
    if note := stalled_note(solve, stale_after_s):
        console.print(f"  [yellow]{escape(note)}[/]")
    console.print(f"  {solve.repo_url} @ {solve.ref or '(default branch)'}")
    if solve.error:
        console.print(f"  [red]{escape(solve.error)}[/]")
    table = Table(title_justify="left")
    for column in ("run", "model", "state", "outcome", "steps", "cost", "patch", "tests"):
        table.add_column(column)
    for run in solve.runs:
        stats = run.patch_stats
        champion = " *" if run.id == solve.champion_run_id else ""
        patch = f"{stats.files} files +{stats.added} -{stats.removed}" if stats else "-"
        cells = (str(run.steps), f"${run.cost_usd:.4f}", patch, tests_cell(run))
        table.add_row(f"{run.index}{champion}", run.model, state_label(run.status), run.outcome.label, *cells)
    console.print(table)
    for run in solve.runs:
        for kind, key in sorted(run.artifacts.items()):
            console.print(f"  run {run.index} {kind:11} {artifacts.url(key)}")
