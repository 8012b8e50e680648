"""A loopback fake of GitHub's REST API: just the endpoints publishing uses, over in-memory
repositories whose git objects hash exactly as git's (github_objects.py).

- Auth: `Authorization: Bearer <token>` with tokens added by the test (read-only ones get 403
  "Resource not accessible" on writes, like a token without `contents: write`), and a GitHub App:
  JWTs signed with the App's key buy installation tokens scoped to the named repositories.
- Failures are injected per method and path pattern: any status, headers (Retry-After,
  x-ratelimit-*) and message, a number of times.
- Every request is logged (method, path, status) for assertions.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import tests.fakes.github_pulls  # noqa: F401 - registers the issue and pull request routes
from tests.fakes.github_routes import ROUTES, FakeRepo, HttpError, Payload

_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
_TOKENS = re.compile(r"^/app/installations/(?P<id>\d+)/access_tokens$")


@dataclass(frozen=True)
class Grant:
    write: bool = True
    repos: frozenset[str] | None = None  # full names; None: every repository


@dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    message: str
    times: int


@dataclass(frozen=True)
class App:
    app_id: int
    public_key: str
    installation_id: int
    repos: frozenset[str]


class FakeGitHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.tokens: dict[str, Grant] = {}
        self.apps: list[App] = []
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self.url = ""

    # --- set-up ---

    def add_token(self, token: str, *, write: bool = True, repos: set[str] | None = None) -> None:
        self.tokens[token] = Grant(write, frozenset(repos) if repos is not None else None)

    def add_repo(self, owner: str, name: str, source: Path | None = None) -> FakeRepo:
        """A repository; with `source`, a copy of that local git repository (same object ids)."""
        repo = FakeRepo(owner, name)
        if source is not None:
            repo.refs = repo.objects.import_repository(source)
            repo.default_branch = "main" if "main" in repo.refs else next(iter(repo.refs))
        self.repos[f"{owner}/{name}"] = repo
        return repo

    def add_app(self, app_id: int, public_key: str, installation_id: int, repos: set[str]) -> None:
        self.apps.append(App(app_id, public_key, installation_id, frozenset(repos)))

    def fail(self, method: str, path: str, status: int, *, headers: dict[str, str] | None = None,
             message: str = "", times: int = 1) -> None:  # fmt: skip
        """The next `times` requests matching `method` and the regex `path` answer `status`."""
        self.failures.append(Failure(method, re.compile(path), status, headers or {}, message, times))

    # --- inspection ---

    def files(self, full_name: str, commit: str) -> dict[str, bytes]:
        repo = self.repos[full_name]
        tree = repo.commit_or_404(commit).tree
        return {path: repo.objects.objects[sha][1] for path, (_, sha) in repo.objects.flatten(tree).items()}

    def calls(self, method: str, pattern: str) -> int:
        return sum(1 for m, path, _ in self.requests if m == method and re.search(pattern, path))

    # --- serving ---

    @contextmanager
    def serve(self) -> Iterator[FakeGitHub]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def handle(
        self, method: str, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], Payload]:
        path, query = urlsplit(url).path, dict(parse_qsl(urlsplit(url).query))
        with self.lock:
            try:
                status, extra, payload = self._dispatch(method, path, query, headers, body)
            except HttpError as exc:
                status, extra = exc.status, {}
                payload = {"message": exc.message, "documentation_url": "https://docs.github.com/rest"}
                if exc.errors:
                    payload["errors"] = exc.errors
            self.requests.append((method, path, status))
            return status, {"x-ratelimit-remaining": "4999"} | extra, payload

    def _dispatch(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                  body: dict[str, Any]) -> tuple[int, dict[str, str], Payload]:  # fmt: skip
        injected = next((f for f in self.failures if f.method == method and f.pattern.search(path)), None)
        if injected is not None:
            injected.times -= 1
            if injected.times <= 0:
                self.failures.remove(injected)
            return injected.status, injected.headers, {"message": injected.message}
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if (tokens := _TOKENS.match(path)) and method == "POST":
            return 201, {}, self._installation_token(token, int(tokens["id"]), body)
        found = _REPO_PATH.match(path)
        if found is None:
            raise HttpError(404, "Not Found")
        full_name = f"{found['owner']}/{found['name']}"
        if found["rest"] == "/installation":
            return 200, {}, {"id": self._app_for(token, full_name).installation_id}
        repo = self._authorised(token, full_name, write=method != "GET")
        for verb, pattern, handler in ROUTES:
            match = pattern.match(found["rest"] or "")
            if verb == method and match:
                status, payload = handler(repo, match, query, body)
                return status, {}, payload
        raise HttpError(404, "Not Found")

    def _authorised(self, token: str, full_name: str, *, write: bool) -> FakeRepo:
        grant = self.tokens.get(token)
        if grant is None:
            raise HttpError(401, "Bad credentials")
        repo = self.repos.get(full_name)
        if repo is None or (grant.repos is not None and full_name not in grant.repos):
            raise HttpError(404, "Not Found")
        if write and not grant.write:
            raise HttpError(403, "Resource not accessible by personal access token")
        return repo

    def _app_for(self, jwt_token: str, full_name: str) -> App:
        app = next((a for a in self.apps if full_name in a.repos and _signed_by(jwt_token, a)), None)
        if app is None:
            raise HttpError(401, "A JSON web token could not be decoded")
        return app

    def _installation_token(self, jwt_token: str, installation_id: int, body: dict[str, Any]) -> Payload:
        app = next((a for a in self.apps if a.installation_id == installation_id), None)
        if app is None:
            raise HttpError(404, "Not Found")
        if not _signed_by(jwt_token, app):
            raise HttpError(401, "A JSON web token could not be decoded")
        names = body.get("repositories")
        scope = {f for f in app.repos if f.split("/")[1] in names} if names else set(app.repos)
        token = "ghs_" + secrets.token_hex(16)
        self.add_token(token, repos=scope)
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": token, "expires_at": expires}


def _signed_by(token: str, app: App) -> bool:
    import jwt

    try:
        claims = jwt.decode(token, app.public_key, algorithms=["RS256"], options={"require": ["exp", "iat", "iss"]})
    except jwt.PyJWTError:
        return False
    return claims.get("iss") == str(app.app_id)


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in ({"Content-Type": "application/json"} | extra).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
