"""The API application: routers assembled on a resolver, per Lambda function or all at once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)

from solver_core import __version__
from solver_core.api.deps import ApiDeps, current_deps
from solver_core.api.errors import (
    MethodNotAllowed,
    UnsupportedMediaType,
    error_response,
    from_request_validation,
    service_error,
)
from solver_core.api.resolver import SolverResolver
from solver_core.api.routes import batches, cancel, publish, read, start, system
from solver_core.api.routes.common import ERRORS, DepsGetter
from solver_core.errors import BadRequest, NotFound, SolverError

log = logging.getLogger(__name__)

Part = Literal["start", "read", "cancel", "system", "publish", "batches"]
ALL_PARTS: tuple[Part, ...] = ("start", "read", "cancel", "system", "publish", "batches")

TITLE = "Solver"
DESCRIPTION = """Turn issues into tested patches: several AI coding-agent attempts run in parallel in
isolated sandboxes, and the best patch wins.

Every request is made as a caller (IAM, a JWT or a Lambda authorizer in the cloud; a bearer token
or the loopback interface with `solver serve`), and sees only its own solves. Every error has the
shape `{"error": {"code", "message", "details": [{"field", "in", "rule", "message"}], "request_id"}}`."""

_POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ResponseValidationError", "ValidationError")


def build_app(parts: Iterable[Part] = ALL_PARTS, deps: DepsGetter = current_deps) -> SolverResolver:
    """A resolver with the given routers; `deps` is called per request, never here."""
    app = SolverResolver(
        max_body_bytes=lambda: deps().limits.max_body_bytes,
        batch_body_bytes=lambda: deps().limits.max_batch_body_bytes,
    )
    install_error_handlers(app)
    factories: dict[Part, Callable[[], Router]] = {
        "start": lambda: start.router(deps),
        "read": lambda: read.router(deps),
        "cancel": lambda: cancel.router(deps),
        "system": lambda: system.router(deps, openapi_document),
        "publish": lambda: publish.router(deps),
        "batches": lambda: batches.router(deps),
    }
    for part in parts:
        app.include_router(factories[part]())  # a fresh Router each time: a Router serves one app
    return app


def _no_deps() -> ApiDeps:
    raise RuntimeError("the OpenAPI document is built without dependencies")


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, as committed in docs/openapi.json."""
    app = build_app(ALL_PARTS, deps=_no_deps)
    raw = app.get_openapi_json_schema(title=TITLE, version=__version__, description=DESCRIPTION)
    return _tidy(json.loads(raw))


def _tidy(document: dict[str, Any]) -> dict[str, Any]:
    """powertools documents its own validation error shapes for 422 and 500; ours are ErrorBody."""
    ours = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref", "").rsplit("/", 1)[-1] in _POWERTOOLS_ERROR_SCHEMAS:
                    response["content"]["application/json"]["schema"] = ours
                    response["description"] = ERRORS.get(int(status), response.get("description", ""))
    text = json.dumps(document.get("paths", {}))
    schemas = document.get("components", {}).get("schemas", {})
    for name in _POWERTOOLS_ERROR_SCHEMAS:
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)
    return document


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
    app.exception_handler(ServiceError)(lambda exc: respond(service_error(exc)))
    app.exception_handler(ResponseValidationError)(lambda exc: _internal(app, exc))
    app.exception_handler(Exception)(lambda exc: _internal(app, exc))


def _no_route(app: SolverResolver) -> SolverError:
    method, path = app.current_event.http_method.upper(), app.current_event.path
    allowed = app.allowed_methods(path)
    if allowed and method not in allowed:  # a path the routes serve, but not with this method
        return MethodNotAllowed(f"{method} is not allowed on {path}", allowed=allowed)
    return NotFound(f"no route for {method} {path}", hint="see /openapi.json for the routes")


def _internal(app: SolverResolver, exc: Exception) -> Response[Any]:
    log.exception("unhandled error in %s %s", app.current_event.http_method, app.current_event.path, exc_info=exc)
    return error_response(SolverError("internal error"), app.request_id())
