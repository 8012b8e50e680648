"""Cloud batches through the API (POST /batches, GET /batches/{id}, /preds, /cancel) on both databases,
with a recording batch orchestrator; the batch's logic end to end through the local orchestrator."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from moto import mock_aws
from sqlalchemy import func, select

from solver_core.api import build_app
from solver_core.api.deps import ApiDeps, ApiLimits
from solver_core.api.routes.read import RESPONSE_ENVELOPE_BYTES
from solver_core.artifacts import keys
from solver_core.artifacts.s3 import S3ArtifactStore, make_s3_client
from solver_core.batch.cloud import MAX_FILE_INSTANCES, input_prefix
from solver_core.db.schema import BatchRow, SolveRow
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.orchestrators.local_batch import LocalBatchOrchestrator
from solver_core.services.batches import BatchService, batch_of_execution, reconcile_batch
from solver_core.status import RunStatus, SolveStatus
from solver_core.store.run_queries import RunQueries
from tests.support.api import ALICE, BOB, ApiWorld, LambdaContextStub, api_world, header, rest_event
from tests.support.api_scenarios import finish_solve
from tests.support.aws import use_fake_credentials
from tests.support.runtime import git, make_repo, runtime, write_replay

pytestmark = pytest.mark.integration

COMMIT = "a" * 40


def instance(instance_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "repo": "org/repo",
        "base_commit": COMMIT,
        "problem_statement": f"{instance_id} is broken",
        "FAIL_TO_PASS": '["tests/test_a.py::test_x"]',
        "patch": "the gold patch, never used",
    } | fields


def batch_body(*instances: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instances": list(instances) or [instance("org__repo-1"), instance("org__repo-2"), instance("org__repo-3")],
        "models": ["anthropic/claude-sonnet-4-5"],
        "attempts": 2,
        "max_concurrency": 2,
    }
    return body | changes


@dataclass
class RecordingBatches:
    """A BatchOrchestrator that runs nothing: it records what it was asked."""

    name: str = "recording"
    started: list[tuple[UUID, str, int]] = field(default_factory=list)
    stopped: list[UUID] = field(default_factory=list)
    fail: bool = False

    def start(self, batch_id: UUID, items_key: str, max_concurrency: int) -> str:
        if self.fail:
            raise RuntimeError("the state machine is unreachable")
        self.started.append((batch_id, items_key, max_concurrency))
        return f"arn:batch:{batch_id}"

    def stop(self, batch_id: UUID, execution_ref: str | None, reason: str) -> None:
        self.stopped.append(batch_id)


@dataclass
class Api:
    world: ApiWorld
    batches: RecordingBatches
    deps: ApiDeps

    def call(self, method: str, path: str, *, owner: str = ALICE, **kwargs: Any) -> tuple[int, Any, dict[str, Any]]:
        app = build_app(deps=lambda: self.deps)
        response = app.resolve(rest_event(method, path, owner=owner, **kwargs), LambdaContextStub())  # type: ignore[arg-type]
        body = response["body"]
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body
        return int(response["statusCode"]), parsed, response

    def count(self, table: type[Any]) -> int:
        with self.deps.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with api_world(database_url, tmp_path / "home", limits=ApiLimits()) as world:
        recording = RecordingBatches()
        deps = dataclasses.replace(world.deps, batch_orchestrator=recording)
        yield Api(world, recording, deps)


def test_a_batch_makes_one_solve_per_instance_and_starts_its_execution(api: Api) -> None:
    status, created, response = api.call("POST", "/batches", body=batch_body())
    assert status == 202, created
    batch_id = UUID(created["id"])
    assert created["total"] == 3
    assert created["created"] is True
    assert header(response, "Location") == f"/batches/{batch_id}"

    [(started_id, items_key, concurrency)] = api.batches.started
    assert (started_id, items_key, concurrency) == (batch_id, keys.batch_items(batch_id), 2)
    items = json.loads(api.deps.artifacts.get(items_key))
    assert [i["instance_id"] for i in items] == ["org__repo-1", "org__repo-2", "org__repo-3"]
    solves = {s.id: s for s in api.deps.batches.solves(ALICE, batch_id)}
    assert {UUID(i["solve_id"]) for i in items} == set(solves)
    for item in items:
        solve = solves[UUID(item["solve_id"])]
        assert solve.external_ref == {"instance_id": item["instance_id"], "batch": "anthropic/claude-sonnet-4-5"}
        assert solve.ref == COMMIT
        assert solve.repo_url == "https://github.com/org/repo"
        assert len(solve.runs) == 2  # attempts per model
        assert "gold patch" not in json.dumps(solve.model_dump(mode="json"))

    status, batch, _ = api.call("GET", f"/batches/{batch_id}")
    assert status == 200
    assert batch["status"] == "running"
    assert batch["counts"]["total"] == 3
    assert batch["counts"]["by_status"]["queued"] == 3
    assert batch["counts"]["done"] == 0


def test_solve_options_apply_to_every_instances_solve(api: Api) -> None:
    """The judge, where to verify, no test detection and the reproduction script, as in POST /solves."""
    options = {
        "selector_model": "anthropic/claude-haiku-4-5",
        "verify_in": "same_sandbox",
        "detect_tests": False,
        "reproduce": True,
        "reproduce_path": "scripts/repro.sh",
        "reproduce_command": "bash scripts/repro.sh",
    }
    status, created, _ = api.call("POST", "/batches", body=batch_body(**options))
    assert status == 202, created
    solves = api.deps.batches.solves(ALICE, UUID(created["id"]))
    assert len(solves) == 3
    for solve in solves:
        stored = solve.model_dump(mode="json")
        assert {name: stored[name] for name in options} == options
        status, shown, _ = api.call("GET", f"/solves/{solve.id}")
        assert status == 200
        assert shown["verify_in"] == "same_sandbox"
        assert shown["reproduce_command"] == "bash scripts/repro.sh"

    status, error, _ = api.call("POST", "/batches", body=batch_body(verify_in="nowhere", reproduce_path="../x"))
    assert status == 422, error
    assert {d["field"] for d in error["error"]["details"]} >= {"verify_in", "reproduce_path"}
    assert api.count(BatchRow) == 1


def test_the_sweeper_never_starts_a_batchs_queued_solves(api: Api) -> None:
    """The sweeper starts queued solves whose start failed; a batch's wait for its Distributed Map."""
    api.call("POST", "/batches", body=batch_body())
    queries = RunQueries(api.deps.sessions)
    future = datetime.now(UTC) + timedelta(days=1)
    assert queries.open_solves((SolveStatus.QUEUED,), future, with_batched=False) == []
    assert len(queries.open_solves((SolveStatus.QUEUED,), future)) == 3


