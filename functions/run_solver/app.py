"""Step Functions task handlers, the retry sweeper and the execution reconciler (thin adapters)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from solver_core.observability import (
    bind_solve,
    configure_lambda_logging,
    get_tracer,
    logger,
    metrics,
    record_run_finished,
    record_sweep,
)
from solver_core.orchestrators.stepfunctions import SfnOrchestrator
from solver_core.orchestrators.tasks import TaskContext, handle
from solver_core.secrets import FUNCTION_SECRETS, SecretNeeds
from solver_core.services.batches import reconcile_batch
from solver_core.wiring import container
from solver_core.workflow.sweeper import Sweeper

FINISHING_STEPS = ("verify", "record_failure")  # the two ways a run ends
tracer = get_tracer()


@cache
def _sweeper(needs: SecretNeeds) -> Sweeper:
    built = container(needs)
    assert isinstance(built.orchestrator, SfnOrchestrator), "the sweeper runs where a state machine is configured"
    return built.sweeper()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One state of the solve state machine (or the batch state machine's FinishBatch); ids only."""
    configure_lambda_logging()
    bind_solve(event.get("solve_id", ""))
    built = container(FUNCTION_SECRETS["RunSolverFunction"])
    task = TaskContext(
        built.pipeline(), built.flow(), built.settings, context.get_remaining_time_in_millis, batches=built.batches
    )
    result = handle(event, task)
    if event.get("step") in FINISHING_STEPS and result.get("done", True):  # VerifyPatch may go on
        record_run_finished(result["status"], result["cost_usd"])
    return result


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def sweeper(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge schedule: fail stale runs, resume retryable ones, finish orphans, reap sandboxes."""
    report = _sweeper(FUNCTION_SECRETS["SweeperFunction"]).sweep()
    record_sweep(
        stale=len(report.stale),
        requeued=len(report.requeued),
        reaped=len(report.killed_sandboxes),
        errors=len(report.errors),
    )
    return vars(report)


@logger.inject_lambda_context(log_event=False)
def reconciler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge rule on Step Functions executions (solves and batches) that ended ABORTED, FAILED or TIMED_OUT."""
    detail = event.get("detail", {})
    arn, status = detail.get("executionArn", ""), detail.get("status", "")
    built = container(FUNCTION_SECRETS["ReconcilerFunction"])
    machine = built.settings.batch_state_machine_arn
    batch = reconcile_batch(built.batches, built.runs, built.flow(), arn, state_machine_arn=machine, status=status)
    if batch is not None:
        return {"batch_status": batch.status}
    solve = _sweeper(FUNCTION_SECRETS["ReconcilerFunction"]).reconcile(arn, status)
    return {"solve_status": solve.status.value if solve else None}
