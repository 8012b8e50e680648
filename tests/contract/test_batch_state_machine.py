"""The batch state machine (statemachine/batch.asl.json): its shape, what moto's interpreter can execute
of it, and how its input and items agree with the code that starts it. Its logic end to end runs
through the local orchestrator in tests/integration/test_batches_api.py (moto 5.2.5 cannot start the
solve executions: docs/architecture.md, "Batches in the cloud")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import pytest

from solver_core.batch.cloud import BatchRequest
from solver_core.batch.instances import Instance
from solver_core.batch.requests import BatchOptions, build_request
from solver_core.db.migrate import upgrade
from solver_core.orchestrators.stepfunctions import SfnBatchOrchestrator, SfnOrchestrator
from solver_core.orchestrators.tasks import BatchTaskEvent, TaskContext, handle
from solver_core.rules import RequestPolicy
from solver_core.status import SolveStatus
from solver_core.wiring import Container, build_container
from solver_core.workflow.retry import LAMBDA_TRANSIENT
from tests.contract.test_state_machine_structure import as_rule, state_blocks, template
from tests.support.aws import use_fake_credentials
from tests.support.runtime import runtime_settings
from tests.support.stepfunctions import StepFunctionsHarness

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "batch.asl.json"
SOLVE_ASL = ROOT / "statemachine" / "solve.asl.json"
BUCKET = "solver-batch-contract"


def definition() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASL.read_text())
    return loaded


def test_placeholders_match_the_templates_substitutions() -> None:
    text = ASL.read_text()
    for match in re.finditer(r"\$\{[^}]+\}", text):
        assert text[match.start() - 1] == '"', f"unquoted placeholder {match.group()}"
    machine = template()["Resources"]["BatchStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachine/batch.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == set(re.findall(r"\$\{([^}]+)\}", text))


def test_every_state_is_reachable_and_every_next_exists() -> None:
    blocks = [definition(), definition()["States"]["RunInstances"]["ItemProcessor"]]
    for block in blocks:
        reached, pending = set(), [block["StartAt"]]
        while pending:
            current = pending.pop()
            if current in reached:
                continue
            reached.add(current)
            state = block["States"][current]
            targets = [state.get("Next"), *[c["Next"] for c in state.get("Catch", [])]]
            for target in filter(None, targets):
                assert target in block["States"], f"{current} → {target}"
                pending.append(target)
            assert state.get("End") or state.get("Next") or state["Type"] == "Fail", current
        assert reached == set(block["States"])


def test_the_instances_run_under_step_functions_own_concurrency_control() -> None:
    """A Distributed Map reading the items file from S3, bounded by the request's max_concurrency, and
    tolerant of every failure (a failed solve never fails the batch)."""
    runs = definition()["States"]["RunInstances"]
    assert runs["Type"] == "Map"
    assert runs["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert runs["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert runs["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert runs["ItemReader"]["Parameters"] == {"Bucket.$": "$.bucket", "Key.$": "$.items_key"}
    assert runs["MaxConcurrencyPath"] == "$.max_concurrency"
    assert runs["ToleratedFailurePercentage"] == 100
    assert runs["ResultPath"] is None  # 500 results never reach the state's 256 KB
    assert runs["Catch"][0]["ErrorEquals"] == ["States.ALL"]


def test_each_instance_is_its_solves_own_execution_as_the_api_would_start_it() -> None:
    processor = definition()["States"]["RunInstances"]["ItemProcessor"]["States"]
    run = processor["RunSolve"]
    assert run["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
    assert run["Parameters"]["StateMachineArn"] == "${SolveStateMachineArn}"
    assert run["Parameters"]["Name.$"] == "$.solve_id"  # SfnOrchestrator names executions after the solve
    started: list[dict[str, Any]] = []

    class Client:
        def start_execution(self, **kwargs: Any) -> dict[str, str]:
            started.append(kwargs)
            return {"executionArn": "arn"}

    SfnOrchestrator(Client(), "arn:aws:states:us-east-1:1:stateMachine:solve").start(UUID(int=1))  # type: ignore[arg-type]
    api_input = json.loads(started[0]["input"])
    asl_input = {k.removesuffix(".$") for k in run["Parameters"]["Input"]} - {
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
    }
    assert asl_input == set(api_input)
    assert run["Parameters"]["Input"]["run_ids"] is api_input["run_ids"] is None
    assert run["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "SolveEnded"}]


def test_finish_batch_states_call_the_batch_step_with_the_lambda_retries() -> None:
    steps = BatchTaskEvent.model_fields["step"].annotation.__args__  # type: ignore[union-attr]
    for name in ("FinishBatch", "FinishFailedBatch"):
        state = definition()["States"][name]
        assert state["Resource"] == "${RunSolverFunctionArn}"
        assert state["Parameters"]["step"] in steps
        assert [as_rule(r) for r in state["Retry"]] == [LAMBDA_TRANSIENT]
    assert definition()["States"]["FinishFailedBatch"]["Parameters"]["error.$"] == "$.error"
    for name, _, _ in state_blocks(definition()):
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name


# -- executed by moto ---------------------------------------------------------------------------------------------


@pytest.fixture
def stack(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[StepFunctionsHarness, Container, SfnBatchOrchestrator]]:
    use_fake_credentials(monkeypatch)
    wired: dict[str, Container] = {}

    def tasks(event: dict[str, Any], context: Any) -> Any:
        built = wired["container"]
        ctx = TaskContext(
            built.pipeline(), built.flow(), built.settings, context.get_remaining_time_in_millis, batches=built.batches
        )
        return handle(event, ctx)

    with StepFunctionsHarness({"run-solver": tasks}, retry_time_scale=0) as harness:
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        container = build_container(
            runtime_settings(tmp_path, database_url, artifacts_bucket=BUCKET, aws_region="us-east-1")
        )
        upgrade(container.engine)
        wired["container"] = container
        run_solver = harness.function_arn("run-solver")
        solve_arn = harness.create_state_machine(SOLVE_ASL.read_text(), {"RunSolverFunctionArn": run_solver})
        batch_arn = harness.create_state_machine(
            ASL.read_text(), {"RunSolverFunctionArn": run_solver, "SolveStateMachineArn": solve_arn}, name="batch"
        )
        client = boto3.client("stepfunctions", region_name="us-east-1")
        try:
            yield harness, container, SfnBatchOrchestrator(client, batch_arn, BUCKET)
        finally:
            container.close()


def _batch(container: Container, count: int) -> tuple[Any, list[Any]]:
    policy = RequestPolicy.from_settings(container.settings)
    request = BatchRequest.model_validate(
        {"instances": [{}], "models": ["replay:/nonexistent.yaml"], "max_concurrency": 2}, context=policy
    )
    options = BatchOptions(models=list(request.models), output=Path(), name="moto", max_parallel=1)
    instances = [
        Instance(instance_id=f"i-{n}", repo="org/repo", base_commit="a" * 40, problem_statement="broken")
        for n in range(count)
    ]
    solves = [(i, build_request(i, options, policy)) for i in instances]
    started = container.batches.create("owner", request, solves)
    return started.batch, started.items


def test_moto_reads_the_items_runs_the_distributed_map_and_finishes_the_batch(stack: Any) -> None:
    """What moto can execute of the batch ASL: the S3 ItemReader, the Distributed Map with
    MaxConcurrencyPath, the Catch inside the processor, FinishBatch. It cannot execute
    startExecution.sync:2 (its service call fails with States.Runtime, KeyError 'StateMachineArn'), so no
    solve execution starts; FinishBatch then cancels the solves the Map never started."""
    harness, container, batches = stack
    batch, items = _batch(container, 3)
    key = f"batches/{batch.id}/items.json"
    container.artifacts.put(key, json.dumps([i.model_dump(mode="json") for i in items]).encode())
    execution = batches.start(batch.id, key, batch.max_concurrency)
    outcome = harness.wait(execution, timeout_s=60)
    assert outcome["status"] == "SUCCEEDED", outcome
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    assert sfn.list_executions(stateMachineArn=machines["solve"])["executions"] == []  # moto's limit, pinned
    finished = [event for _, event in harness.invocations if event.get("step") == "finish_batch"]
    assert finished == [{"step": "finish_batch", "batch_id": str(batch.id)}]
    view = container.batches.get("owner", batch.id)
    assert view.status == "finished"
    assert view.counts.by_status[SolveStatus.CANCELLED] == 3
    assert batches.start(batch.id, key, batch.max_concurrency) == execution  # starting twice is harmless


def test_a_missing_items_file_fails_the_batch_with_its_error(stack: Any) -> None:
    harness, container, batches = stack
    batch, _ = _batch(container, 2)
    execution = batches.start(batch.id, f"batches/{batch.id}/missing.json", batch.max_concurrency)
    outcome = harness.wait(execution, timeout_s=60)
    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "BatchFailed"
    view = container.batches.get("owner", batch.id)
    assert view.status == "failed"
    assert view.error
    assert view.counts.by_status[SolveStatus.CANCELLED] == 2  # nothing left queued forever
