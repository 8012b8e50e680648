"""GET /health, /models, /openapi.json and /docs (Swagger UI). None of these is owner-scoped."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from solver_core.api.deps import ApiDeps
from solver_core.api.errors import Unavailable
from solver_core.api.resolver import SolverResolver
from solver_core.api.routes.common import DepsGetter, documented, new_router
from solver_core.api.schemas import CheckResult, Health, ModelList

CHECK_TIMEOUT_S = 5.0

HEALTH = """The database, the artifact store, the sandbox provider (e2b reachable and accepting the
key, when it is the provider) and the orchestrator, checked concurrently. 200 when all answer;
503 in the error shape otherwise, whose message and details name each failed part."""


def router(deps: DepsGetter, document: Callable[[], dict[str, Any]]) -> Router:
    api = new_router()

    @api.get(
        "/health",
        summary="Health of the service and its dependencies",
        description=HEALTH,
        tags=["service"],
        responses=documented({200: (Health, "Everything answered.")}, 503),
    )
    def health() -> Health:
        checks = run_checks(checks_of(deps()))
        failed = [name for name, result in checks.items() if not result.ok]
        if failed:
            details = [{"field": name, "rule": "unhealthy", "message": checks[name].detail} for name in failed]
            raise Unavailable(f"degraded: {', '.join(failed)} failed", details=details)
        return Health(status="ok", checks=checks, checked_at=datetime.now(UTC))

    @api.get(
        "/models",
        summary="The models and agent configurations a solve may ask for",
        tags=["service"],
        responses=documented({200: (ModelList, "The active registry.")}),
    )
    def models() -> ModelList:
        catalog = deps().catalog
        return ModelList(models=catalog.models(), agent_configs=catalog.agent_configs())

    @api.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[Any]:
        return Response(200, content_types.APPLICATION_JSON, document())

    @api.get("/docs", include_in_schema=False)
    def swagger_ui() -> Response[str]:
        resolver = api.api_resolver
        base = resolver.base_path() if isinstance(resolver, SolverResolver) else ""
        # "Try it out" must call this stage's URLs ('/prod/solves'), not the document's '/solves'.
        return Response(200, "text/html", swagger_html({**document(), "servers": [{"url": base or "/"}]}))

    return api


def checks_of(d: ApiDeps) -> dict[str, Callable[[], None]]:
    return {
        "database": d.catalog.ping,
        "artifacts": d.artifacts.check,
        "sandbox": lambda: d.sandboxes().check(),
        "orchestrator": d.orchestrator.check,
    }


def run_checks(checks: dict[str, Callable[[], None]], timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, CheckResult]:
    """Run every check at once; one that raises or outlasts the timeout has failed. A hung check's
    thread is left behind rather than waited for: the answer must not hang with it."""
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="health")
    started = time.monotonic()
    # Each check runs in a copy of the request's context, so what is bound to it (the logger's
    # correlation id, say) holds in the check's thread too.
    futures = {name: pool.submit(contextvars.copy_context().run, _timed, check) for name, check in checks.items()}
    results: dict[str, CheckResult] = {}
    for name, future in futures.items():
        remaining = max(timeout_s - (time.monotonic() - started), 0.0)
        try:
            results[name] = future.result(timeout=remaining)
        except FutureTimeout:
            results[name] = CheckResult(
                ok=False, detail=f"no answer within {timeout_s:g}s", latency_ms=timeout_s * 1000
            )
    pool.shutdown(wait=False)
    return results


def _timed(check: Callable[[], None]) -> CheckResult:
    started = time.monotonic()
    try:
        check()
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:500]
        return CheckResult(ok=False, detail=detail, latency_ms=_ms(started))
    return CheckResult(ok=True, latency_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def swagger_html(document: dict[str, Any]) -> str:
    """Swagger UI for the whole API (powertools' enable_swagger would show only the routes of the
    function serving it), with powertools' bundled assets: no CDN needed."""
    import json
    from pathlib import Path

    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    spec = json.dumps(document).replace("</", "<\\/")  # keep '</script>' in a string from closing the tag
    js = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    css = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    return generate_swagger_html(spec, js, css, "", None)
