"""One run from launch to release, as the step sequence the state machine and the local
orchestrator both follow; failures go through RecordRunFailure and the sandbox is always released."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from solver_core.errors import SolverError
from solver_core.models import RunKind, RunView
from solver_core.status import RunStatus
from solver_core.store.outage import database_unavailable
from solver_core.workflow.agent_step import AgentStep, Budget
from solver_core.workflow.commands import UNLIMITED, Window
from solver_core.workflow.retry import LAUNCH_RULES, STEP_RULES, VERIFY_RULES, RetryRule, call_with_retries
from solver_core.workflow.steps import RunSteps, StepDeps

log = logging.getLogger(__name__)

AgentInvoker = Callable[[UUID], bool]
T = TypeVar("T")


class RunPipeline:
    def __init__(self, deps: StepDeps) -> None:
        self.deps = deps
        self.steps = RunSteps(deps)
        self.agent = AgentStep(self.steps)

    def launch(self, run_id: UUID) -> str:
        return self.steps.launch(run_id)

    def prepare(self, run_id: UUID, window: Window = UNLIMITED) -> bool:
        return self.steps.prepare(run_id, window)

    def run_agent(self, run_id: UUID, budget: Budget) -> bool:
        run = self.deps.runs.get(run_id)
        if run.kind is RunKind.BASELINE:  # no agent: its (empty) patch and the tests follow at once
            if run.status is RunStatus.PREPARING:
                self.deps.runs.move(run_id, RunStatus.SOLVING)
            return True
        return self.agent.run(run_id, budget)

    def collect(self, run_id: UUID) -> bool:
        has_patch = self.steps.collect(run_id)
        ctx = self.deps.runs.context(run_id)
        if ctx.run.kind is RunKind.ATTEMPT:
            self.agent.store_records(ctx)
        return has_patch

    def verify(self, run_id: UUID, window: Window = UNLIMITED) -> bool:
        return self.steps.verify(run_id, window)

    def release(self, run_id: UUID) -> bool:
        return self.steps.release(run_id)

    def record_failure(self, run_id: UUID, error: str, message: str, *, retryable: bool | None = None) -> RunStatus:
        """Keep what the run produced (trajectory, log), then release and mark it."""
        try:
            ctx = self.deps.runs.context(run_id)
            # A succeeded run's records are written; a run the cancel marked cancelled first still
            # needs its trajectory (the fault suite found those missing).
            if ctx.run.status is not RunStatus.SUCCEEDED and ctx.run.kind is RunKind.ATTEMPT:
                self.agent.store_records(ctx)
        except Exception:  # the failure itself matters more than a missing trajectory
            log.exception("could not store the records of failed run %s", run_id)
        return self.steps.record_failure(run_id, error, message, retryable=retryable)

    def run_to_end(
        self, run_id: UUID, *, invoke_agent: AgentInvoker | None = None, retry_time_scale: float = 1.0
    ) -> RunView:
        """Every step in order, in this process, with the state machine's in-place retries;
        `invoke_agent` runs one RunAgent invocation (by default in-process, `agent_chunk_steps` at a
        time) and says whether the agent is done."""
        chunk = self.deps.settings.agent_chunk_steps
        invoke = invoke_agent or (lambda rid: self.run_agent(rid, Budget(max_steps=chunk)))
        if self.deps.runs.get(run_id).kind is RunKind.BASELINE:
            invoke = lambda rid: self.run_agent(rid, Budget(max_steps=chunk))  # noqa: E731 (no agent to invoke)

        def retried(step: Callable[[], T], rules: tuple[RetryRule, ...] = STEP_RULES) -> T:
            return call_with_retries(step, rules, time_scale=retry_time_scale)

        sandbox_id: str | None = None
        try:
            sandbox_id = retried(lambda: self.launch(run_id), LAUNCH_RULES)
            # Without an invocation limit PrepareRepository and VerifyPatch wait for their commands
            # in one call; the loops are the state machine's, for the same code path.
            while not retried(lambda: self.prepare(run_id)):
                pass
            while not retried(lambda: invoke(run_id)):
                pass
            retried(lambda: self.collect(run_id))
            while not retried(lambda: self.verify(run_id), VERIFY_RULES):
                pass
        except SolverError as exc:
            self._record_failure(run_id, type(exc).__name__, exc.message)
        except Exception as exc:
            log.exception("run %s failed unexpectedly", run_id)
            # A database that stayed down longer than the services wait is an outage: resumable.
            self._record_failure(run_id, type(exc).__name__, str(exc), retryable=database_unavailable(exc) or None)
        finally:
            self._release(run_id, sandbox_id)
        return self.deps.runs.get(run_id)

    def _record_failure(self, run_id: UUID, error: str, message: str, *, retryable: bool | None = None) -> None:
        try:
            self.record_failure(run_id, error, message, retryable=retryable)
        except Exception:  # the database is still down: the sweeper finds the run by its stale heartbeat
            log.exception("could not record the failure of run %s", run_id)

    def _release(self, run_id: UUID, sandbox_id: str | None) -> None:
        """ReleaseSandbox, and if the database cannot say which sandbox, the one this run launched:
        a sandbox must not outlive its run because the database was down."""
        try:
            self.release(run_id)
        except Exception:
            log.exception("could not release the sandbox of run %s through the database", run_id)
            if sandbox_id is not None:
                with contextlib.suppress(SolverError):
                    self.deps.sandboxes.kill(sandbox_id)