def test_a_bad_instance_is_a_422_naming_it_and_nothing_is_written(api: Api) -> None:
    body = batch_body(
        instance("good-1"),
        {k: v for k, v in instance("no-commit").items() if k != "base_commit"},
        instance("bad-image", image="not an image!"),
        instance("good-1"),
    )
    status, error, _ = api.call("POST", "/batches", body=body)
    assert status == 422, error
    messages = [d["message"] for d in error["error"]["details"]]
    assert any(m.startswith("item 2 (no-commit): base_commit is required") for m in messages), messages
    assert any(m.startswith("item 3 (bad-image)") for m in messages), messages
    assert any("item 4 (good-1): instance_id repeats the one at item 1" in m for m in messages), messages
    assert {d["field"] for d in error["error"]["details"]} == {"instances"}
    assert api.count(BatchRow) == 0
    assert api.count(SolveRow) == 0
    assert api.batches.started == []


def test_a_request_rule_broken_by_one_instance_is_a_422_and_nothing_is_written(api: Api) -> None:
    """Every validation of POST /solves applies per instance (here: repo_url must be https on the allowlist)."""
    body = batch_body(instance("ok-1"), instance("local-path", repo_url="/etc"))
    status, error, _ = api.call("POST", "/batches", body=body)
    assert status == 422
    [detail] = error["error"]["details"]
    assert detail["message"].startswith("item 2 (local-path): repo_url")
    assert detail["instance_id"] == "local-path"
    assert api.count(SolveRow) == 0


