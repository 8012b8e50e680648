"""One API Lambda function: its routers on a resolver, dependencies built from the environment on the
first request with only the secrets the function declares, and the handler API Gateway calls
(logging with the request's correlation id, metrics flushed after each request). The handler only
resolves: what a request did is recorded where it happens (the resolver reports each answer's status,
counted here as requests, 5xx and 429; a route counts what it started or cancelled)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from solver_core.api.app import Part, build_app
from solver_core.api.deps import lambda_deps
from solver_core.api.resolver import SolverResolver
from solver_core.api.routes.common import DepsGetter
from solver_core.observability import (
    API_CORRELATION_PATH,
    configure_lambda_logging,
    logger,
    metrics,
    record_api_response,
)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]  # (event, Lambda context)


def api_function(parts: Iterable[Part], function: str) -> tuple[SolverResolver, DepsGetter, Handler]:
    """The resolver (to mount more routers on), its dependencies getter, and the handler of the API
    function whose logical id in template.yaml is `function`."""
    configure_lambda_logging()
    deps = lambda_deps(function)
    app = build_app(parts, deps=deps)
    app.on_response = record_api_response

    @logger.inject_lambda_context(correlation_id_path=API_CORRELATION_PATH)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return app, deps, handler
