"""The retry sweeper (an EventBridge schedule) and the execution reconciler (Step Functions status
changes). Together they guarantee that no run hangs and no sandbox leaks:

- runs with a stale heartbeat whose execution is no longer running are failed as retryable;
- retryable failed runs are re-queued (bounded attempts, backoff) and resumed by a new execution,
  which continues from their checkpoints;
- solves left open with nothing running and nothing to retry are finished;
- queued solves whose execution never started (the start request failed) are started;
- sandboxes (found by metadata) whose runs are terminal or unknown are killed;
- an execution that is aborted, fails or times out has its unfinished runs finalized;
- a solve whose local process ended (`kill -9` of `solver solve`, a crashed `solver serve`) is
  settled the same way at once: its runs are failed as retryable, to be resumed.

One item that fails (a solve whose start is refused, a sandbox that cannot be killed) is logged
and reported in `SweepReport.errors`; the sweep goes on with the others, and reaping always runs.
Solves that the sweeper or the reconciler finish are published like any other (PublishResults).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol
from uuid import UUID

from solver_core.errors import ExecutionEnded, IllegalTransition, StaleHeartbeat
from solver_core.models import RunView, SolveView
from solver_core.ports import SandboxBackend
from solver_core.settings import Settings
from solver_core.status import RUN_TERMINAL, RunStatus, SolveStatus
from solver_core.store.run_queries import RunQueries
from solver_core.workflow import process_ref
from solver_core.workflow.champion import SolveFlow
from solver_core.workflow.pipeline import RunPipeline

log = logging.getLogger(__name__)


class Resumer(Protocol):
    def start(self, solve_id: UUID) -> str: ...

    def resume(self, solve_id: UUID, run_ids: list[UUID], attempt: int) -> str: ...

    def is_running(self, execution_ref: str | None) -> bool: ...


@dataclass
class SweepReport:
    started: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    killed_sandboxes: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)  # "<solve>:<status>" of solves whose process ended
    errors: list[str] = field(default_factory=list)  # "<what> <item>: <ErrorType>: <message>"


class Sweeper:
    def __init__(
        self, *, pipeline: RunPipeline, flow: SolveFlow, orchestrator: Resumer, settings: Settings, queries: RunQueries
    ) -> None:
        self.pipeline = pipeline
        self.runs = pipeline.deps.runs
        self.queries = queries
        self.sandboxes: SandboxBackend = pipeline.deps.sandboxes
        self.flow = flow
        self.orchestrator = orchestrator
        self.settings = settings

    def sweep(self, now: datetime | None = None) -> SweepReport:
        now = now or datetime.now(UTC)
        report = SweepReport()
        phases = (self._settle_orphans, self._start_forgotten, self._fail_stale, self._requeue, self._finish_open)
        for phase in phases:
            _guarded(report, phase.__name__.strip("_").replace("_", " "), "", partial(phase, now, report))
        _guarded(report, "reap sandboxes", "", partial(self._reap_sandboxes, report))
        return report

    def settle_orphans(self) -> SweepReport:
        """Only the cheap part, for every command's start: solves whose local process ended."""
        report = SweepReport()
        _guarded(report, "settle orphans", "", partial(self._settle_orphans, datetime.now(UTC), report))
        return report

    def _settle_orphans(self, now: datetime, report: SweepReport) -> None:
        for solve in self.queries.open_solves_run_by(process_ref.PREFIX):
            if process_ref.process_ended(solve.execution_ref):
                why = "the process running it ended"
                _guarded(report, "settle orphan", str(solve.id), partial(self._settle, solve.id, why, report))

    def _settle(self, solve_id: UUID, why: str, report: SweepReport) -> SolveView:
        """Fail the solve's unfinished runs as retryable (which kills their sandboxes), then finish
        it: it waits for its retries, or ends and is published."""
        solve = self.runs.solve(solve_id)
        for run in solve.all_runs:
            if run.status not in RUN_TERMINAL:
                self.pipeline.record_failure(run.id, ExecutionEnded.__name__, why)
        settled = self._finish_and_publish(solve_id, report)
        report.settled.append(f"{solve_id}:{settled.status.value}")
        return settled

    def _start_forgotten(self, now: datetime, report: SweepReport) -> None:
        cutoff = now - timedelta(seconds=self.settings.retry_backoff_s)
        # A batch's queued solves wait for its Distributed Map (max_concurrency): never started here.
        for solve in self.queries.open_solves((SolveStatus.QUEUED,), cutoff, with_batched=False):
            _guarded(report, "start solve", str(solve.id), partial(self._start_one, solve, report))

    def _start_one(self, solve: SolveView, report: SweepReport) -> None:
        if solve.execution_ref is None:
            ref = self.orchestrator.start(solve.id)
        elif self.orchestrator.is_running(solve.execution_ref):
            return
        else:  # its execution ended before BeginSolve ran: a fresh one, under a new name
            queued = [r for r in solve.all_runs if r.status is RunStatus.QUEUED]
            if not queued:
                return
            ref = self.orchestrator.resume(solve.id, [r.id for r in queued], max(r.attempt for r in queued))
        self.runs.set_solve_fields(solve.id, execution_ref=ref)
        report.started.append(ref)

    def _fail_stale(self, now: datetime, report: SweepReport) -> None:
        cutoff = now - timedelta(seconds=self.settings.stale_heartbeat_s)
        for run in self.queries.stale_runs(cutoff):
            _guarded(report, "fail stale run", str(run.id), partial(self._fail_stale_one, run, report))

    def _fail_stale_one(self, run: RunView, report: SweepReport) -> None:
        solve = self.runs.solve(run.solve_id)
        if self.orchestrator.is_running(solve.execution_ref):
            return  # a long step of a live execution; its own retries and timeouts apply
        self.pipeline.record_failure(run.id, StaleHeartbeat.__name__, "no heartbeat and no running execution")
        report.stale.append(str(run.id))

    def _requeue(self, now: datetime, report: SweepReport) -> None:
        cutoff = now - timedelta(seconds=self.settings.retry_backoff_s)
        by_solve: dict[UUID, list[RunView]] = defaultdict(list)
        for run in self.queries.retryable_runs(self.settings.max_run_attempts, cutoff):
            by_solve[run.solve_id].append(run)
        for solve_id, runs in by_solve.items():
            _guarded(report, "resume solve", str(solve_id), partial(self._requeue_solve, solve_id, runs, report))

    def _requeue_solve(self, solve_id: UUID, runs: list[RunView], report: SweepReport) -> None:
        solve = self.runs.solve(solve_id)
        if solve.status in {SolveStatus.SUCCEEDED, SolveStatus.CANCELLED, SolveStatus.CANCELLING}:
            return
        if self.orchestrator.is_running(solve.execution_ref):
            return  # its execution will finish; resume afterwards
        requeued = [r for r in runs if self._requeue_run(r)]
        if requeued:
            attempt = max(r.attempt for r in requeued) + 1
            ref = self.orchestrator.resume(solve_id, [r.id for r in requeued], attempt)
            self.runs.set_solve_fields(solve_id, execution_ref=ref)
            report.requeued += [str(r.id) for r in requeued]
            report.resumed.append(ref)

    def _requeue_run(self, run: RunView) -> bool:
        try:
            self.runs.move(run.id, RunStatus.QUEUED)
        except IllegalTransition:
            return False
        return True

    def _finish_open(self, now: datetime, report: SweepReport) -> None:
        cutoff = now - timedelta(seconds=self.settings.stale_heartbeat_s)
        statuses = (SolveStatus.RUNNING, SolveStatus.CANCELLING)
        for solve in self.queries.open_solves(statuses, cutoff):
            _guarded(report, "finish solve", str(solve.id), partial(self._finish_one, solve, report))

    def _finish_one(self, solve: SolveView, report: SweepReport) -> None:
        if _has_live_runs(solve) or self.orchestrator.is_running(solve.execution_ref):
            return
        if solve.status is SolveStatus.RUNNING and self.flow.pending_retries(solve):
            return
        done = self._finish_and_publish(solve.id, report)
        report.finished.append(f"{solve.id}:{done.status.value}")

    def _finish_and_publish(self, solve_id: UUID, report: SweepReport) -> SolveView:
        """PickChampion, FinishSolve and, when the solve asked for it, PublishResults: a solve the
        sweeper or the reconciler finishes is published like one its execution finished."""
        done = self.flow.run_and_finish(solve_id)
        if self.flow.wants_publish(done):
            self.flow.publish(solve_id)  # never raises: its errors are events on the solve
            report.published.append(str(solve_id))
            return self.runs.solve(solve_id)
        return done

    def _reap_sandboxes(self, report: SweepReport) -> None:
        found = self.sandboxes.list({"app": "solver", "stack": self.settings.stack_name})
        ids = {info.id: _uuid(info.metadata.get("run_id")) for info in found}
        known = self.queries.run_ids_known([run_id for run_id in ids.values() if run_id])
        for sandbox_id, run_id in ids.items():
            status = known.get(run_id) if run_id else None
            if status is None or status in RUN_TERMINAL:
                _guarded(report, "kill sandbox", sandbox_id, partial(self._kill, sandbox_id, report))

    def _kill(self, sandbox_id: str, report: SweepReport) -> None:
        self.sandboxes.kill(sandbox_id)
        report.killed_sandboxes.append(sandbox_id)

    def reconcile(self, execution_arn: str, status: str, report: SweepReport | None = None) -> SolveView | None:
        """An execution ended ABORTED, FAILED or TIMED_OUT: settle what it left unfinished."""
        solve_id = _uuid(execution_arn.rsplit(":", 1)[-1][:36])
        if solve_id is None:
            return None
        solve = self.runs.solve(solve_id)
        if solve.execution_ref and solve.execution_ref != execution_arn:
            return solve  # an older execution; a newer one owns the solve now
        return self._settle(solve_id, f"the execution ended {status}", report or SweepReport())


def _guarded(report: SweepReport, what: str, item: str, action: Callable[[], object]) -> None:
    """Run one item of the sweep; its failure is logged and reported, and the sweep goes on."""
    try:
        action()
    except Exception as exc:  # any one item (or phase) failing must not stop the others
        log.exception("sweeper: %s %s failed", what, item)
        report.errors.append(" ".join(filter(None, (what, item)))[:200] + f": {type(exc).__name__}: {exc}"[:1000])


def _has_live_runs(solve: SolveView) -> bool:
    return any(r.status not in RUN_TERMINAL for r in solve.all_runs)


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