def test_more_than_500_inline_instances_are_refused(api: Api) -> None:
    body = batch_body(*[instance(f"i-{n}") for n in range(501)])
    status, error, _ = api.call("POST", "/batches", body=body)
    assert status == 422
    assert error["error"]["details"][0]["field"] == "instances"
    assert api.count(SolveRow) == 0


def test_an_s3_key_of_jsonl_is_read_from_the_owners_folder_only(api: Api) -> None:
    lines = [json.dumps(instance("k-1")), "", json.dumps({"instance_id": "k-2"}), json.dumps(instance("k-3"))]
    own = input_prefix(ALICE) + "swe.jsonl"
    api.deps.artifacts.put(own, "\n".join(lines).encode())
    status, error, _ = api.call("POST", "/batches", body=batch_body(instances=None, instances_key=own))
    assert status == 422
    [detail] = error["error"]["details"]
    assert detail["field"] == "instances_key"
    assert detail["message"].startswith("line 3 (k-2): repo is required")

    del lines[2]
    api.deps.artifacts.put(own, "\n".join(lines).encode())
    status, created, _ = api.call("POST", "/batches", body=batch_body(instances=None, instances_key=own))
    assert status == 202
    assert created["total"] == 2

    # Another owner's file, or a solve's artifacts, are never read as instances.
    foreign = input_prefix(BOB) + "swe.jsonl"
    api.deps.artifacts.put(foreign, "\n".join(lines).encode())
    for key in (foreign, f"solves/{created['id']}/champion.diff"):
        status, error, _ = api.call("POST", "/batches", body=batch_body(instances=None, instances_key=key))
        assert status == 422
        assert error["error"]["details"][0]["rule"] == "instances_key_prefix"
    too_many = "\n".join(json.dumps(instance(f"m-{n}")) for n in range(MAX_FILE_INSTANCES + 1))
    api.deps.artifacts.put(input_prefix(ALICE) + "big.jsonl", too_many.encode())
    big = batch_body(instances=None, instances_key=input_prefix(ALICE) + "big.jsonl")
    status, error, _ = api.call("POST", "/batches", body=big)
    assert status == 422
    assert error["error"]["details"][0]["rule"] == "instances_file_too_many"
    status, error, _ = api.call("POST", "/batches", body=batch_body(instances=None, instances_key=own + ".missing"))
    assert status == 422
    assert error["error"]["details"][0]["rule"] == "instances_file_missing"


def test_idempotency_key_replays_the_batch_and_refuses_another_body(api: Api) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    status, first, _ = api.call("POST", "/batches", body=batch_body(), headers=headers)
    assert status == 202
    status, again, response = api.call("POST", "/batches", body=batch_body(), headers=headers)
    assert status == 200
    assert again["id"] == first["id"]
    assert again["created"] is False
    assert header(response, "Idempotent-Replayed") == "true"
    assert api.count(SolveRow) == 3
    assert len(api.batches.started) == 1
    status, error, _ = api.call("POST", "/batches", body=batch_body(attempts=1), headers=headers)
    assert status == 409
    assert error["error"]["code"] == "idempotency_conflict"


def test_a_start_failure_is_a_503_and_a_retry_with_the_key_starts_it(api: Api) -> None:
    api.batches.fail = True
    headers = {"Idempotency-Key": "batch-503"}
    status, _error, _ = api.call("POST", "/batches", body=batch_body(), headers=headers)
    assert status == 503
    api.batches.fail = False
    status, _replay, _ = api.call("POST", "/batches", body=batch_body(), headers=headers)
    assert status == 200
    assert len(api.batches.started) == 1
    assert api.count(BatchRow) == 1


def test_another_owners_batch_is_not_found_anywhere(api: Api) -> None:
    _, created, _ = api.call("POST", "/batches", body=batch_body())
    batch_id = created["id"]
    for method, path in (("GET", f"/batches/{batch_id}"), ("GET", f"/batches/{batch_id}/preds"),
                         ("POST", f"/batches/{batch_id}/cancel")):  # fmt: skip
        status, error, _ = api.call(method, path, owner=BOB)
        assert status == 404, (path, error)
    assert api.batches.stopped == []
    assert {s.status for s in api.deps.batches.solves(ALICE, UUID(batch_id))} == {SolveStatus.QUEUED}


