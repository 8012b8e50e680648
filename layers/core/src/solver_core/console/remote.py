"""`solver serve --remote URL`: a local proxy to a deployed Solver API that authenticates each
request for the browser (and any local client), so the console in AWS opens on this machine.

- IAM auth: requests are signed with SigV4 (botocore's `SigV4Auth`, service `execute-api`) with the
  credentials boto3 finds (environment, profile, SSO, instance role).
- Cognito auth: the ID token in SOLVER_REMOTE_ID_TOKEN is sent as the `Authorization` header, as the
  API Gateway Cognito authorizer expects.

Locally the proxy admits the same callers as `solver serve`: loopback clients without a token, or the
token (bearer or the console's session cookie) with one. Local credentials never go upstream: the
Cookie, Authorization, Origin and Host headers are replaced, not forwarded.
"""

from __future__ import annotations

import hmac
import http.client
import logging
import re
import socket
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from solver_core.api import session
from solver_core.api.http import SOCKET_TIMEOUT_S, is_loopback
from solver_core.errors import ConfigurationError

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT_S = 60
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own bound
# Not forwarded: hop-by-hop headers, and what identifies the caller to *this* proxy.
DROPPED = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "cookie", "authorization", "origin", "referer",
        "content-length", "x-amz-date", "x-amz-security-token", "x-forwarded-for", "x-forwarded-proto",
    }
)  # fmt: skip
_EXECUTE_API = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


class Signer(Protocol):
    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """The headers to send: the given ones plus the authentication."""
        ...


class SigV4Signer:
    def __init__(self, credentials: Any, region: str, service: str = "execute-api") -> None:
        self._credentials = credentials
        self._region = region
        self._service = service

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._credentials
        if hasattr(credentials, "get_frozen_credentials"):  # refreshable (SSO, roles): current values
            credentials = credentials.get_frozen_credentials()
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials, self._service, self._region).add_auth(request)
        return dict(request.headers.items())


class BearerSigner:
    """Cognito: the user pool's ID token, which the API's Cognito authorizer validates."""

    def __init__(self, token: str) -> None:
        self._token = token

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        return headers | {"Authorization": self._token}


def region_of(url: str, fallback: str | None) -> str:
    host = urlsplit(url).hostname or ""
    match = _EXECUTE_API.match(host)
    if match:
        return match[1]
    if fallback:
        return fallback
    raise ConfigurationError(f"cannot tell the AWS region of {url}: pass --region (or set AWS_REGION)")


def iam_signer(url: str, region: str | None) -> SigV4Signer:
    import boto3

    aws = boto3.session.Session()
    credentials = aws.get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials found (environment, profile, SSO or instance role)")
    return SigV4Signer(credentials, region_of(url, region or aws.region_name))


class RemoteProxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], remote: str, signer: Signer, *, token: str | None) -> None:
        parts = urlsplit(remote.rstrip("/"))
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ConfigurationError(f"--remote must be an http(s) URL, not {remote!r}")
        self.remote = parts
        self.prefix = parts.path  # the stage ('/prod'), or '' behind a custom domain
        self.signer = signer
        self.token = token
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ProxyHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def upstream_path(self, path: str) -> str:
        """Local paths map onto the remote's: '/ui' → '/prod/ui'; '/prod/ui' (links the remote
        rendered with its stage) stays as it is."""
        if not self.prefix or path == self.prefix or path.startswith(self.prefix + "/"):
            return path
        return self.prefix + path


class ProxyHandler(BaseHTTPRequestHandler):
    server: RemoteProxy
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            return
        headers = {name: value for name, value in self.headers.items()}
        path = urlsplit(self.path).path
        if self.command == "POST" and path in {"/ui/login", "/ui/logout"}:
            status, extra = (
                session.login(headers, body, self.server.token) if path.endswith("login") else session.logout()
            )
            self._reply(status, extra, b"")
            return
        if not self._admitted(headers):
            self._reply(401, {"Content-Type": "application/json"}, b'{"error": {"code": "unauthorized", '
                        b'"message": "this proxy admits loopback clients, or its token", "details": []}}')  # fmt: skip
            return
        self._forward(headers, body)

    def _admitted(self, headers: Mapping[str, str]) -> bool:
        token = self.server.token
        if token is None:
            return is_loopback(self.client_address[0])
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
        return session.cookie_authorizes(headers, self.command, token)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._reply(400, {"Content-Type": "text/plain"}, b"send a Content-Length within 10 MiB")
            return None
        return self.rfile.read(length) if length else b""

    def _forward(self, headers: Mapping[str, str], body: bytes) -> None:
        remote = self.server.remote
        query = urlsplit(self.path).query
        target = self.server.upstream_path(urlsplit(self.path).path) + (f"?{query}" if query else "")
        url = f"{remote.scheme}://{remote.netloc}{target}"
        outgoing = {k: v for k, v in headers.items() if k.lower() not in DROPPED}
        outgoing["Host"] = remote.netloc
        signed = self.server.signer.sign(self.command, url, outgoing, body)
        connection_type = http.client.HTTPSConnection if remote.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(remote.netloc, timeout=UPSTREAM_TIMEOUT_S)
        try:
            connection.request(self.command, target, body=body or None, headers=signed)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in DROPPED | {"set-cookie"}]
            self._reply(response.status, kept, data)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("upstream %s failed: %s", remote.netloc, exc)
            self._reply(502, {"Content-Type": "text/plain"}, f"the remote API did not answer: {exc}".encode())
        finally:
            connection.close()

    def _reply(self, status: int, headers: Mapping[str, str] | list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items() if isinstance(headers, Mapping) else headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)
