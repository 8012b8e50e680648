"""`solver serve --remote URL`: the local proxy signs every request with SigV4 for an IAM-authorized
API (checked by a loopback upstream that recomputes the signature with botocore), or sends the
Cognito ID token; it never forwards the local caller's credentials, and admits only its callers."""

from __future__ import annotations

import hmac
import http.client
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from solver_core.api.session import COOKIE, session_value
from solver_core.console.remote import BearerSigner, RemoteProxy, SigV4Signer, region_of
from solver_core.errors import ConfigurationError

pytestmark = pytest.mark.integration

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1")
REGION = "eu-west-1"
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/execute-api/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verdict: str


@dataclass
class Upstream:
    """API Gateway's side of IAM auth: a request is let through only with a valid signature."""

    credentials: Credentials
    seen: list[Seen] = field(default_factory=list)

    def verdict(self, method: str, path: str, headers: Any, body: bytes) -> str:
        match = AUTHORIZATION.match(headers.get("Authorization") or "")
        if match is None:
            return "no SigV4 Authorization header"
        if match["key"] != self.credentials.access_key or match["region"] != REGION:
            return "wrong credential scope"
        if headers.get("X-Amz-Security-Token") != self.credentials.token:
            return "session token missing"
        names = match["signed"].split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "host and x-amz-date must be signed"
        request = AWSRequest(
            method=method, url=f"http://{headers['Host']}{path}", data=body, headers={n: headers[n] for n in names}
        )
        request.context["timestamp"] = headers["X-Amz-Date"]
        signer = SigV4Auth(self.credentials, "execute-api", REGION)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return "ok" if hmac.compare_digest(expected, match["signature"]) else "signature mismatch"


def start_upstream(upstream: Upstream) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            verdict = upstream.verdict(self.command, self.path, self.headers, body)
            upstream.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body, verdict))
            data = json.dumps({"verdict": verdict, "path": self.path}).encode()
            self.send_response(200 if verdict == "ok" else 403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Set-Cookie", "upstream=1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    world = Upstream(CREDENTIALS)
    server = start_upstream(world)
    try:
        yield world, f"http://127.0.0.1:{server.server_address[1]}/prod"
    finally:
        server.shutdown()
        server.server_close()


def run_proxy(remote: str, signer: Any, token: str | None = None) -> RemoteProxy:
    proxy = RemoteProxy(("127.0.0.1", 0), remote, signer, token=token)
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return proxy


def call(url: str, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> Any:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_requests_are_signed_with_sigv4_and_mapped_onto_the_stage(upstream: tuple[Upstream, str]) -> None:
    world, remote = upstream
    proxy = run_proxy(remote, SigV4Signer(CREDENTIALS, REGION))
    try:
        status, headers, body = call(proxy.url, "GET", "/ui/solves?status=running")
        assert status == 200, body
        assert json.loads(body) == {"verdict": "ok", "path": "/prod/ui/solves?status=running"}
        assert "upstream=1" not in headers.get("Set-Cookie", "")  # the remote's cookies stay upstream

        # Links the remote rendered carry its stage; they are not prefixed twice.
        assert json.loads(call(proxy.url, "GET", "/prod/ui")[2])["path"] == "/prod/ui"

        payload = json.dumps({"issue": {"title": "x"}}).encode()
        status, _, body = call(proxy.url, "POST", "/solves", {"Content-Type": "application/json"}, payload)
        assert status == 200, body
        assert world.seen[-1].body == payload  # the signature covers this body (its hash is signed)
        assert [s.verdict for s in world.seen] == ["ok", "ok", "ok"]
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_the_upstream_check_rejects_a_wrong_signature(upstream: tuple[Upstream, str]) -> None:
    _world, remote = upstream
    forged = Credentials(CREDENTIALS.access_key, "not-the-secret", CREDENTIALS.token)
    proxy = run_proxy(remote, SigV4Signer(forged, REGION))
    try:
        status, _, body = call(proxy.url, "GET", "/ui")
        assert status == 403
        assert json.loads(body)["verdict"] == "signature mismatch"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_local_credentials_are_not_forwarded_and_callers_need_the_token(upstream: tuple[Upstream, str]) -> None:
    world, remote = upstream
    proxy = run_proxy(remote, SigV4Signer(CREDENTIALS, REGION), token="local-token")
    try:
        assert call(proxy.url, "GET", "/ui")[0] == 401
        assert world.seen == []  # refused here, never sent upstream

        cookie = {"Cookie": f"{COOKIE}={session_value('local-token')}", "Origin": "http://evil.example"}
        status, _, _ = call(proxy.url, "GET", "/ui", cookie)
        assert status == 200
        sent = {k.lower(): v for k, v in world.seen[-1].headers.items()}
        assert "cookie" not in sent
        assert "origin" not in sent
        assert sent["authorization"].startswith("AWS4-HMAC-SHA256 ")
        assert sent["host"] == urlsplit(remote).netloc

        bearer = {"Authorization": "Bearer local-token"}
        assert call(proxy.url, "GET", "/ui", bearer)[0] == 200
        assert "local-token" not in json.dumps(world.seen[-1].headers)
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_cognito_sends_the_id_token(upstream: tuple[Upstream, str]) -> None:
    world, remote = upstream
    proxy = run_proxy(remote, BearerSigner("eyJ.id.token"))
    try:
        status, _, _body = call(proxy.url, "GET", "/ui")
        assert status == 403  # no SigV4: this upstream is IAM's
        assert world.seen[-1].headers["Authorization"] == "eyJ.id.token"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_the_region_comes_from_the_execute_api_host() -> None:
    assert region_of("https://abc123.execute-api.eu-central-1.amazonaws.com/prod", None) == "eu-central-1"
    assert region_of("https://solver.example.com", "us-east-2") == "us-east-2"
    with pytest.raises(ConfigurationError):
        region_of("https://solver.example.com", None)
    with pytest.raises(ConfigurationError):
        RemoteProxy(("127.0.0.1", 0), "ftp://x", BearerSigner("t"), token=None)
