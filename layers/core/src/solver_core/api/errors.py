"""Every failure leaves the API in one JSON shape (`ErrorBody`), mapped here and only here:
our typed errors, powertools' validation and routing errors, and anything unexpected (500)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from pydantic import ValidationError

from solver_core.api.schemas import ErrorBody, ErrorDetail, ErrorInfo
from solver_core.errors import BadRequest, NotFound, SolverError, TooManyRequests, ValidationFailed


class Unauthorized(SolverError):
    code = "unauthorized"
    hint = "send 'Authorization: Bearer TOKEN' (or the deployment's IAM/JWT credentials)"
    status = 401


class MethodNotAllowed(SolverError):
    code = "method_not_allowed"
    hint = "use one of the methods in the Allow header"
    status = 405

    def __init__(self, message: str, *, allowed: set[str]) -> None:
        super().__init__(message)
        self.allowed = sorted(allowed)


class PayloadTooLarge(SolverError):
    code = "payload_too_large"
    hint = "send a smaller body (SOLVER_MAX_REQUEST_BYTES bounds it)"
    status = 413


class UnsupportedMediaType(SolverError):
    code = "unsupported_media_type"
    hint = "send the body as application/json"
    status = 415


class HostNotAllowed(SolverError):
    """The Host header names another server: a DNS-rebinding page, or a name not configured."""

    code = "host_not_allowed"
    status = 421  # Misdirected Request: this server is not the one the client meant


class Unavailable(SolverError):
    code = "unavailable"
    hint = "retry in a moment with the same Idempotency-Key"
    status = 503


def error_body(error: SolverError, request_id: str | None = None) -> dict[str, Any]:
    info = ErrorInfo(
        code=error.code,
        message=error.message,
        details=[ErrorDetail.model_validate(d) for d in error.details],
        request_id=request_id,
    )
    return ErrorBody(error=info).model_dump(mode="json", by_alias=True, exclude_none=True)


def error_headers(error: SolverError) -> dict[str, str]:
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after_s)}
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="solver"'}
    if isinstance(error, MethodNotAllowed):
        return {"Allow": ", ".join(error.allowed)}
    return {}


def error_response(error: SolverError, request_id: str | None = None) -> Response[Any]:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(error, request_id),
        headers=error_headers(error),
    )


def proxy_error(error: SolverError, request_id: str | None = None) -> dict[str, Any]:
    """The same error as an API Gateway proxy result, for answers given before routing."""
    headers = {"Content-Type": content_types.APPLICATION_JSON, **error_headers(error)}
    return {
        "statusCode": error.status,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "body": json.dumps(error_body(error, request_id), separators=(",", ":")),
        "isBase64Encoded": False,
    }


def format_loc(parts: Iterable[str | int]) -> str:
    """('issue', 'title') → 'issue.title'; ('models', 1) → 'models[1]'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def invalid_body(exc: ValidationError) -> ValidationFailed:
    details = [
        {"field": format_loc(e["loc"]) or "body", "in": "body", "rule": e["type"], "message": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    return ValidationFailed("the request is invalid", details=details)


def from_request_validation(errors: Sequence[Mapping[str, Any]]) -> SolverError:
    """powertools' parameter and body errors in our terms: unreadable JSON is a 400, a malformed id
    in the path names no resource (404), everything else breaks a rule (422)."""
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            return BadRequest(
                "the request body is not valid JSON",
                details=[{"field": "body", "rule": "json_invalid", "message": str(reason)}],
            )
    if any(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
        return NotFound("no resource at this path", hint="check the id in the path (a solve id is a UUID)")
    details = []
    for error in errors:
        where, *rest = tuple(error.get("loc", ())) or ("body",)
        if where == "header":  # powertools lower-cases header names; name them as documented
            rest = ["-".join(word.capitalize() for word in str(name).split("-")) for name in rest]
        details.append(
            {
                "field": format_loc(rest) or str(where),
                "in": str(where),
                "rule": error.get("type"),
                "message": error.get("msg"),
            }
        )
    return ValidationFailed("the request is invalid", details=details)


def service_error(exc: ServiceError) -> SolverError:
    """powertools' own HTTP errors (we raise none; routing raises NotFoundError) as ours."""
    kinds: dict[int, type[SolverError]] = {
        400: BadRequest, 401: Unauthorized, 404: NotFound, 413: PayloadTooLarge, 503: Unavailable
    }  # fmt: skip
    return kinds.get(exc.status_code, SolverError)(str(exc.msg))
