"""The API through the three Lambda handlers, with API Gateway REST proxy events."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import pytest
from moto import mock_aws

from functions.cancel import app as cancel_app
from functions.start_solve import app as start_app
from functions.status import app as status_app
from solver_core.api import use_deps
from solver_core.artifacts.s3 import S3ArtifactStore, make_s3_client
from solver_core.orchestrators.stepfunctions import SfnOrchestrator
from tests.support.api import ALICE, ApiWorld, LambdaContextStub, api_world, body_of, header, rest_event, solve_body
from tests.support.api_client import LambdaClient
from tests.support.api_scenarios import ApiScenarios, finish_solve

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SOME_ID = "6d8b1a0e-2a5e-4f4c-9d6b-2d0c1b0e9a11"


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world(database_url, tmp_path / "home") as built:
        use_deps(built.deps)
        try:
            yield built
        finally:
            use_deps(None)


@pytest.fixture
def client(world: ApiWorld) -> LambdaClient:
    return LambdaClient(start_app, status_app, cancel_app, owner=ALICE)


class TestThroughLambdaHandlers(ApiScenarios):
    pass


def call(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler(event, LambdaContextStub())
    return response


@pytest.mark.parametrize(
    ("auth", "owner"),
    [
        ("iam", ALICE),
        ("iam-caller", "AIDAALICE"),
        ("cognito", "6f1c-cognito-sub"),
        ("jwt", "jwt-sub-42"),
        ("lambda", "user-7"),
    ],
)
def test_the_owner_comes_from_each_kind_of_authorizer(world: ApiWorld, auth: str, owner: str) -> None:
    created = call(start_app.handler, rest_event("POST", "/solves", body=solve_body(), owner=owner, auth=auth))
    assert created["statusCode"] == 202
    solve_id = body_of(created)["id"]
    assert world.deps.solves.get(owner, UUID(solve_id)).owner == owner
    mine = call(status_app.handler, rest_event("GET", f"/solves/{solve_id}", owner=owner, auth=auth))
    assert mine["statusCode"] == 200
    theirs = call(status_app.handler, rest_event("GET", f"/solves/{solve_id}", owner="someone-else", auth=auth))
    assert theirs["statusCode"] == 404


def test_without_an_identity_owner_routes_are_401_and_health_is_open(world: ApiWorld) -> None:
    for handler, method, path in (
        (start_app.handler, "POST", "/solves"),
        (status_app.handler, "GET", "/solves"),
        (cancel_app.handler, "POST", f"/solves/{SOME_ID}/cancel"),
    ):
        body = solve_body() if method == "POST" and path == "/solves" else None
        response = call(handler, rest_event(method, path, body=body, auth=None))
        assert response["statusCode"] == 401, (path, response)
        assert body_of(response)["error"]["code"] == "unauthorized"
        assert header(response, "WWW-Authenticate")
    assert call(status_app.handler, rest_event("GET", "/health", auth=None))["statusCode"] == 200


def test_links_carry_the_stage_and_errors_the_request_id(world: ApiWorld) -> None:
    event = rest_event("POST", "/solves", body=solve_body(), stage="prod")
    created = body_of(call(start_app.handler, event))
    host = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    assert created["links"]["self"] == f"{host}/solves/{created['id']}"
    missing = rest_event("GET", "/nope")
    answer = body_of(call(status_app.handler, missing))
    assert answer["error"]["request_id"] == missing["requestContext"]["requestId"]


def test_each_function_serves_only_its_routes(world: ApiWorld) -> None:
    assert call(start_app.handler, rest_event("GET", f"/solves/{SOME_ID}"))["statusCode"] == 404
    assert header(call(start_app.handler, rest_event("GET", "/solves")), "Allow") == "POST"
    assert call(cancel_app.handler, rest_event("GET", "/health"))["statusCode"] == 404
    wrong = call(status_app.handler, rest_event("POST", "/solves", body=solve_body()))
    assert wrong["statusCode"] == 405  # the status function has GET /solves, not POST
    assert header(wrong, "Allow") == "GET"


def test_a_binary_body_that_is_not_utf8_is_400(world: ApiWorld) -> None:
    event = rest_event("POST", "/solves", raw_body="//79/A==")  # base64 of bytes that are not UTF-8
    event["isBase64Encoded"] = True
    response = call(start_app.handler, event)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["code"] == "bad_request"


def test_artifact_links_are_file_urls_locally(world: ApiWorld) -> None:
    solve_id = body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body())))["id"]
    finish_solve(world, UUID(solve_id))
    run = body_of(call(status_app.handler, rest_event("GET", f"/solves/{solve_id}")))["runs"][0]
    assert run["artifacts"]["patch"].startswith("file://")


def test_artifact_links_are_presigned_on_s3(world: ApiWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = make_s3_client("us-east-1")
        client.create_bucket(Bucket="solver-test")
        use_deps(dataclasses.replace(world.deps, artifacts=S3ArtifactStore(client, "solver-test")))
        solve_id = body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body())))["id"]
        finish_solve(world, UUID(solve_id))
        run = body_of(call(status_app.handler, rest_event("GET", f"/solves/{solve_id}")))["runs"][0]
    link = run["artifacts"]["patch"]
    assert link.startswith("https://solver-test.s3.amazonaws.com/p/patch.diff?")
    assert "X-Amz-Signature=" in link
    assert "X-Amz-Expires=3600" in link


def test_handlers_emit_cold_start_and_solve_metrics(world: ApiWorld, capsys: pytest.CaptureFixture[str]) -> None:
    call(start_app.handler, rest_event("POST", "/solves", body=solve_body()))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for line in lines for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"SolvesStarted", "ApiRequests"} <= names
    assert all(d["Namespace"] == "Solver" for line in lines for d in line["_aws"]["CloudWatchMetrics"])


def _metric_values(out: str, name: str) -> list[float]:
    values: list[float] = []
    for line in out.splitlines():
        if line.startswith('{"_aws"') and name in (emf := json.loads(line)):
            value = emf[name]
            values += value if isinstance(value, list) else [value]
    return values


def test_a_cancel_is_counted_once(world: ApiWorld, capsys: pytest.CaptureFixture[str]) -> None:
    created = body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body())))
    capsys.readouterr()
    assert body_of(call(cancel_app.handler, rest_event("POST", f"/solves/{created['id']}/cancel")))["changed"]
    assert sum(_metric_values(capsys.readouterr().out, "SolvesCancelled")) == 1
    again = call(cancel_app.handler, rest_event("POST", f"/solves/{created['id']}/cancel"))
    assert body_of(again)["changed"] is False
    assert sum(_metric_values(capsys.readouterr().out, "SolvesCancelled")) == 0


def test_the_api_imports_neither_the_agent_nor_litellm(tmp_path: Path) -> None:
    """The API Lambdas ship without mini-swe-agent and litellm: a cold start through every
    function, and requests to each route, must not import them (a fresh interpreter, since this
    test session imports them elsewhere)."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from tests.support.api import api_world, rest_event, solve_body, LambdaContextStub
        from solver_core.api import use_deps
        from functions.start_solve import app as start
        from functions.status import app as status
        from functions.cancel import app as cancel
        from functions.batches import app as batches
        with api_world("sqlite:///{tmp_path / "db.sqlite"}", __import__("pathlib").Path("{tmp_path}")) as world:
            from solver_core.db.migrate import upgrade
            upgrade(world.deps.sessions.kw["bind"])
            use_deps(world.deps)
            ctx = LambdaContextStub()
            solve = json.loads(start.handler(rest_event("POST", "/solves", body=solve_body()), ctx)["body"])["id"]
            for path in ("/solves", f"/solves/{{solve}}", f"/solves/{{solve}}/events", f"/solves/{{solve}}/stats",
                         "/health", "/models", "/openapi.json", "/docs"):
                assert status.handler(rest_event("GET", path), ctx)["statusCode"] == 200, path
            assert cancel.handler(rest_event("POST", f"/solves/{{solve}}/cancel"), ctx)["statusCode"] == 200

            class Batches:
                name = "recording"
                def start(self, batch_id, key, concurrency): return f"batch:{{batch_id}}"
                def stop(self, batch_id, ref, reason): return None

            use_deps(__import__("dataclasses").replace(world.deps, batch_orchestrator=Batches()))
            one = {{"instance_id": "a-1", "repo": "org/repo", "base_commit": "a" * 40, "problem_statement": "x"}}
            body = {{"instances": [one], "models": ["anthropic/claude-sonnet-4-5"]}}
            made = batches.handler(rest_event("POST", "/batches", body=body), ctx)
            assert made["statusCode"] == 202, made
            batch = json.loads(made["body"])["id"]
            for method, path in (("GET", f"/batches/{{batch}}"), ("GET", f"/batches/{{batch}}/preds"),
                                 ("POST", f"/batches/{{batch}}/cancel")):
                assert batches.handler(rest_event(method, path), ctx)["statusCode"] == 200, path
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"minisweagent", "litellm", "e2b", "openai"}})
        print("HEAVY=" + ",".join(heavy))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "HEAVY="


