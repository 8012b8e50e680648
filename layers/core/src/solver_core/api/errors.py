"""Every failure leaves the API in one JSON shape (`ErrorBody`), mapped here and only here:
our typed errors, powertools' validation and routing errors, and anything unexpected (500)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from pydantic import ValidationError

from solver_core.api.schemas import ErrorBody, ErrorDetail, ErrorInfo
from solver_core.errors import BadRequest, NotFound, SolverError, TooManyRequests, ValidationFailed

if TYPE_CHECKING:
    from solver_core.api.resolver import SolverResolver

log = logging.getLogger(__name__)


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


def install_error_handlers(app: SolverResolver) -> None:
    def request_id() -> str | None:
        return app.request_id()

    def respond(error: SolverError) -> Response[Any]:
        if error.status >= 500:  # ours, but a failure of the service: worth a log line with its trace
            log.error("%s answered %s: %s", app.current_event.path, error.status, error.message, exc_info=error)
        return error_response(error, request_id())

    app.exception_handler(SolverError)(respond)
    app.exception_handler(RequestValidationError)(lambda exc: respond(from_request_validation(exc.errors())))
    # A pydantic ValidationError is not mapped: the routes turn the caller's into ValidationFailed,
    # and any other is a bug of ours (a 500), not the caller's 422.
    app.exception_handler(RequestUnsupportedContentType)(
        lambda _exc: respond(UnsupportedMediaType("the request body is not application/json"))
    )
    app.exception_handler(UnicodeDecodeError)(lambda _exc: respond(BadRequest("the request body is not UTF-8")))
    app.exception_handler(RecursionError)(lambda _exc: respond(BadRequest("the request body is nested too deeply")))
    app.not_found(lambda _exc: respond(_no_route(app)))
    app.exception_handler(ServiceError)(lambda exc: respond(_service_error(exc)))
    app.exception_handler(ResponseValidationError)(lambda exc: _internal(app, exc))
    app.exception_handler(Exception)(lambda exc: _internal(app, exc))


def _no_route(app: SolverResolver) -> SolverError:
    method, path = app.current_event.http_method.upper(), app.current_event.path
    allowed = app.allowed_methods(path)
    if allowed:
        return MethodNotAllowed(f"{method} is not allowed on {path}", allowed=allowed)
    return NotFound(f"no route for {method} {path}", hint="see /openapi.json for the routes")


def _service_error(exc: ServiceError) -> SolverError:
    """powertools' own HTTP errors (we raise none; routing raises NotFoundError) as ours."""
    kinds: dict[int, type[SolverError]] = {
        400: BadRequest, 401: Unauthorized, 404: NotFound, 413: PayloadTooLarge, 503: Unavailable
    }  # fmt: skip
    return kinds.get(exc.status_code, SolverError)(str(exc.msg))


def _internal(app: SolverResolver, exc: Exception) -> Response[Any]:
    log.exception("unhandled error in %s %s", app.current_event.http_method, app.current_event.path, exc_info=exc)
    return error_response(SolverError("internal error"), app.request_id())
