"""POST /solves: the API's start router behind API Gateway (REST proxy integration)."""

from __future__ import annotations

from solver_core.api.function import api_function

app, deps, handler = api_function(["start"], "StartSolveFunction")
