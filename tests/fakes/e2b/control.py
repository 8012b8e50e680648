"""The REST control plane (``api.e2b.app``): create, list, inspect, connect, time out, kill."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from .httpio import Json, Request, Responder
from .state import CapacityExceeded, IdempotencyMismatch, Registry, Sandbox
from .templates import TemplateBuilds, is_template_path, parse_name

_SANDBOX_PATH = re.compile(r"^/(?:v2/)?sandboxes/(?P<id>[^/]+)(?P<rest>/[a-z]+)?$")


def is_control_path(path: str) -> bool:
    return path.startswith(("/sandboxes", "/v2/sandboxes")) or is_template_path(path)


def error(code: int, message: str) -> Json:
    return {"code": code, "message": message}


@dataclass
class FailureInjector:
    """Answers the next ``remaining`` control-plane requests with ``status``."""

    remaining: int = 0
    status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, count: int, status: int) -> None:
        with self.lock:
            self.remaining, self.status = count, status

    def take(self) -> int | None:
        with self.lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            return self.status


class ControlPlane:
    def __init__(
        self,
        registry: Registry,
        api_key: str,
        failures: FailureInjector,
        templates: TemplateBuilds,
        *,
        templates_must_exist: bool = False,
    ) -> None:
        self._registry = registry
        self._templates = templates
        self._templates_must_exist = templates_must_exist
        self._api_key = api_key
        self._failures = failures
        self.create_requests: list[dict[str, Any]] = []
        self._record_lock = threading.Lock()

    def handle(self, request: Request, out: Responder) -> None:
        if request.header("X-API-KEY") != self._api_key:
            out.send_json(401, error(401, "Invalid API key, it must start with 'e2b_' prefix"))
            return
        if request.method == "POST" and request.path == "/v2/sandboxes":
            self._record_create(request)
        status = self._failures.take()
        if status is not None:
            out.send_json(status, error(status, f"Injected failure ({status})"))
            return
        self._route(request, out)

    def _route(self, request: Request, out: Responder) -> None:
        if is_template_path(request.path):
            self._templates.handle(request, out)
            return
        if request.path in ("/v2/sandboxes", "/sandboxes"):
            if request.method == "POST":
                self._create(request, out)
            elif request.method == "GET":
                self._list(request, out)
            else:
                out.send_json(405, error(405, "Method not allowed"))
            return
        match = _SANDBOX_PATH.match(request.path)
        action = self._sandbox_action(request.method, match.group("rest") if match else None)
        if match is None or action is None:
            out.send_json(404, error(404, f"No route for {request.method} {request.path}"))
            return
        action(match.group("id"), request, out)

    def _sandbox_action(self, method: str, rest: str | None) -> Callable[[str, Request, Responder], None] | None:
        routes: dict[tuple[str, str | None], Callable[[str, Request, Responder], None]] = {
            ("GET", None): self._get,
            ("DELETE", None): self._kill,
            ("POST", "/timeout"): self._timeout,
            ("POST", "/connect"): self._connect,
        }
        return routes.get((method, rest))

    def _record_create(self, request: Request) -> None:
        body = request.json()
        with self._record_lock:
            self.create_requests.append(
                {
                    "template": body.get("templateID"),
                    "metadata": body.get("metadata"),
                    "timeout": body.get("timeout"),
                    "envs": body.get("envVars"),
                    "idempotency_key": request.header("Idempotency-Key"),
                    "body": body,
                }
            )

    def _create(self, request: Request, out: Responder) -> None:
        template = str(request.json().get("templateID") or "base")
        if parse_name(template) is None:  # e2b's API answers so for a name that cannot be a template
            out.send_json(400, error(400, f"invalid template ID: {template}"))
            return
        if self._templates_must_exist and template != "base" and not self._templates.is_ready(template):
            out.send_json(404, error(404, f"template '{template}' not found"))
            return
        try:
            sandbox = self._registry.create(request.json(), request.header("Idempotency-Key"))
        except CapacityExceeded as e:
            message = (
                f"You have reached the maximum number of concurrent E2B sandboxes ({e.args[0]}). "
                "If you need more, please contact us at 'https://e2b.dev/docs/getting-help'"
            )
            out.send_json(429, error(429, message))
            return
        except IdempotencyMismatch:
            body = error(409, "Idempotency key was already used with a different request")
            out.send_json(409, {**body, "error_code": "idempotency_request_mismatch"})
            return
        out.send_json(201, sandbox.created_body())

    def _list(self, request: Request, out: Responder) -> None:
        wanted = _metadata_filter(request.param("metadata"))
        states = (request.param("state") or "running").split(",")
        matching = [s.listed_body() for s in self._registry.all_live() if "running" in states and _matches(s, wanted)]
        offset = int(request.param("nextToken") or 0)
        limit = int(request.param("limit") or 100)
        page = matching[offset : offset + limit]
        more = offset + limit < len(matching)
        headers = {"x-next-token": str(offset + limit)} if more else {}
        out.send_json(200, page, headers)

    def _get(self, sandbox_id: str, _request: Request, out: Responder) -> None:
        sandbox = self._registry.live(sandbox_id)
        if sandbox is None:
            out.send_json(404, error(404, f"sandbox \"{sandbox_id}\" doesn't exist or you don't have access to it"))
            return
        detail = {**sandbox.listed_body(), "envdAccessToken": sandbox.envd_access_token, "domain": None}
        out.send_json(200, detail)

    def _kill(self, sandbox_id: str, _request: Request, out: Responder) -> None:
        if self._registry.kill(sandbox_id):
            out.send_empty(204)
        else:
            out.send_json(404, error(404, f'sandbox "{sandbox_id}" not found'))

    def _timeout(self, sandbox_id: str, request: Request, out: Responder) -> None:
        timeout = request.json().get("timeout")
        if not isinstance(timeout, int):
            out.send_json(400, error(400, "timeout must be an integer"))
        elif self._registry.set_timeout(sandbox_id, timeout):
            out.send_empty(204)
        else:
            out.send_json(404, error(404, f'sandbox "{sandbox_id}" not found'))

    def _connect(self, sandbox_id: str, request: Request, out: Responder) -> None:
        timeout = request.json().get("timeout")
        sandbox: Sandbox | None = self._registry.live(sandbox_id)
        if sandbox is None:
            out.send_json(404, error(404, f'sandbox "{sandbox_id}" not found'))
            return
        if isinstance(timeout, int):
            self._registry.set_timeout(sandbox_id, timeout, extend_only=True)
        out.send_json(200, sandbox.created_body())


def _metadata_filter(raw: str | None) -> dict[str, str]:
    """Undo the SDK's encoding: each key and value is quoted, then the pairs are urlencoded."""
    if not raw:
        return {}
    return {unquote(k): unquote(v) for k, v in parse_qsl(raw, keep_blank_values=True)}


def _matches(sandbox: Sandbox, wanted: dict[str, str]) -> bool:
    return all(sandbox.metadata.get(k) == v for k, v in wanted.items())
