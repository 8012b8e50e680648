"""PickChampion and FinishSolve: choose the best patch and close the solve (DESIGN §5).

Order: tests passed > the agent submitted > a smaller patch > a lower cost (then the lower index,
so the choice is deterministic). A solve with no patch at all fails, with the reason recorded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from uuid import UUID

from solver_core.artifacts import keys
from solver_core.errors import IllegalTransition
from solver_core.models import RunView, SolveView
from solver_core.ports import ArtifactStore
from solver_core.services.events import EventService
from solver_core.services.runs import RunService
from solver_core.status import RUN_TERMINAL, EventKind, RunStatus, SolveStatus


@dataclass(frozen=True)
class Choice:
    run: RunView | None
    reason: str


def _has_patch(run: RunView) -> bool:
    return run.status is RunStatus.SUCCEEDED and bool(run.patch_stats and run.patch_stats.files)


def _rank(run: RunView) -> tuple[bool, bool, int, float, int]:
    stats = run.patch_stats
    size = (stats.added + stats.removed) if stats else 0
    passed = bool(run.tests and run.tests.passed)
    return (not passed, run.exit_status != "Submitted", size, run.cost_usd, run.index)


def describe(run: RunView) -> str:
    stats = run.patch_stats
    tests = "no tests run" if run.tests is None else ("tests passed" if run.tests.passed else "tests failed")
    submitted = "submitted" if run.exit_status == "Submitted" else f"ended {run.exit_status or 'unknown'}"
    size = f"+{stats.added} -{stats.removed}" if stats else "no patch"
    return f"run {run.index} ({run.model}): {tests}, {submitted}, {size}, ${run.cost_usd:.4f}"


def pick_champion(runs: list[RunView]) -> Choice:
    candidates = [r for r in runs if _has_patch(r)]
    if not candidates:
        failures = "; ".join(f"run {r.index}: {r.error or r.exit_status or r.status.value}" for r in runs)
        return Choice(None, f"no run produced a patch ({failures})" if failures else "no runs")
    best = min(candidates, key=_rank)
    return Choice(best, f"champion is {describe(best)}, best of {len(candidates)} patch(es)")


class ChampionService:
    def __init__(self, runs: RunService, events: EventService, artifacts: ArtifactStore) -> None:
        self._runs = runs
        self._events = events
        self._artifacts = artifacts

    def finish(self, solve_id: UUID) -> SolveView:
        """Pick the champion and end the solve; a cancelling solve ends cancelled instead."""
        solve = self._runs.solve(solve_id)
        if solve.status in {SolveStatus.CANCELLING, SolveStatus.CANCELLED}:
            return self.finish_cancel(solve_id)
        if solve.status in {SolveStatus.SUCCEEDED, SolveStatus.FAILED}:
            return solve
        choice = pick_champion(solve.runs)
        self._events.append(solve_id, EventKind.LOG, choice.reason, data={"champion_run_id": _id(choice.run)})
        try:
            if choice.run is None:
                return self._runs.move_solve(solve_id, SolveStatus.FAILED, error=choice.reason)
            patch = self._artifacts.get(keys.patch(solve_id, choice.run.id))
            self._artifacts.put(keys.champion_patch(solve_id), patch, content_type="text/x-diff")
            return self._runs.move_solve(solve_id, SolveStatus.SUCCEEDED, champion_run_id=choice.run.id)
        except IllegalTransition:
            return self._runs.solve(solve_id)  # cancelled meanwhile: its state wins

    def finish_cancel(self, solve_id: UUID) -> SolveView:
        """Mark every unfinished run cancelled, then the solve (idempotent)."""
        solve = self._runs.solve(solve_id)
        for run in solve.runs:
            if run.status not in RUN_TERMINAL:
                with contextlib.suppress(IllegalTransition):
                    self._runs.move(run.id, RunStatus.CANCELLED, error="cancelled")
        if solve.status is SolveStatus.CANCELLING:
            with contextlib.suppress(IllegalTransition):
                self._runs.move_solve(solve_id, SolveStatus.CANCELLED)
        return self._runs.solve(solve_id)


def _id(run: RunView | None) -> str | None:
    return str(run.id) if run else None