def test_with_step_functions_a_start_is_an_execution_named_after_the_solve(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        sfn = boto3.client("stepfunctions")
        definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}
        role = "arn:aws:iam::123456789012:role/solver"
        arn = sfn.create_state_machine(name="solve", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
        use_deps(dataclasses.replace(world.deps, orchestrator=SfnOrchestrator(sfn, arn)))
        created = body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body())))
        execution = f"{arn.replace(':stateMachine:', ':execution:')}:{created['id']}"
        assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        assert world.deps.solves.get(ALICE, UUID(created["id"])).execution_ref == execution
        assert call(status_app.handler, rest_event("GET", "/health"))["statusCode"] == 200
        cancelled = call(cancel_app.handler, rest_event("POST", f"/solves/{created['id']}/cancel"))
        assert body_of(cancelled)["solve"]["status"] == "cancelled"
        assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
        use_deps(dataclasses.replace(world.deps, orchestrator=SfnOrchestrator(sfn, arn + "-gone")))
        degraded = call(status_app.handler, rest_event("GET", "/health"))
    assert degraded["statusCode"] == 503
    assert [d["field"] for d in body_of(degraded)["error"]["details"]] == ["orchestrator"]


def _patch_of_size(size: int, line: str) -> bytes:
    text = "diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n@@ -0,0 +1 @@\n"
    return (text + line * ((size - len(text)) // len(line) + 1)).encode()[:size]


@pytest.mark.parametrize(
    ("size", "line", "redirected"),
    [
        (1_000_000, "+ordinary line of code\n", False),
        (7 * 1024 * 1024, "+ordinary line of code\n", True),  # over Lambda's 6 MB response limit
        (4 * 1024 * 1024, '+"""\n', True),  # 4 MB, but JSON escaping in the response makes it more than 6
    ],
    ids=["small", "over-6MB", "escaping-over-6MB"],
)
def test_a_patch_too_large_for_a_lambda_response_redirects_to_a_presigned_link(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch, size: int, line: str, redirected: bool
) -> None:
    import requests  # moto answers presigned URLs through `requests`

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    patch = _patch_of_size(size, line)
    with mock_aws():
        client = make_s3_client("us-east-1")
        client.create_bucket(Bucket="solver-test")
        store = S3ArtifactStore(client, "solver-test")
        use_deps(dataclasses.replace(world.deps, artifacts=store))
        solve_id = UUID(body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body())))["id"])
        finish_solve(world, solve_id)
        store.put(f"solves/{solve_id}/champion.diff", patch)
        answer = call(status_app.handler, rest_event("GET", f"/solves/{solve_id}/patch"))
        assert len(json.dumps(answer)) < 6 * 1024 * 1024  # what Lambda would have to return fits
        if not redirected:
            assert answer["statusCode"] == 200
            assert answer["body"] == patch.decode()
            return
        assert answer["statusCode"] == 303
        link = header(answer, "Location")
        assert link is not None
        assert link.startswith(f"https://solver-test.s3.amazonaws.com/solves/{solve_id}/champion.diff?")
        assert "X-Amz-Signature=" in link
        assert requests.get(link, timeout=30).content == patch


