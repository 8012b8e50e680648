"""POST /solves/{id}/cancel (and /publish): the API's cancel router behind API Gateway (REST proxy integration)."""

from __future__ import annotations

from solver_core.api.function import api_function

app, deps, handler = api_function(["cancel", "publish"], "CancelFunction")
