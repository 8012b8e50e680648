"""POST /batches, GET /batches/{id}, GET /batches/{id}/preds, POST /batches/{id}/cancel: the API's
batches router behind API Gateway (REST proxy integration)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from solver_core.api import build_app
from solver_core.api.deps import lambda_deps
from solver_core.observability import (
    API_CORRELATION_PATH,
    configure_lambda_logging,
    logger,
    metrics,
    record_api_response,
)

configure_lambda_logging()
# Dependencies are built from the environment on the first request, with only this function's secrets.
app = build_app(["batches"], deps=lambda_deps("BatchesFunction"))


@logger.inject_lambda_context(correlation_id_path=API_CORRELATION_PATH)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    record_api_response(int(response["statusCode"]))
    return response