def test_without_download_links_a_large_patch_is_served_whole(world: ApiWorld) -> None:
    """`solver serve` on files: no Lambda in between, and no link to send the client to."""
    solve_id = UUID(body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body())))["id"])
    finish_solve(world, solve_id)
    patch = _patch_of_size(7 * 1024 * 1024, "+line\n")
    world.deps.artifacts.put(f"solves/{solve_id}/champion.diff", patch)
    answer = call(status_app.handler, rest_event("GET", f"/solves/{solve_id}/patch"))
    assert answer["statusCode"] == 200
    assert answer["body"].encode() == patch


def test_publishing_outside_the_callers_allowlist_is_refused_with_403(world: ApiWorld) -> None:
    issue = {"title": "Fix the bug", "url": "https://github.com/org/repo/issues/3"}
    body = solve_body(issue=issue, publish={"comment": True, "pull_request": True})
    refused = call(start_app.handler, rest_event("POST", "/solves", body=body))
    assert refused["statusCode"] == 403
    error = body_of(refused)["error"]
    assert error["code"] == "not_on_allowlist"
    assert "github.com/org/repo is not allowed for this caller" in error["message"]
    assert world.deps.solves.list(ALICE).items == []  # nothing was recorded

    world.deps.allowlist.add(ALICE, "org")
    assert call(start_app.handler, rest_event("POST", "/solves", body=body))["statusCode"] == 202
    elsewhere = solve_body(repo_url="https://github.com/victim/private", issue=issue | {"url": None})
    assert call(start_app.handler, rest_event("POST", "/solves", body=elsewhere))["statusCode"] == 202  # anonymous


