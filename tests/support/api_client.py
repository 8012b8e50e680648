"""One way to call the API whatever carries it: the Lambda handlers with API Gateway events, or
`solver serve` over real HTTP. The scenarios in tests/support/api_scenarios.py run on both."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlencode

from solver_core.api import ApiDeps, use_deps
from tests.support.api import LambdaContextStub, rest_event


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, Any]:
        """The error of an error answer, checking it has the one error shape."""
        body = self.json
        assert set(body) == {"error"}, body
        error: dict[str, Any] = body["error"]
        assert isinstance(error["code"], str), error
        assert isinstance(error["message"], str), error
        assert isinstance(error.get("details", []), list), error
        return error


class ApiClient(Protocol):
    owner: str  # the owner the API sees for this client's requests

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw_body: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Answer: ...

    def install(self, deps: ApiDeps) -> None:
        """Serve later requests with these dependencies."""
        ...


class LambdaClient:
    """Calls the three Lambda handlers as API Gateway would route to them."""

    def __init__(self, start: ModuleType, status: ModuleType, cancel: ModuleType, *, owner: str, auth: str = "iam"):
        self._handlers = {"start": start.handler, "status": status.handler, "cancel": cancel.handler}
        self.owner = owner
        self.auth = auth

    def install(self, deps: ApiDeps) -> None:
        use_deps(deps)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw_body: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Answer:
        event = rest_event(
            method, path, body=body, raw_body=raw_body, headers=headers, query=query, owner=self.owner, auth=self.auth
        )
        response = self._handlers[_function(method, path)](event, LambdaContextStub())
        names = {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
        names |= {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return Answer(int(response["statusCode"]), names, response.get("body") or "")


def _function(method: str, path: str) -> str:
    if method == "POST" and path.rstrip("/") == "/solves":
        return "start"
    if method == "POST" and path.endswith("/cancel"):
        return "cancel"
    return "status"


class HttpClient:
    """Calls `solver serve` over HTTP with its bearer token."""

    def __init__(self, base_url: str, *, owner: str, token: str | None, world: Any) -> None:
        self.base_url = base_url
        self.owner = owner
        self.token = token
        self._world = world

    def install(self, deps: ApiDeps) -> None:
        self._world.deps = deps  # the server reads world.deps per request

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw_body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Answer:
        data = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        payload = data.encode() if isinstance(data, str) else data
        # As every client of the API does: writes are JSON even without a body (serve refuses others).
        writes = payload is not None or method in {"POST", "PUT", "PATCH", "DELETE"}
        all_headers = {"Content-Type": "application/json"} if writes else {}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers |= dict(headers or {})
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        request = urllib.request.Request(url, data=payload, headers=all_headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - a loopback test server
                return Answer(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read().decode())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, text)
