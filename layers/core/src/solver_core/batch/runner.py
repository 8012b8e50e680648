"""Running a batch on this machine: each instance is a solve (external_ref = its instance id), at
most `workers` at a time, with its outputs rewritten after every instance (docs/architecture.md,
"Batches")."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import ValidationError

from solver_core import rules
from solver_core.artifacts import keys
from solver_core.batch.instances import Instance
from solver_core.batch.outputs import (
    BatchState,
    InstanceRecord,
    Outcome,
    predictions,
    read_state,
    write_atomic,
    write_json,
)
from solver_core.batch.requests import (
    BatchOptions,
    build_request,
    classify,
    instance_models,
    instance_selector,
    solve_cost,
)
from solver_core.errors import ArtifactNotFound, ExecutionEnded, ReplayNotFound, SolverError
from solver_core.models import RunView, SolveView
from solver_core.status import RUN_TERMINAL, RunStatus, SolveStatus

if TYPE_CHECKING:
    from solver_core.orchestrators.local import AgentInvoker
    from solver_core.wiring import Container

log = logging.getLogger(__name__)


class BatchRunner:
    def __init__(
        self,
        container: Container,
        options: BatchOptions,
        instances: list[Instance],
        *,
        invoke_agent: AgentInvoker | None = None,
        after_instance: Callable[[Instance, InstanceRecord], None] | None = None,
    ) -> None:
        self.container = container
        self.options = options
        self.instances = instances
        self.policy = rules.RequestPolicy.from_settings(container.settings)
        self.orchestrator = container.local_orchestrator(invoke_agent=invoke_agent)
        self._after_instance = after_instance
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        out = options.output
        self.state = read_state(out / "batch.json") or BatchState(
            name=options.name, models=options.models, attempts=options.attempts
        )
        self.state.name, self.state.models, self.state.attempts = options.name, options.models, options.attempts
        self.state.total_instances = len(instances)
        self.patches = self._read_patches()

    # --- files ---------------------------------------------------------------------------------

    def _read_patches(self) -> dict[str, str]:
        path = self.options.output / "preds.json"
        if not path.exists():
            return {}
        import json

        data = json.loads(path.read_text())
        return {iid: str(entry.get("model_patch") or "") for iid, entry in data.items()}

    def save(self) -> None:
        """Rewrite batch.json and preds.json (atomically)."""
        with self._lock:
            self.state.tally()
            out = self.options.output
            write_json(out / "batch.json", self.state)
            preds = predictions(self.state, self.patches)
            write_json(out / "preds.json", {iid: p.model_dump() for iid, p in preds.items()})

    def _write_instance_files(self, instance: Instance, solve: SolveView) -> None:
        folder = self.options.output / instance.instance_id
        folder.mkdir(parents=True, exist_ok=True)
        runs = [self._run_summary(r) for r in solve.runs]
        write_json(folder / "runs.json", {"solve_id": str(solve.id), "status": solve.status.value, "runs": runs})
        champion = next((r for r in solve.runs if r.id == solve.champion_run_id), None)
        trajectory = folder / f"{instance.instance_id}.traj.json"
        if champion is not None and "trajectory" in champion.artifacts:
            with contextlib.suppress(ArtifactNotFound):
                write_atomic(trajectory, self.container.artifacts.get(champion.artifacts["trajectory"]))
        elif trajectory.exists():
            trajectory.unlink()  # a --redo that found no champion must not keep the old one

    @staticmethod
    def _run_summary(run: RunView) -> dict[str, Any]:
        return {
            "index": run.index,
            "model": run.model,
            "status": run.status.value,
            "exit_status": run.exit_status,
            "attempt": run.attempt,
            "steps": run.steps,
            "cost_usd": run.cost_usd,
            "patch_stats": run.patch_stats.model_dump() if run.patch_stats else None,
            "tests_passed": run.tests.passed if run.tests else None,
            "error": run.error,
        }

    # --- running -------------------------------------------------------------------------------

    def todo(self) -> list[Instance]:
        """The instances this invocation runs: all with --redo, else those without a final outcome."""
        if self.options.redo:
            return list(self.instances)
        return [i for i in self.instances if not self.state.record(i.instance_id).outcome.final]

    def run(self) -> BatchState:
        todo = self.todo()
        with self._lock:
            for instance in self.instances:
                record = self.state.record(instance.instance_id)
                if instance in todo and record.outcome is not Outcome.RUNNING:
                    record.outcome = Outcome.PENDING
            self.save()
        with ThreadPoolExecutor(max_workers=max(1, self.options.workers), thread_name_prefix="instance") as pool:
            list(pool.map(self._instance_logged, todo))
        self.save()
        return self.state

    def spent(self) -> float:
        """Cost so far: finished instances from the state, running ones from their runs."""
        with self._lock:
            records = list(self.state.instances.values())
        total = 0.0
        for record in records:
            if record.outcome is Outcome.RUNNING and record.solve_id is not None:
                with contextlib.suppress(SolverError):
                    total += solve_cost(self.container.runs.solve(record.solve_id))
                    continue
            total += record.cost_usd
        return total

    def stop(self) -> None:
        """Start no more instances (running ones are left to the caller)."""
        self._stopping.set()

    def running_solves(self) -> list[UUID]:
        with self._lock:
            return [
                r.solve_id
                for r in self.state.instances.values()
                if r.outcome is Outcome.RUNNING and r.solve_id is not None
            ]

    def _instance_logged(self, instance: Instance) -> None:
        try:
            self._instance(instance)
        except Exception as exc:  # one instance never stops the batch
            log.exception("instance %s failed", instance.instance_id)
            self._finish(instance, Outcome.INFRA_ERROR, f"{type(exc).__name__}: {exc}", None)

    def _instance(self, instance: Instance) -> None:
        iid = instance.instance_id
        limit = self.options.cost_limit_total
        if self._stopping.is_set():
            return
        if limit is not None and self.spent() >= limit:
            self._finish(instance, Outcome.NOT_STARTED, f"--cost-limit-total ${limit:.2f} reached", None)
            return
        record = self.state.record(iid)
        started = time.monotonic()
        resumable = record.solve_id is not None and not self.options.redo and not record.outcome.final
        solve = self._resumable_solve(record.solve_id) if resumable and record.solve_id else None
        if solve is None:
            try:
                models = instance_models(self.options.models, iid)
                selector = instance_selector(self.options, iid)
                request = build_request(instance, self.options, self.policy, models=models, selector_model=selector)
            except (ReplayNotFound, ValidationError) as exc:
                self._finish(instance, Outcome.ERROR, str(exc), None)
                return
            solve = self.container.solves.start(self.options.owner, request).solve
        with self._lock:
            record.solve_id, record.outcome, record.error = solve.id, Outcome.RUNNING, None
            record.started_at = record.started_at or datetime.now(UTC)
            self.save()
        if solve.status is SolveStatus.QUEUED:
            self.orchestrator.execute(solve.id)
        else:
            self._resume(solve)
        final = self.container.runs.solve(solve.id)
        outcome, error = classify(final)
        if outcome is Outcome.PATCH:
            self.patches[iid] = self._champion_patch(final)
        else:
            self.patches.pop(iid, None)
        self._write_instance_files(instance, final)
        self._finish(instance, outcome, error, final, duration_s=time.monotonic() - started)

    def _resumable_solve(self, solve_id: UUID) -> SolveView | None:
        """The instance's earlier solve, when it can go on: interrupted, or failed for infrastructure
        reasons (its runs resume from their checkpoints); None to start a new one."""
        try:
            solve = self.container.runs.solve(solve_id)
        except SolverError:
            return None
        if solve.status in {SolveStatus.SUCCEEDED, SolveStatus.CANCELLING, SolveStatus.CANCELLED}:
            return None
        return solve

    def _resume(self, solve: SolveView) -> None:
        """Runs left active by an interrupted process are failed as resumable (their sandboxes are
        killed), then every resumable run is queued again and the solve goes on from checkpoints."""
        pipeline = self.orchestrator.pipeline
        for run in solve.all_runs:  # the baseline too
            if run.status not in RUN_TERMINAL:
                pipeline.record_failure(
                    run.id, ExecutionEnded.__name__, "the batch stopped while this run was active", retryable=True
                )
        for run in self.container.runs.solve(solve.id).all_runs:
            if run.status is RunStatus.FAILED and run.retryable:
                self.container.runs.move(run.id, RunStatus.QUEUED)
        self.orchestrator.execute(solve.id)

    def _champion_patch(self, solve: SolveView) -> str:
        try:
            return self.container.artifacts.get(keys.champion_patch(solve.id)).decode(errors="replace")
        except ArtifactNotFound:
            return ""

    def _finish(
        self,
        instance: Instance,
        outcome: Outcome,
        error: str | None,
        solve: SolveView | None,
        *,
        duration_s: float | None = None,
    ) -> None:
        with self._lock:
            record = self.state.record(instance.instance_id)
            record.outcome, record.error = outcome, error
            if solve is not None:
                record.cost_usd = solve_cost(solve)
                record.runs = len(solve.runs)
            if duration_s is not None:
                record.duration_s = round(record.duration_s + duration_s, 3)
            record.finished_at = datetime.now(UTC)
            self.save()
        if self._after_instance is not None:
            self._after_instance(instance, record)