def test_a_spent_daily_budget_refuses_new_solves_with_429(database_url: str, tmp_path: Path) -> None:
    from solver_core.api.deps import ApiLimits

    with api_world(database_url, tmp_path / "home", limits=ApiLimits(owner_daily_cost_usd=1.0)) as built:
        use_deps(built.deps)
        try:
            first = call(start_app.handler, rest_event("POST", "/solves", body=solve_body()))
            assert first["statusCode"] == 202
            (run, *_) = built.deps.solves.get(ALICE, UUID(body_of(first)["id"])).runs
            built.deps.runs.record_step(run.id, run.solve_id, steps=1, cost_usd=1.25, tokens=10, message="step 1")
            refused = call(start_app.handler, rest_event("POST", "/solves", body=solve_body()))
            assert refused["statusCode"] == 429
            assert body_of(refused)["error"]["message"].startswith("the daily cost budget of $1.00 is spent")
            assert 86_000 < int(header(refused, "Retry-After") or 0) <= 86_400
        finally:
            use_deps(None)


def test_the_console_is_served_by_the_status_function_behind_the_authorizer(world: ApiWorld) -> None:
    created = body_of(call(start_app.handler, rest_event("POST", "/solves", body=solve_body(), stage="prod")))
    listing = call(status_app.handler, rest_event("GET", "/ui", stage="prod"))
    assert listing["statusCode"] == 200
    assert "script-src 'self'" in str(header(listing, "Content-Security-Policy"))
    assert f'href="/prod/ui/solves/{created["id"]}"' in listing["body"]  # links carry the stage
    assert 'src="/prod/ui/static/console.js' in listing["body"]

    script = call(status_app.handler, rest_event("GET", "/ui/static/console.js", stage="prod"))
    assert script["statusCode"] == 200
    assert not script.get("isBase64Encoded")  # text passes API Gateway without binary media types
    assert "trajectoryViewer" in script["body"]

    anonymous = call(status_app.handler, rest_event("GET", f"/ui/solves/{created['id']}", auth=None))
    assert anonymous["statusCode"] == 401
    stranger = call(
        status_app.handler, rest_event("GET", f"/ui/solves/{created['id']}", owner="arn:aws:iam::1:user/eve")
    )
    assert stranger["statusCode"] == 404

    publish = call(cancel_app.handler, rest_event("POST", f"/solves/{created['id']}/publish", body={}))
    assert publish["statusCode"] == 409  # unfinished (and no publish option); never published from here


def test_outside_the_lambda_functions_nothing_is_counted(world: ApiWorld) -> None:
    """`solver serve` never flushes metrics: counted there, they would pile up in the process (and
    powertools would print them once a hundred had)."""
    from solver_core.api import build_app
    from solver_core.observability import metrics

    metrics.clear_metrics()
    app = build_app(["start", "cancel"], deps=lambda: world.deps)
    created = body_of(app.resolve(rest_event("POST", "/solves", body=solve_body()), LambdaContextStub()))  # type: ignore[arg-type]
    app.resolve(rest_event("POST", f"/solves/{created['id']}/cancel"), LambdaContextStub())  # type: ignore[arg-type]
    assert metrics.metric_set == {}
