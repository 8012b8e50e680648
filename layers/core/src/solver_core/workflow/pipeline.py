"""The steps of one run together: RunSteps, the agent step, and what combines them (CollectArtifacts
stores the agent's records too; RecordRunFailure keeps what the run produced before marking it)."""

from __future__ import annotations

import logging
from uuid import UUID

from solver_core.models import RunKind
from solver_core.status import RunStatus
from solver_core.workflow.agent_step import AgentStep
from solver_core.workflow.steps import RunSteps, StepDeps

log = logging.getLogger(__name__)


class RunPipeline:
    def __init__(self, deps: StepDeps) -> None:
        self.deps = deps
        self.steps = RunSteps(deps)
        self.agent = AgentStep(self.steps)

    def collect(self, run_id: UUID) -> bool:
        has_patch = self.steps.collect(run_id)
        ctx = self.deps.runs.context(run_id)
        if ctx.run.kind is RunKind.ATTEMPT:  # the baseline has no agent, so no records
            self.agent.store_records(ctx)
        return has_patch

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
