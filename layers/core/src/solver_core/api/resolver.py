"""powertools' REST resolver, made safe for a threaded server and given a request size bound.

powertools keeps the request being resolved in shared places: the event and Lambda context on the
`BaseRouter` class itself, the route context on the resolver instance. One Lambda execution
environment resolves one request at a time, so that is fine there; `solver serve` resolves many at
once on threads, so here they live in thread-local storage. Each route's middleware stack is built
lazily by its first request, and two first requests at once would wrap it twice: that is done
under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder, Route
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from solver_core.api.errors import PayloadTooLarge, UnsupportedMediaType, proxy_error
from solver_core.errors import SolverError


class _RequestState(threading.local):
    def __init__(self) -> None:
        self.event: APIGatewayProxyEvent | None = None
        self.lambda_context: LambdaContext | None = None
        self.context: dict[str, Any] = {}


class SolverResolver(APIGatewayRestResolver):
    def __init__(self, *, max_body_bytes: Callable[[], int], batch_body_bytes: Callable[[], int] | None = None) -> None:
        self._state = _RequestState()  # before super().__init__, which assigns self.context
        self._build_lock = threading.Lock()
        self._max_body_bytes = max_body_bytes
        self._batch_body_bytes = batch_body_bytes  # POST /batches carries up to 500 instances
        super().__init__(
            enable_validation=True,
            # A response that breaks its own model is our bug: a 500, never a 422 blaming the caller.
            response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        )

    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEvent:
        event = self._state.event
        if event is None:
            raise RuntimeError("no request is being resolved on this thread")
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEvent) -> None:
        self._state.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        return self._state.lambda_context  # type: ignore[return-value]

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._state.lambda_context = value

    @property
    def context(self) -> dict[str, Any]:
        return self._state.context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._state.context = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        proxy = self._to_proxy_event(dict(event))
        assert isinstance(proxy, APIGatewayProxyEvent)
        self._state.event = proxy
        self._state.lambda_context = context
        refused = self._refuse_body(proxy) if proxy.body else None
        if refused is not None:
            return proxy_error(refused, self.request_id())
        return super().resolve(event, context)

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

    def _call_route(self, route: Route, route_arguments: dict[str, str]) -> ResponseBuilder[Any]:
        if not route._middleware_stack_built:
            with self._build_lock:
                if not route._middleware_stack_built:
                    route._build_middleware_stack(router_middlewares=self._router_middlewares, app=self)
        return super()._call_route(route, route_arguments)

    def allowed_methods(self, path: str) -> set[str]:
        """The methods some route serves at this path (for a 405 instead of a 404)."""
        routes = [*self._static_routes, *self._dynamic_routes]
        return {route.method for route in routes if route.rule.match(path)}

    def request_id(self) -> str | None:
        event = self._state.event
        if event is None:
            return None
        request_id = (event.get("requestContext") or {}).get("requestId")
        return str(request_id) if request_id else None

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
