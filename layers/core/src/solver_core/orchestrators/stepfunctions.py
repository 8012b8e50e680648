"""Solves as Step Functions executions of statemachine/solve.asl.json.

An execution is named after its solve, so starting twice is harmless (ExecutionAlreadyExists means
it already started). A resume execution, started by the sweeper for re-queued runs, is named after
the solve and the attempt, so each attempt gets exactly one.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from solver_core.errors import SolverError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class OrchestratorUnavailable(SolverError):
    code = "orchestrator_unavailable"
    hint = "retry with the same Idempotency-Key; the sweeper also starts queued solves"
    status = 503
    retryable = True


class SfnOrchestrator:
    name = "stepfunctions"

    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._sfn = client
        self.state_machine_arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{name}"

    def start(self, solve_id: UUID) -> str:
        return self._start(str(solve_id), {"solve_id": str(solve_id), "run_ids": None})

    def resume(self, solve_id: UUID, run_ids: list[UUID], attempt: int) -> str:
        """An execution for re-queued runs only; one per (solve, attempt, runs)."""
        digest = hashlib.sha256(",".join(sorted(map(str, run_ids))).encode()).hexdigest()[:8]
        name = f"{solve_id}-retry{attempt}-{digest}"
        return self._start(name, {"solve_id": str(solve_id), "run_ids": [str(r) for r in run_ids]})

    def _start(self, name: str, payload: dict[str, Any]) -> str:
        try:
            started = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                return self.execution_arn(name)
            raise OrchestratorUnavailable(f"could not start execution {name}: {exc}") from exc
        except BotoCoreError as exc:
            raise OrchestratorUnavailable(f"could not start execution {name}: {exc}") from exc
        return started["executionArn"]

    def stop(self, solve_id: UUID, execution_ref: str | None, reason: str) -> None:
        arn = execution_ref or self.execution_arn(str(solve_id))
        try:
            self._sfn.stop_execution(executionArn=arn, error="Cancelled", cause=reason[:32_000])
        except ClientError as exc:
            if _code(exc) != "ExecutionDoesNotExist":
                raise OrchestratorUnavailable(f"could not stop {arn}: {exc}") from exc

    def is_running(self, execution_ref: str | None) -> bool:
        if not execution_ref:
            return False
        try:
            return self._sfn.describe_execution(executionArn=execution_ref)["status"] == "RUNNING"
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                return False
            raise OrchestratorUnavailable(f"could not describe {execution_ref}: {exc}") from exc

    def check(self) -> None:
        try:
            self._sfn.describe_state_machine(stateMachineArn=self.state_machine_arn)
        except (ClientError, BotoCoreError) as exc:
            raise OrchestratorUnavailable(f"state machine not reachable: {exc}") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class SfnBatchOrchestrator:
    """Batches as executions of statemachine/batch.asl.json, named after the batch: its Distributed Map
    reads the items file from the artifacts bucket and starts each solve's execution itself."""

    name = "stepfunctions"

    def __init__(self, client: SFNClient, state_machine_arn: str, bucket: str, prefix: str = "") -> None:
        self._sfn = client
        self.state_machine_arn = state_machine_arn
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def start(self, batch_id: UUID, items_key: str, max_concurrency: int) -> str:
        name = str(batch_id)
        payload = {
            "batch_id": name,
            "bucket": self._bucket,
            "items_key": self._prefix + items_key,
            "max_concurrency": max_concurrency,
        }
        try:
            started = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                return self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
            raise OrchestratorUnavailable(f"could not start the execution of batch {name}: {exc}") from exc
        except BotoCoreError as exc:
            raise OrchestratorUnavailable(f"could not start the execution of batch {name}: {exc}") from exc
        return started["executionArn"]

    def stop(self, batch_id: UUID, execution_ref: str | None, reason: str) -> None:
        arn = execution_ref or self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{batch_id}"
        try:
            self._sfn.stop_execution(executionArn=arn, error="Cancelled", cause=reason[:32_000])
        except ClientError as exc:
            if _code(exc) != "ExecutionDoesNotExist":
                raise OrchestratorUnavailable(f"could not stop {arn}: {exc}") from exc
