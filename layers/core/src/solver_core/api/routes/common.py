"""What the route modules share: the dependency getter type and the documented responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader

from solver_core.api.deps import ApiDeps
from solver_core.api.resolver import DeclaringRouter
from solver_core.api.schemas import ErrorBody

DepsGetter = Callable[[], ApiDeps]

ERRORS = {
    400: "The request could not be read: malformed JSON, a bad cursor, a body that is not UTF-8.",
    401: "The request carries no caller identity.",
    403: "The caller may not do this: publishing to a repository that is not on its allowlist.",
    404: "No such solve for this caller (another owner's solve is not found either), or no such route.",
    405: "The path exists but not with this method; the Allow header lists the methods it has.",
    409: "The Idempotency-Key was used before with a different request.",
    413: "The request body is larger than the bound (256 KiB by default).",
    415: "The request is not sent as JSON (`Content-Type: application/json`).",
    422: "The request breaks a rule; each detail names the field and the rule.",
    429: "Too many unfinished solves for this caller, or its daily cost budget is spent; retry after the "
    "Retry-After seconds.",
    500: "An unexpected error; the request id helps to find its log.",
    503: "A dependency is unavailable; the message names it.",
}
_RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}


def json_response(model: type[Any], description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def documented(ok: dict[int, tuple[type[Any], str]], *errors: int) -> dict[int, OpenAPIResponse]:
    """The responses of a route for the OpenAPI document: its successes and its error statuses."""
    responses = {status: json_response(model, text) for status, (model, text) in ok.items()}
    for status in (*errors, 500):
        responses[status] = json_response(ErrorBody, ERRORS[status])
    if 429 in errors:
        responses[429]["headers"] = _RETRY_AFTER
    return responses


def new_router() -> Router:
    return DeclaringRouter()
