"""The solve-level steps around the runs: BeginSolve, PickChampion, FinishSolve, FailSolve.

Champion order: tests passed > the patch leaves existing tests and their configuration alone
(`modifies_tests`) > the agent submitted > a smaller patch > a lower cost (then the lower index, so
the choice is deterministic). A solve with no patch at all fails, with the reason.
A solve whose failed runs will still be retried (retryable, attempts left) is not finished yet: it
stays running until the sweeper has resumed them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from solver_core.artifacts import keys
from solver_core.errors import IllegalTransition
from solver_core.models import Publication, RunView, SolveView
from solver_core.ports import ArtifactStore
from solver_core.publish.service import should_publish
from solver_core.services.events import EventService
from solver_core.services.runs import RunService
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, EventKind, RunStatus, SolveStatus

DEFAULT_MAX_RUN_ATTEMPTS = 3
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    run: RunView | None
    reason: str


def _has_patch(run: RunView) -> bool:
    return run.status is RunStatus.SUCCEEDED and bool(run.patch_stats and run.patch_stats.files)


def _rank(run: RunView) -> tuple[bool, bool, bool, int, float, int]:
    stats = run.patch_stats
    size = (stats.added + stats.removed) if stats else 0
    passed = bool(run.tests and run.tests.passed)
    return (not passed, bool(run.modifies_tests), run.exit_status != "Submitted", size, run.cost_usd, run.index)


def describe(run: RunView) -> str:
    stats = run.patch_stats
    tests = "no tests run" if run.tests is None else ("tests passed" if run.tests.passed else "tests failed")
    if run.tests is not None and run.tests.detected:
        tests += f" (detected: {run.tests.command})"
    if run.modifies_tests:
        tests += " (the patch modifies tests)"
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


def will_retry(run: RunView, max_attempts: int) -> bool:
    return run.status is RunStatus.FAILED and run.retryable and run.attempt + 1 < max_attempts


class SolveFlow:
    def __init__(
        self,
        runs: RunService,
        events: EventService,
        artifacts: ArtifactStore,
        *,
        max_run_attempts: int = DEFAULT_MAX_RUN_ATTEMPTS,
        notify: Callable[[SolveView], None] | None = None,
        publish: Callable[[UUID], Publication] | None = None,
    ) -> None:
        self._runs = runs
        self._events = events
        self._artifacts = artifacts
        self.max_run_attempts = max_run_attempts
        self._notify = notify or (lambda _solve: None)
        self._publish = publish

    def begin(self, solve_id: UUID, run_ids: list[UUID] | None = None) -> dict[str, Any]:
        """BeginSolve: mark the solve running and list its queued runs (all, or the given ones)."""
        solve = self._runs.solve(solve_id)
        if solve.status in {SolveStatus.QUEUED, SolveStatus.FAILED}:
            with contextlib.suppress(IllegalTransition):
                if solve.status is SolveStatus.FAILED:  # a resume of a solve that had ended failed
                    self._runs.move_solve(solve_id, SolveStatus.QUEUED)
                self._runs.move_solve(solve_id, SolveStatus.RUNNING)
        wanted = set(run_ids) if run_ids is not None else None
        queued = [r for r in solve.runs if r.status is RunStatus.QUEUED and (wanted is None or r.id in wanted)]
        return {
            "solve_id": str(solve_id),
            "max_parallel": max(1, min(solve.max_parallel, len(queued) or 1)),
            "runs": [{"solve_id": str(solve_id), "run_id": str(r.id)} for r in queued],
        }

    def pending_retries(self, solve: SolveView) -> list[RunView]:
        return [r for r in solve.runs if will_retry(r, self.max_run_attempts)]

    def pick(self, solve_id: UUID) -> Choice:
        """PickChampion: choose and record the champion (its patch is also stored at solve level)."""
        solve = self._runs.solve(solve_id)
        if solve.status.is_cancelled:
            return Choice(None, "the solve was cancelled: no champion")
        choice = pick_champion(solve.runs)
        if choice.run is not None:
            patch = self._artifacts.get(keys.patch(solve_id, choice.run.id))
            self._artifacts.put(keys.champion_patch(solve_id), patch, content_type="text/x-diff")
            self._runs.set_solve_fields(solve_id, champion_run_id=choice.run.id)
        champion = str(choice.run.id) if choice.run else None
        self._events.append(solve_id, EventKind.LOG, choice.reason, data={"champion_run_id": champion})
        return choice

    def finish(self, solve_id: UUID) -> SolveView:
        """FinishSolve: succeeded with a champion, failed without; cancelled if being cancelled."""
        solve = self._runs.solve(solve_id)
        if solve.status in {SolveStatus.CANCELLING, SolveStatus.CANCELLED}:
            return self.finish_cancel(solve_id)
        if solve.status in SOLVE_TERMINAL:
            return solve
        if pending := self.pending_retries(solve):
            self._events.append(solve_id, EventKind.LOG, f"waiting for {len(pending)} run(s) to be retried")
            return solve
        try:
            if solve.champion_run_id is not None:
                done = self._runs.move_solve(solve_id, SolveStatus.SUCCEEDED)
            else:
                done = self._runs.move_solve(solve_id, SolveStatus.FAILED, error=pick_champion(solve.runs).reason)
        except IllegalTransition:
            return self._runs.solve(solve_id)  # cancelled meanwhile: its state wins
        self._notify(done)
        return done

    def fail(self, solve_id: UUID, error: str, cause: str) -> SolveView:
        """FailSolve: something outside the runs broke; unfinished runs are failed as retryable."""
        solve = self._runs.solve(solve_id)
        for run in solve.runs:
            if run.status not in RUN_TERMINAL:
                with contextlib.suppress(IllegalTransition):
                    self._runs.move(run.id, RunStatus.FAILED, error=f"{error}: {cause}"[:2000], retryable=True)
        with contextlib.suppress(IllegalTransition):
            done = self._runs.move_solve(solve_id, SolveStatus.FAILED, error=f"{error}: {cause}"[:2000])
            self._notify(done)
        return self._runs.solve(solve_id)

    def finish_cancel(self, solve_id: UUID) -> SolveView:
        """Mark every unfinished run cancelled, then the solve (idempotent)."""
        solve = self._runs.solve(solve_id)
        for run in solve.runs:
            if run.status not in RUN_TERMINAL:
                with contextlib.suppress(IllegalTransition):
                    self._runs.move(run.id, RunStatus.CANCELLED, error="cancelled")
        if solve.status is SolveStatus.CANCELLING:
            with contextlib.suppress(IllegalTransition):
                self._notify(self._runs.move_solve(solve_id, SolveStatus.CANCELLED))
        return self._runs.solve(solve_id)

    def wants_publish(self, solve: SolveView) -> bool:
        """FinishSolve's answer to the state machine's ShouldPublish choice."""
        return should_publish(solve)

    def publish(self, solve_id: UUID) -> Publication | None:
        """PublishResults: post the result to GitHub. Never raises: publishing never fails a solve."""
        if self._publish is None:
            self._events.append(solve_id, EventKind.ERROR, "publishing failed: no publisher is configured")
            return None
        try:
            return self._publish(solve_id)
        except Exception:  # the service records its own errors; this is the last line of defence
            log.exception("publishing solve %s failed", solve_id)
            return None

    def run_and_finish(self, solve_id: UUID) -> SolveView:
        """PickChampion then FinishSolve, as one call (the local orchestrator, the CLI)."""
        self.pick(solve_id)
        return self.finish(solve_id)
