"""A loopback smart-HTTP git server: ``git http-backend`` (CGI) behind optional HTTP basic auth.

It stands in for GitHub's https remotes, so clones can be tested with real ``git`` and real
credentials handling, minus TLS.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

from tests.fakes.loopback import FakeHTTPServer, Loopback, LoopbackFake

_BACKEND_TIMEOUT_S = 60


@dataclass(frozen=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@functools.cache
def _http_backend() -> str:
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout
    return str(Path(exec_path.strip()) / "git-http-backend")


def isolated_git_env() -> dict[str, str]:
    """The caller's environment minus anything that would make git read host config or credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "SSH_ASKPASS"))}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"})
    return env


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _parse_cgi_output(output: bytes) -> _Response:
    # CGI allows bare LF line endings; git http-backend itself writes CRLF.
    crlf, lf = output.find(b"\r\n\r\n"), output.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf < lf):
        head, body = output[:crlf], output[crlf + 4 :]
    elif lf != -1:
        head, body = output[:lf], output[lf + 2 :]
    else:
        return _Response(502, [("Content-Type", "text/plain")], b"http-backend produced no CGI headers\n")
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return _Response(status, headers, body)


class GitHTTPServer(LoopbackFake):
    """Serves bare repositories under ``root`` at ``http://127.0.0.1:PORT/<name>.git``."""

    def __init__(
        self,
        root: Path,
        *,
        username: str = "x-access-token",
        token: str | None = "s3cr3t-token",  # noqa: S107 - a loopback fake's well-known test credential
        host: str = "127.0.0.1",
        delay_s: float = 0.0,
    ):
        self.root = Path(root)
        self.delay_s = delay_s  # per request: a slow remote, so a clone lasts long enough to watch
        self.unavailable = False  # answer every request 503, as a host in an outage does
        self.username = username
        self.token = token
        self.auth_headers_seen: list[str] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._loop = Loopback(_Handler, self, "fake-git", host)

    # -- lifecycle -------------------------------------------------------------------------------

    def _before_start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    # -- repositories ----------------------------------------------------------------------------

    def add_repo(self, name: str, source: Path) -> str:
        """Publish a bare copy of the work repository ``source`` as ``<name>.git``; returns its URL."""
        bare = self.root / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--bare", "--quiet", str(source), str(bare))
        _git("-C", str(bare), "config", "http.receivepack", "false")
        _git("-C", str(bare), "config", "http.uploadpack", "true")
        # Protocol v2 already serves any reachable commit by id (as GitHub does); v0 needs this.
        _git("-C", str(bare), "config", "uploadpack.allowReachableSHA1InWant", "true")
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        return f"http://{self._loop.host}:{self.port}/{name}.git"

    def auth_header(self) -> str:
        """The ``Authorization`` value this server accepts (for ``http.extraHeader``)."""
        return basic_auth(self.username, self.token or "")

    # -- request handling (called from handler threads) ------------------------------------------

    def record(self, path: str, authorization: str | None) -> None:
        with self._lock:
            self.requests.append(path)
            if authorization is not None:
                self.auth_headers_seen.append(authorization)

    def authenticate(self, authorization: str | None) -> str | None:
        """The user to report to the backend, or ``None`` when the request must be challenged."""
        if self.token is None:
            return ""
        credentials = _parse_basic(authorization)
        # Like GitHub with a token, any username is accepted; only the password is checked.
        if credentials is None or credentials[1] != self.token:
            return None
        return credentials[0] or self.username

    def run_backend(self, cgi_env: dict[str, str], body: bytes) -> _Response:
        env = isolated_git_env() | cgi_env | {"GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1"}
        try:
            completed = subprocess.run(
                [_http_backend()], check=False, input=body, capture_output=True, env=env, timeout=_BACKEND_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return _Response(504, [("Content-Type", "text/plain")], b"git http-backend timed out\n")
        if not completed.stdout:
            return _Response(500, [("Content-Type", "text/plain")], completed.stderr or b"http-backend failed\n")
        return _parse_cgi_output(completed.stdout)


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True, env=isolated_git_env())


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes every connection after its response, so stop() never waits on idle keep-alives.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    @property
    def fake(self) -> GitHTTPServer:
        fake: GitHTTPServer = cast(FakeHTTPServer, self.server).fake
        return fake

    def _dispatch(self) -> None:
        time.sleep(self.fake.delay_s)
        authorization = self.headers.get("Authorization")
        self.fake.record(self.path, authorization)
        user = self.fake.authenticate(authorization)
        body = self._read_body()
        if self.fake.unavailable:
            self._send(_Response(503, [("Content-Type", "text/plain")], b"Service Unavailable\n"))
            return
        if user is None:
            challenge = [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")]
            self._send(_Response(401, challenge, b"Authentication required\n"))
            return
        self._send(self.fake.run_backend(self._cgi_env(user, len(body)), body))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        # git switches to chunked uploads once a request outgrows http.postBuffer (1 MiB).
        chunks = []
        while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():
            pass  # trailers
        return b"".join(chunks)

    def _cgi_env(self, user: str, content_length: int) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        env = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.fake.port),
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(content_length),
            "REMOTE_ADDR": self.client_address[0],
        }
        if user:
            env["REMOTE_USER"] = user
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        if protocol := self.headers.get("Git-Protocol"):
            # Without this the backend silently falls back to protocol v0.
            env["GIT_PROTOCOL"] = env["HTTP_GIT_PROTOCOL"] = protocol
        return env

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Per-request access logs would drown pytest output; assertions use `requests` instead.
        return
