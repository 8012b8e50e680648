"""powertools' REST resolver with a request size bound, a 405 for a known path, and nothing but
powertools' public API.

powertools keeps the request being resolved in shared places (the event and Lambda context on the
`BaseRouter` class itself), and builds each route's middleware stack on its first request. One
Lambda execution environment resolves one request at a time; `solver serve`, which answers on
threads, resolves one request at a time too (`api/http.py` holds a lock around `resolve`; the
database work of a request is milliseconds, BENCHMARKS.md "The local API server").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from solver_core.api.errors import PayloadTooLarge, UnsupportedMediaType, proxy_error
from solver_core.errors import SolverError

_PARAMETER = re.compile(r"<\w+>")
# What powertools lets a path parameter hold (its safe and unsafe URI characters and word characters).
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"


def rule_pattern(rule: str) -> re.Pattern[str]:
    """A route rule (`/solves/<solve_id>`) as a pattern matching the paths it serves."""
    escaped = re.escape(rule).replace(r"\<", "<").replace(r"\>", ">")
    return re.compile("^" + _PARAMETER.sub(lambda _m: _SEGMENT, escaped) + "/?$")


class DeclaringRouter(Router):
    """A Router that remembers which methods it serves at which rules (for the resolver's 405)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call] # powertools leaves Router.__init__ unannotated
        self.declared: list[tuple[str, str]] = []

    def route(self, rule: str, method: str | list[str] | tuple[str], *args: Any, **kwargs: Any) -> Any:
        methods = [method] if isinstance(method, str) else list(method)
        self.declared += [(m.upper(), rule) for m in methods]
        return super().route(rule, method, *args, **kwargs)


class SolverResolver(APIGatewayRestResolver):
    def __init__(self, *, max_body_bytes: Callable[[], int], batch_body_bytes: Callable[[], int] | None = None) -> None:
        self._max_body_bytes = max_body_bytes
        self._batch_body_bytes = batch_body_bytes  # POST /batches carries up to 500 instances
        # Told every answer's status code (the Lambda functions count requests, 5xx and 429 in metrics).
        self.on_response: Callable[[int], None] | None = None
        self._declared: list[tuple[str, re.Pattern[str]]] = []
        super().__init__(
            enable_validation=True,
            # A response that breaks its own model is our bug: a 500, never a 422 blaming the caller.
            response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        )

    def route(self, rule: str, method: str | list[str] | tuple[str], *args: Any, **kwargs: Any) -> Any:
        methods = [method] if isinstance(method, str) else list(method)
        self._declared += [(m.upper(), rule_pattern(rule)) for m in methods]
        return super().route(rule, method, *args, **kwargs)

    def include_router(self, router: Router, prefix: str | None = None) -> None:
        if isinstance(router, DeclaringRouter):
            self._declared += [(method, rule_pattern(f"{prefix or ''}{rule}")) for method, rule in router.declared]
        super().include_router(router, prefix)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        proxy = APIGatewayProxyEvent(dict(event))
        refused = self._refuse_body(proxy) if proxy.body else None
        request_id = _request_id(proxy)
        response = proxy_error(refused, request_id) if refused is not None else super().resolve(event, context)
        if self.on_response is not None:
            self.on_response(int(response["statusCode"]))
        return response

    def _refuse_body(self, event: APIGatewayProxyEvent) -> SolverError | None:
        """Bodies are refused before anything parses them: too large, or not JSON (powertools would
        otherwise parse form and multipart bodies, and fail on malformed ones with a 500)."""
        limit = self._max_body_bytes()
        if (
            self._batch_body_bytes is not None
            and event.http_method == "POST"
            and event.path.rstrip("/").endswith("/batches")
        ):
            limit = self._batch_body_bytes()
        if _body_size(event) > limit:
            return PayloadTooLarge(f"the request body exceeds {limit} bytes")
        media = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            return UnsupportedMediaType(f"the request body must be application/json, not {media}")
        return None

    def allowed_methods(self, path: str) -> set[str]:
        """The methods some route serves at this path (for a 405 instead of a 404)."""
        return {method for method, pattern in self._declared if pattern.match(path)}

    def request_id(self) -> str | None:
        """The API Gateway request id of the request being resolved."""
        return _request_id(self.current_event)

    def base_path(self) -> str:
        """The stage prefix of the request's URL ('/prod'), or '' behind a custom domain or locally."""
        context = self.current_event.get("requestContext") or {}
        stage, path = context.get("stage"), str(context.get("path") or "")
        return f"/{stage}" if stage and stage != "$default" and path.startswith(f"/{stage}/") else ""


def _body_size(event: APIGatewayProxyEvent) -> int:
    body = event.body or ""
    if event.is_base64_encoded:
        return len(body) * 3 // 4
    return len(body.encode("utf-8", errors="surrogatepass"))


def _request_id(event: APIGatewayProxyEvent) -> str | None:
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id) if request_id else None
