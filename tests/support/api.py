"""Builders for API tests: dependencies over a test database, API Gateway REST proxy events, and a
Lambda context."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver_core.api import ApiDeps, ApiLimits
from solver_core.api.resolver import SolverResolver
from solver_core.api.routes.common import new_router
from solver_core.settings import Settings
from solver_core.wiring import build_container
from tests.fakes.orchestrator import FakeOrchestrator
from tests.fakes.sandbox_backend import RecordingSandboxBackend

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def solve_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "repo_url": "https://github.com/org/repo",
        "ref": "main",
        "issue": {"title": "Fix the bug", "body": "It breaks."},
        "models": ["anthropic/claude-sonnet-4-5"],
        "attempts_per_model": 2,
        "max_parallel": 2,
        "limits": {"step_limit": 40, "cost_limit_usd": 1.0, "time_limit_s": 600},
        "test_command": "pytest -q",
        "external_ref": {"session_id": "s-1"},
    }
    return body | changes


@dataclass
class ApiWorld:
    """Dependencies for the API over one database, with fakes for what runs solves."""

    deps: ApiDeps
    orchestrator: FakeOrchestrator
    sandboxes: RecordingSandboxBackend
    settings: Settings


@contextmanager
def api_world(database_url: str, home: Path, limits: ApiLimits | None = None, **settings: Any) -> Iterator[ApiWorld]:
    config = Settings(database_url=database_url, home=home, db_pool_size=20, **settings)
    container = build_container(config)
    orchestrator, sandboxes = FakeOrchestrator(), RecordingSandboxBackend()
    deps = ApiDeps.from_container(container, orchestrator, sandboxes=lambda: sandboxes, limits=limits or ApiLimits())
    try:
        yield ApiWorld(deps, orchestrator, sandboxes, config)
    finally:
        container.close()


def identity(kind: str | None, owner: str) -> dict[str, Any]:
    """The requestContext parts each kind of authorizer fills in."""
    shapes: dict[str | None, dict[str, Any]] = {
        "iam": {"identity": {"userArn": owner, "caller": "AIDAEXAMPLE", "sourceIp": "10.0.0.1"}},
        "iam-caller": {"identity": {"caller": owner, "sourceIp": "10.0.0.1"}},
        "cognito": {"authorizer": {"claims": {"sub": owner, "email": "a@example.com"}}, "identity": {}},
        "jwt": {"authorizer": {"jwt": {"claims": {"sub": owner}, "scopes": []}}, "identity": {}},
        "lambda": {"authorizer": {"principalId": owner, "integrationLatency": 3}, "identity": {}},
        None: {"identity": {"sourceIp": "10.0.0.1"}},
    }
    return shapes[kind]


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    owner: str = ALICE,
    auth: str | None = "iam",
    stage: str = "prod",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as a deployed stage sends it."""
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    all_headers = {"Host": "abc123.execute-api.eu-west-1.amazonaws.com", "X-Forwarded-Proto": "https"}
    all_headers |= {"Content-Type": "application/json"} if text is not None else {}
    all_headers |= dict(headers or {})
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "stage": stage,
            "path": f"/{stage}{path}",
            "httpMethod": method,
            "requestId": str(uuid.uuid4()),
            "resourcePath": path,
            "accountId": "123456789012",
            **identity(auth, owner),
        },
        "body": text,
        "isBase64Encoded": False,
    }


@dataclass
class LambdaContextStub:
    function_name: str = "solver-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:solver-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def body_of(response: Mapping[str, Any]) -> Any:
    return json.loads(response["body"])


def header(response: Mapping[str, Any], name: str) -> str | None:
    values = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    singles = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    found = values.get(name.lower())
    return found[-1] if found else singles.get(name.lower())


def echo_app() -> SolverResolver:
    """A resolver with one slow route that answers what it saw: the event's path and the matched route."""
    app = SolverResolver(max_body_bytes=lambda: 1000)
    router = new_router()

    @router.get("/echo/<n>")
    def echo(n: int) -> dict[str, Any]:
        time.sleep(0.001)  # let other threads interleave
        return {"n": n, "path": router.current_event.path, "route": app.context["_route"].path}

    app.include_router(router)
    return app
