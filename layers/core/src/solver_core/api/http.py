"""The API over plain HTTP: each request becomes the API Gateway REST proxy event a deployed stage
would send, and the proxy result becomes the HTTP response. So `solver serve` runs exactly the
routers, validation and error mapping that the Lambda functions run.

Identity (`ApiRequestHandler._owner`, the one place it is decided): with a token, a request is the
local owner's when it carries `Authorization: Bearer <token>` (or the console's session cookie);
without one (`solver serve --no-token`, loopback only), when it comes from the loopback interface.
Otherwise it has no identity, and owner-scoped routes answer 401, as behind API Gateway.

Before that, every request is checked (`ApiRequestHandler._refusal`): its `Host` header must name
this server (the bound address, loopback names on loopback, or an `--allowed-host`), which stops
DNS rebinding, and a POST/PUT/PATCH/DELETE must be `application/json`, which a cross-site form
cannot send without a CORS preflight this server never grants.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from solver_core.api import session
from solver_core.api.errors import HostNotAllowed, PayloadTooLarge, UnsupportedMediaType, proxy_error
from solver_core.api.resolver import SolverResolver
from solver_core.errors import BadRequest, SolverError

log = logging.getLogger(__name__)

SESSION_PATHS = frozenset({"/ui/login", "/ui/logout"})
SOCKET_TIMEOUT_S = 60  # a client that stops sending does not hold a thread for ever
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return address == "localhost"


def is_wildcard(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_unspecified
    except ValueError:
        return False


def host_names(bound: str, allowed: Iterable[str]) -> frozenset[str]:
    """The names a `Host` header may carry: the bound address, the loopback names when bound to
    loopback, and the allowed hosts."""
    names = {bound.strip("[]").lower(), *(name.strip().strip("[]").lower() for name in allowed)}
    if is_loopback(bound):
        names |= LOOPBACK_NAMES
    return frozenset(name for name in names if name)


def host_matches(header: str | None, names: frozenset[str], port: int) -> bool:
    """Whether a `Host` header (`name[:port]`, `[v6][:port]`) names this server."""
    if not header:
        return False
    try:
        parts = urlsplit(f"//{header.strip()}")
        given_port = parts.port
    except ValueError:
        return False
    return (parts.hostname or "") in names and given_port in {None, port}


def is_json_media(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def proxy_event(
    method: str, target: str, headers: Mapping[str, list[str]], body: bytes, *, client_ip: str, owner: str | None
) -> dict[str, Any]:
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    text, encoded = _body_text(body)
    # This server is the edge, as API Gateway is: what it says about the connection wins.
    headers = {k: v for k, v in headers.items() if k.lower() != "x-forwarded-proto"} | {"X-Forwarded-Proto": ["http"]}
    context: dict[str, Any] = {
        "stage": "$default",
        "path": unquote(parts.path),
        "httpMethod": method,
        "requestId": str(uuid.uuid4()),
        "identity": {"sourceIp": client_ip},
    }
    if owner is not None:
        context["authorizer"] = {"principalId": owner}
    return {
        "resource": unquote(parts.path),
        "path": unquote(parts.path),
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": dict(headers),
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": encoded,
    }


def _body_text(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True  # as API Gateway passes binary bodies


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of clients connect at once (the default backlog is 5)
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        app: SolverResolver,
        *,
        owner: str,
        token: str | None,
        max_body_bytes: Callable[[], int],
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.resolving = threading.Lock()
        self.owner = owner
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.host_names = host_names(address[0], allowed_hosts)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ApiRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class ApiRequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = do_GET

    def __getattr__(self, name: str) -> Any:
        # Any other method also gets the API's answer (a 405 or 404 in the error shape), not the
        # base class's HTML 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _handle(self) -> None:
        try:
            refused = self._refusal()
            if refused is not None:
                raise refused
            body = self._read_body()
        except SolverError as exc:
            self.close_connection = True  # an unread body would be taken for the next request
            self._send(proxy_error(exc))
            return
        if self.command == "POST" and urlsplit(self.path).path in SESSION_PATHS:
            self._session(body)
            return
        event = proxy_event(
            self.command, self.path, self._headers(), body, client_ip=self.client_address[0], owner=self._owner()
        )
        with self.server.resolving:  # powertools resolves one request at a time (api/resolver.py)
            answer = self.server.app.resolve(event, None)  # type: ignore[arg-type] # no Lambda context here
        self._send(answer)

    def _headers(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            grouped.setdefault(name, []).append(value)
        return grouped

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise BadRequest("chunked request bodies are not supported; send a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise BadRequest("the Content-Length header is not a number") from exc
        if length < 0:
            raise BadRequest("the Content-Length header is negative")
        limit = self.server.max_body_bytes()
        if length > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        return self.rfile.read(length) if length else b""

    def _refusal(self) -> SolverError | None:
        """Why this request is refused before it reaches the API, if it is."""
        host = self.headers.get("Host")
        if not host_matches(host, self.server.host_names, int(self.server.server_address[1])):
            return HostNotAllowed(
                f"the Host header {host!r} does not name this server; start it with --allowed-host NAME "
                "for each name clients use"
            )
        session = urlsplit(self.path).path in SESSION_PATHS  # the console's sign-in form posts a form
        if self.command in WRITE_METHODS and not session and not is_json_media(self.headers.get("Content-Type")):
            return UnsupportedMediaType(f"{self.command} requests must be sent as application/json")
        return None

    def _owner(self) -> str | None:
        token = self.server.token
        if token is None:
            return self.server.owner if is_loopback(self.client_address[0]) else None
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return self.server.owner
        if session.cookie_authorizes(self._single_headers(), self.command, token):
            return self.server.owner
        return None

    def _single_headers(self) -> dict[str, str]:
        return {name: value for name, value in self.headers.items()}

    def _session(self, body: bytes) -> None:
        """The console's sign-in and sign-out (see solver_core.api.session)."""
        if urlsplit(self.path).path == "/ui/logout":
            status, headers = session.logout()
        else:
            status, headers = session.login(self._single_headers(), body, self.server.token)
        self._send({"statusCode": status, "headers": headers, "body": ""})

    def _send(self, response: Mapping[str, Any]) -> None:
        raw = response.get("body") or ""
        try:
            data = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode("utf-8")
        except binascii.Error:
            data = b""
        self.send_response(int(response["statusCode"]))
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.pop(name, None)
            for value in values:
                self.send_header(name, str(value))
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)
