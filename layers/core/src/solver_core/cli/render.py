"""How the CLI shows a solve: a live table of its runs with their events, then a summary, the
champion's diff and where everything was stored."""

from __future__ import annotations

import threading
from pathlib import PurePath
from typing import TYPE_CHECKING

from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from solver_core.cli.output import console
from solver_core.models import EventView, RunView, SolveView
from solver_core.rules import REPLAY_PREFIX
from solver_core.selection import summary
from solver_core.status import EventKind, Outcome, state_label

if TYPE_CHECKING:
    from solver_core.wiring import Container

POLL_S = 0.25
STYLE = {EventKind.STEP: "cyan", EventKind.ERROR: "red", EventKind.STATUS: "bold", EventKind.LOG: "dim"}


def validation_message(exc: ValidationError) -> str:
    """Every broken rule on one line: `field: message [rule]; …`."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "request"
        parts.append(f"{field}: {error['msg']} [{error['type']}]")
    return "; ".join(parts)


def model_label(model: str) -> str:
    """Replays are labelled as such: they are scripted, no LLM is involved."""
    if model.startswith(REPLAY_PREFIX):
        return f"{PurePath(model.removeprefix(REPLAY_PREFIX)).stem} (replay)"
    return model


def title(solve: SolveView) -> str:
    outcome = "" if solve.outcome is Outcome.PENDING else f" · outcome: {solve.outcome.label}"
    return f"solve {solve.id} — {state_label(solve.status)}{outcome}"


def runs_table(solve: SolveView, last: dict[str, str]) -> Table:
    table = Table(title=title(solve), title_justify="left", expand=False)
    for column in ("run", "model", "state", "steps", "cost", "latest"):
        table.add_column(column, overflow="fold")
    for run in solve.runs:
        latest = last.get(str(run.id), "")
        table.add_row(str(run.index), model_label(run.model), state_label(run.status), str(run.steps),
                      f"${run.cost_usd:.4f}", escape(latest[:70]))  # fmt: skip
    if solve.baseline is not None:  # the tests on the base commit, alongside the attempts
        latest = last.get(str(solve.baseline.id), "")
        table.add_row("base", "baseline", state_label(solve.baseline.status), "-", "-", escape(latest[:70]))
    return table


def live_runs(container: Container, solve: SolveView, worker: threading.Thread, *, quiet: bool) -> None:
    """Refresh the runs table and print solve-level events until the worker finishes."""
    from rich.live import Live  # here, not at import: `solver status` shows no live table

    after, last = 0, dict[str, str]()
    with Live(runs_table(solve, last), console=console, refresh_per_second=4, transient=True) as live:
        while True:
            alive = worker.is_alive()
            for event in container.events.read(solve.owner, solve.id, after=after, limit=500):
                after = event.seq
                if event.run_id:
                    last[str(event.run_id)] = event.message
                if not quiet and _worth_a_line(event):
                    live.console.print(_line(event, solve), soft_wrap=True)
            if not quiet:
                live.update(runs_table(container.runs.solve(solve.id), last))
            if not alive:
                return
            worker.join(POLL_S)  # the next refresh, or at once when the solve is done


def _worth_a_line(event: EventView) -> bool:
    return event.kind is not EventKind.STEP


def _line(event: EventView, solve: SolveView) -> str:
    index = next((str(r.index) for r in solve.runs if r.id == event.run_id), "")
    who = f"run {index}: " if index else ("baseline: " if solve.baseline and event.run_id == solve.baseline.id else "")
    return f"[{STYLE[event.kind]}]{event.at:%H:%M:%S} {who}{escape(event.message)}[/]"


def print_summary(solve: SolveView, container: Container, patch: str | None) -> None:
    from rich.syntax import Syntax  # Pygments: only where a diff is shown

    table = Table(title=title(solve), title_justify="left")
    for column in ("run", "model", "state", "outcome", "exit", "steps", "cost", "patch", "tests"):
        table.add_column(column, overflow="fold", no_wrap=column in {"state", "exit", "tests"})
    for run in solve.runs:
        marker = " ★" if run.id == solve.champion_run_id else ""
        cells = (run.exit_status or "-", str(run.steps), f"${run.cost_usd:.4f}", _patch(run), tests_cell(run))
        table.add_row(f"{run.index}{marker}", model_label(run.model), state_label(run.status), _outcome(run), *cells)
    console.print(table)
    print_tests_line(solve)
    if any(run.model.startswith(REPLAY_PREFIX) for run in solve.runs):
        console.print("[dim](replay) runs repeat scripted actions: no LLM was called.[/]")
    if solve.error:
        console.print(f"[red]{escape(solve.error)}[/]")
    for run in solve.runs:
        if run.error:
            console.print(f"[red]run {run.index}: {escape(run.error)}[/]")
    print_selection(solve)
    champion = next((r for r in solve.runs if r.id == solve.champion_run_id), None)
    if champion is not None and patch:
        console.print(f"\n[bold]champion: run {champion.index} ({escape(model_label(champion.model))})[/]")
        console.print(Syntax(patch, "diff", theme="ansi_dark", word_wrap=True))
    print_locations(solve, container)


def print_selection(solve: SolveView) -> None:
    """How the candidates ranked (the solve's `selection`) and why the champion won."""
    selection = solve.selection
    if selection is None or not selection.runs:
        return
    console.print("\n[bold]selection[/]")
    if selection.baseline is not None:
        console.print(f"  baseline: {escape(summary.baseline_line(selection.baseline))}")
    for signals in selection.runs:
        console.print(f"  run {signals.index}: {escape(summary.signals_line(signals))}")
    if selection.reproduction is not None:
        console.print(f"  reproduction: {escape(summary.reproduction_line(selection.reproduction))}")
    if selection.judge is not None:
        console.print(f"  judge: {escape(summary.judge_line(selection.judge))}")
    console.print(f"  [bold]why:[/] {escape(selection.reason)}")


def _patch(run: RunView) -> str:
    stats = run.patch_stats
    return f"{stats.files} files +{stats.added} -{stats.removed}" if stats else "-"


def _outcome(run: RunView) -> str:
    colour = {Outcome.TESTS_PASSED: "green", Outcome.TESTS_FAILED: "red", Outcome.NO_PATCH: "dim"}.get(run.outcome)
    return f"[{colour}]{run.outcome.label}[/]" if colour else run.outcome.label


def tests_cell(run: RunView) -> str:
    """The tests column: passed/failed (with the exit code), detected, and whether the patch
    modifies the tests that judged it."""
    label = verdict_label(run, f"failed ({run.tests.exit_code})" if run.tests else "failed")
    return f"{label}, detected" if run.tests is not None and run.tests.detected else label


def verdict_label(run: RunView, failed: str = "failed") -> str:
    """Passed/failed, and whether the patch modifies the tests that judged it."""
    if run.tests is None:
        return "-"
    label = "passed" if run.tests.passed else failed
    return f"{label}, modifies tests" if run.modifies_tests else label


def print_tests_line(solve: SolveView) -> None:
    """Which tests judged the patches, and whether Solver found them itself."""
    if solve.test_command:
        console.print(f"tests: {escape(solve.test_command)} (given)")
        return
    detected = next((run.tests.command for run in solve.runs if run.tests and run.tests.detected), None)
    detected = detected or next((run.detected_test_command for run in solve.runs if run.detected_test_command), None)
    if detected:
        console.print(f"tests: {escape(detected)} [bold](detected from the repository)[/]")
    elif not solve.detect_tests:
        console.print("tests: none (--no-tests)")
    else:
        console.print("[yellow]tests: none given and none detected; give one with --test-command[/]")


def print_locations(solve: SolveView, container: Container) -> None:
    settings = container.settings
    database = settings.home / "solver.db" if settings.uses_sqlite else "PostgreSQL (SOLVER_DATABASE_URL)"
    console.print(f"\ndatabase:   {database}")
    if settings.artifacts_bucket:
        console.print(f"artifacts:  s3://{settings.artifacts_bucket}/{settings.artifacts_prefix}solves/{solve.id}/")
    else:
        console.print(f"artifacts:  {settings.resolved_artifacts_dir / 'solves' / str(solve.id)}")
    for run in solve.runs:
        if key := run.artifacts.get("trajectory"):
            console.print(f"trajectory of run {run.index}: {container.artifacts.url(key)}")
