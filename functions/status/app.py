"""GET /solves, /solves/{id}, events, stats, /health, /models, /openapi.json, /docs and the /ui console."""

from __future__ import annotations

from solver_core.api.function import api_function
from solver_core.console.routes import router as console_router

app, deps, handler = api_function(["read", "system"], "StatusFunction")
app.include_router(console_router(deps))
