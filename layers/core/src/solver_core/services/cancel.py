"""Cancelling a solve: mark it cancelling, stop the execution, kill its sandboxes so in-flight
commands fail within about a second, and mark what is left cancelled. Idempotent; a solve that
already finished is returned as it is.

The execution is stopped before the sandboxes die: a killed command fails its step at once, and an
execution still running would then go on to record the failures, pick a champion and finish the
solve itself, racing the cancel's own finish."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from solver_core.errors import IllegalTransition, SolverError
from solver_core.models import SolveView
from solver_core.ports import CancelFinisher, Orchestrator, SandboxBackend
from solver_core.services.events import EventService
from solver_core.services.runs import RunService
from solver_core.services.solves import SolveService
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, EventKind, SolveStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CancelOutcome:
    solve: SolveView
    changed: bool  # False when the solve had already finished or been cancelled


class CancelService:
    def __init__(
        self,
        *,
        solves: SolveService,
        runs: RunService,
        events: EventService,
        sandboxes: SandboxBackend,
        orchestrator: Orchestrator,
        champion: CancelFinisher,
    ) -> None:
        self._solves = solves
        self._runs = runs
        self._events = events
        self._sandboxes = sandboxes
        self._orchestrator = orchestrator
        self._champion = champion

    def cancel(self, owner: str, solve_id: UUID, reason: str = "cancelled by request") -> CancelOutcome:
        solve = self._solves.get(owner, solve_id)  # another owner's solve is not found
        if solve.status in SOLVE_TERMINAL:
            return CancelOutcome(solve, changed=False)
        if solve.status is not SolveStatus.CANCELLING:
            try:
                self._runs.move_solve(solve_id, SolveStatus.CANCELLING)
            except IllegalTransition:  # it finished (or was cancelled by another call) a moment ago
                return CancelOutcome(self._solves.get(owner, solve_id), changed=False)
        self._events.append(solve_id, EventKind.LOG, reason)
        try:
            self._orchestrator.stop(solve_id, solve.execution_ref, reason)
        except SolverError as exc:  # the runs notice the cancel at their next check anyway
            log.warning("could not stop the execution of solve %s: %s", solve_id, exc)
        finally:
            self._kill_sandboxes(solve)
        return CancelOutcome(self._champion.finish_cancel(solve_id), changed=True)

    def _kill_sandboxes(self, solve: SolveView) -> None:
        for run in solve.all_runs:
            if run.sandbox_id and run.status not in RUN_TERMINAL:
                try:
                    self._sandboxes.kill(run.sandbox_id)
                except SolverError as exc:
                    log.warning("could not kill sandbox %s: %s", run.sandbox_id, exc)