def test_cancel_cancels_every_unfinished_solve_once(api: Api) -> None:
    _, created, _ = api.call("POST", "/batches", body=batch_body())
    batch_id = UUID(created["id"])
    first = api.deps.batches.solves(ALICE, batch_id)[0]
    finish_solve(api.world, first.id)
    status, answer, _ = api.call("POST", f"/batches/{batch_id}/cancel")
    assert status == 200
    assert answer["changed"] == 2
    assert answer["batch"]["status"] == "cancelled"
    assert answer["batch"]["counts"]["by_status"] == answer["batch"]["counts"]["by_status"] | {
        "cancelled": 2,
        "succeeded": 1,
    }
    assert api.batches.stopped == [batch_id]
    status, again, _ = api.call("POST", f"/batches/{batch_id}/cancel")
    assert status == 200
    assert again["changed"] == 0
    assert api.batches.stopped == [batch_id]


def test_preds_holds_final_instances_only(api: Api) -> None:
    _, created, _ = api.call("POST", "/batches", body=batch_body(name="solver-test"))
    batch_id = UUID(created["id"])
    solves = api.deps.batches.solves(ALICE, batch_id)
    finish_solve(api.world, solves[0].id)
    api.deps.artifacts.put(keys.champion_patch(solves[0].id), b"diff --git a/x b/x\n")
    api.world.deps.runs.move_solve(solves[1].id, SolveStatus.RUNNING)
    for run in solves[1].runs:
        api.world.deps.runs.move(run.id, RunStatus.FAILED, error="no patch")
    api.world.deps.runs.move_solve(solves[1].id, SolveStatus.FAILED, error="no run produced a patch")
    status, preds, response = api.call("GET", f"/batches/{batch_id}/preds")
    assert status == 200, preds
    assert header(response, "Content-Type").startswith("application/json")  # type: ignore[union-attr]
    assert preds == {
        "org__repo-1": {"instance_id": "org__repo-1", "model_name_or_path": "solver-test",
                        "model_patch": "diff --git a/x b/x\n"},
        "org__repo-2": {"instance_id": "org__repo-2", "model_name_or_path": "solver-test", "model_patch": ""},
    }  # fmt: skip


def test_the_batch_runs_end_to_end_through_the_local_orchestrator(database_url: str, tmp_path: Path) -> None:
    """The batch state machine's logic on one machine: each solve to its end, at most max_concurrency
    at once, then FinishBatch; preds.json from the API."""
    container = runtime(tmp_path, database_url)
    try:
        repo = make_repo(tmp_path / "repo", {"calc.py": "def mean(v):\n    return sum(v) // len(v)\n"})
        fix = write_replay(
            tmp_path / "fix.yaml", "sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
        )
        solves = LocalOrchestrator(container.pipeline(), container.flow(), retry_time_scale=0)
        batches = LocalBatchOrchestrator(
            solves, BatchService(container.sessions, container.solves), container.artifacts
        )
        running = [0, 0]
        lock = threading.Lock()
        execute = solves.execute

        def counted(solve_id: UUID, run_ids: list[UUID] | None = None) -> Any:
            with lock:
                running[0] += 1
                running[1] = max(running)
            try:
                return execute(solve_id, run_ids)
            finally:
                with lock:
                    running[0] -= 1

        solves.execute = counted  # type: ignore[method-assign]
        deps = ApiDeps.from_container(container, solves, batch_orchestrator=batches)
        app = build_app(deps=lambda: deps)
        base = git(repo, "rev-parse", "HEAD").strip()
        body = {
            "instances": [instance(f"calc-{n}", repo_url=str(repo), base_commit=base) for n in range(3)],
            "models": [fix],
            "max_concurrency": 1,
        }
        response = app.resolve(rest_event("POST", "/batches", body=body, owner="local:user"), LambdaContextStub())  # type: ignore[arg-type]
        assert response["statusCode"] == 202, response
        batch_id = UUID(json.loads(response["body"])["id"])
        assert batches.wait(batch_id, timeout=120)
        view = deps.batches.get("local:user", batch_id)
        assert view.status == "finished"
        assert view.counts.by_status[SolveStatus.SUCCEEDED] == 3
        assert view.counts.with_patch == 3
        assert running[1] == 1  # max_concurrency
        answer = app.resolve(rest_event("GET", f"/batches/{batch_id}/preds", owner="local:user"), LambdaContextStub())  # type: ignore[arg-type]
        preds = json.loads(answer["body"])
        assert sorted(preds) == ["calc-0", "calc-1", "calc-2"]
        assert all("-    return sum(v) // len(v)" in p["model_patch"] for p in preds.values())
    finally:
        container.close()


