"""GET /solves/{id}/stats: per run and per solve, computed from the solve view alone."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from solver_core.api.schemas import RunStats, SolveStats
from solver_core.models import RunView, SolveView
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, RunStatus


def _seconds(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    if start is None:
        return None
    return round(max(((end or now) - start).total_seconds(), 0.0), 3)


def run_progress(run: RunView, step_limit: int) -> float | None:
    """Steps taken of the step limit, as a percentage, while the run is active; None otherwise."""
    if run.status in RUN_TERMINAL:
        return None
    if run.status is RunStatus.QUEUED:
        return 0.0
    return round(min(100.0, 100.0 * run.steps / max(step_limit, 1)), 1)


def run_stats(run: RunView, step_limit: int, now: datetime) -> RunStats:
    patch = run.patch_stats
    return RunStats(
        id=run.id,
        index=run.index,
        model=run.model,
        status=run.status,
        files_changed=patch.files if patch else None,
        lines_added=patch.added if patch else None,
        lines_removed=patch.removed if patch else None,
        duration_s=_seconds(run.started_at, run.finished_at, now),
        steps=run.steps,
        step_limit=step_limit,
        cost_usd=run.cost_usd,
        tokens=run.tokens,
        progress_pct=run_progress(run, step_limit),
    )


def solve_stats(solve: SolveView, now: datetime | None = None) -> SolveStats:
    now = now or datetime.now(UTC)
    step_limit = solve.limits.step_limit
    runs = [run_stats(r, step_limit, now) for r in solve.runs]
    champion = next((r for r in solve.runs if r.id == solve.champion_run_id), None)
    patch = champion.patch_stats if champion else None
    progress = None
    if solve.status not in SOLVE_TERMINAL and runs:
        progress = round(sum(100.0 if r.progress_pct is None else r.progress_pct for r in runs) / len(runs), 1)
    return SolveStats(
        id=solve.id,
        status=solve.status,
        runs_total=len(runs),
        runs_by_status=dict(Counter(r.status.value for r in solve.runs)),
        files_changed=patch.files if patch else None,
        lines_added=patch.added if patch else None,
        lines_removed=patch.removed if patch else None,
        duration_s=_seconds(solve.created_at, solve.finished_at, now) or 0.0,
        steps=sum(r.steps for r in solve.runs),
        cost_usd=round(sum(r.cost_usd for r in solve.runs) + solve.selection_cost_usd, 6),  # the judge's too
        tokens=sum(r.tokens for r in solve.runs),
        progress_pct=progress,
        runs=runs,
    )
