"""The API's resolver and its pure helpers (under threads: tests/integration/test_serve_threads.py)."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from solver_core.api.errors import Unauthorized, format_loc, from_request_validation
from solver_core.api.request import owner_of
from solver_core.errors import BadRequest, NotFound, ValidationFailed
from tests.support.api import echo_app, rest_event

pytestmark = pytest.mark.unit


def test_the_body_bound_is_checked_before_routing() -> None:
    response = echo_app().resolve(rest_event("POST", "/anything", raw_body="x" * 1001), None)  # type: ignore[arg-type]
    assert response["statusCode"] == 413
    assert json.loads(response["body"])["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("parts", "text"),
    [(("issue", "title"), "issue.title"), (("models", 1), "models[1]"), ((), ""), (("a", 0, "b"), "a[0].b")],
)
def test_locations_read_like_field_paths(parts: tuple[str | int, ...], text: str) -> None:
    assert format_loc(parts) == text


def test_powertools_validation_errors_become_ours() -> None:
    assert isinstance(from_request_validation([{"type": "json_invalid", "loc": ("body", 3)}]), BadRequest)
    assert isinstance(from_request_validation([{"type": "uuid_parsing", "loc": ("path", "solve_id")}]), NotFound)
    error = from_request_validation([{"type": "string_too_long", "loc": ("header", "idempotency-key"), "msg": "m"}])
    assert isinstance(error, ValidationFailed)
    assert error.details == [{"field": "Idempotency-Key", "in": "header", "rule": "string_too_long", "message": "m"}]


def test_an_overlong_identity_is_no_owner() -> None:
    with pytest.raises(Unauthorized, match="longer than"):
        owner_of(APIGatewayProxyEvent(rest_event("GET", "/solves", owner="x" * 201)))


def test_an_assumed_roles_owner_does_not_change_with_its_session_name() -> None:
    def owner(arn: str, caller: str) -> str:
        event = rest_event("GET", "/solves", auth=None)
        event["requestContext"]["identity"] = {"userArn": arn, "caller": caller, "sourceIp": "10.0.0.1"}
        return owner_of(APIGatewayProxyEvent(event))

    role = "arn:aws:sts::123456789012:assumed-role/TenantA"
    first = owner(f"{role}/session-one", "AROAEXAMPLEID:session-one")
    assert first == owner(f"{role}/renamed-session", "AROAEXAMPLEID:renamed-session") == role
    assert owner("arn:aws:sts::123456789012:assumed-role/TenantB/session-one", "AROAOTHER:session-one") != first
    user = "arn:aws:iam::123456789012:user/alice"  # an IAM user has no session to rotate
    assert owner(user, "AIDAEXAMPLE") == user
    caller_only = rest_event("GET", "/solves", auth=None)
    caller_only["requestContext"]["identity"] = {"caller": "AROAEXAMPLEID:any-name"}
    assert owner_of(APIGatewayProxyEvent(caller_only)) == "AROAEXAMPLEID"