def test_a_preds_too_large_for_a_response_is_a_303_to_a_presigned_link(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        client = make_s3_client("us-east-1")
        client.create_bucket(Bucket="solver-test")
        store = S3ArtifactStore(client, "solver-test")
        limits = ApiLimits(max_response_bytes=RESPONSE_ENVELOPE_BYTES + 4096)
        api.deps = dataclasses.replace(api.deps, artifacts=store, limits=limits)
        _, created, _ = api.call("POST", "/batches", body=batch_body())
        batch_id = UUID(created["id"])
        solve = api.deps.batches.solves(ALICE, batch_id)[0]
        finish_solve(api.world, solve.id)
        store.put(keys.champion_patch(solve.id), b"+" + b"x" * 8000 + b"\n")
        status, body, response = api.call("GET", f"/batches/{batch_id}/preds")
        assert status == 303, body
        location = header(response, "Location")
        assert location is not None
        assert location.startswith("https://solver-test.s3.amazonaws.com/batches/")
        assert "X-Amz-Signature=" in location
        stored = json.loads(store.get(keys.batch_preds(batch_id)))
        assert stored["org__repo-1"]["model_patch"].startswith("+xxxx")

        status, _, _ = api.call("GET", f"/batches/{batch_id}/preds", owner=BOB)
        assert status == 404


def test_a_batch_execution_that_ends_outside_finish_batch_is_settled_by_the_reconciler(api: Api) -> None:
    """Aborted (by hand, or by a cancel), failed or timed out: FinishBatch never ran, so the reconciler
    cancels the solves its Map never started and ends the batch (failed, unless it was cancelled)."""
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:solver-batch"
    _, created, _ = api.call("POST", "/batches", body=batch_body())
    batch_id = UUID(created["id"])
    execution = f"arn:aws:states:us-east-1:123456789012:execution:solver-batch:{batch_id}"
    child = f"arn:aws:states:us-east-1:123456789012:execution:solver-batch/Instances:{batch_id}"
    other = f"arn:aws:states:us-east-1:123456789012:execution:solve:{batch_id}"
    assert batch_of_execution(execution, machine) == batch_id
    assert batch_of_execution(child, machine) is None
    assert batch_of_execution(other, machine) is None
    assert batch_of_execution(execution, None) is None

    container = api.deps.container
    first = api.deps.batches.solves(ALICE, batch_id)[0]
    finish_solve(api.world, first.id)
    settled = reconcile_batch(
        container.batches, container.runs, container.flow(), execution, state_machine_arn=machine, status="ABORTED"
    )
    assert settled is not None
    assert settled.status == "failed"
    assert settled.error == "the batch's execution ended ABORTED"
    assert settled.counts.by_status[SolveStatus.CANCELLED] == 2
    assert settled.counts.by_status[SolveStatus.SUCCEEDED] == 1

    _, other_batch, _ = api.call("POST", "/batches", body=batch_body(name="cancelled"))
    other_id = UUID(other_batch["id"])
    api.call("POST", f"/batches/{other_id}/cancel")
    execution = f"arn:aws:states:us-east-1:123456789012:execution:solver-batch:{other_id}"
    again = reconcile_batch(
        container.batches, container.runs, container.flow(), execution, state_machine_arn=machine, status="ABORTED"
    )
    assert again is not None
    assert again.status == "cancelled"
