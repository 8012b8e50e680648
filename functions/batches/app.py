"""POST /batches, GET /batches/{id}, GET /batches/{id}/preds, POST /batches/{id}/cancel: the API's
batches router behind API Gateway (REST proxy integration)."""

from __future__ import annotations

from solver_core.api.function import api_function

app, deps, handler = api_function(["batches"], "BatchesFunction")
