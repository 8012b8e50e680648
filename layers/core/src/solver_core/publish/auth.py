"""Credentials for publishing: a token from settings, or a GitHub App's installation token.

The App signs a short-lived JWT (RS256) with its private key, finds its installation on the
repository (unless one is configured), and asks for an installation token scoped to that one
repository. Tokens are cached until shortly before they expire. None of them ever enters a sandbox:
publishing runs in the orchestrator's process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from solver_core.errors import ConfigurationError
from solver_core.github_urls import RepoRef
from solver_core.publish.client import GitHubClient, RetryPolicy

JWT_LIFETIME_S = 540  # GitHub accepts at most 10 minutes
CLOCK_SKEW_S = 60
REFRESH_MARGIN_S = 300


class Credentials(Protocol):
    def token_for(self, repo: RepoRef) -> str: ...


class StaticToken:
    """A personal access token or fine-grained token (SOLVER_GITHUB_TOKEN)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token_for(self, repo: RepoRef) -> str:
        return self._token


class GitHubAppCredentials:
    def __init__(
        self,
        app_id: int,
        private_key_pem: str,
        api_url: str,
        *,
        installation_id: int | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_id = app_id
        # A PEM passed through an environment variable often arrives with literal "\n"s.
        self._key = private_key_pem.replace("\\n", "\n") if "\n" not in private_key_pem else private_key_pem
        self._installation_id = installation_id
        self._clock = clock
        self._client = GitHubClient(api_url, self.app_jwt, policy=policy, sleep=sleep, clock=clock)
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def app_jwt(self) -> str:
        try:
            import jwt
        except ImportError as exc:  # pragma: no cover - a core dependency; guards a stripped install
            raise ConfigurationError("GitHub App credentials need PyJWT with cryptography installed") from exc
        now = int(self._clock())
        claims = {"iat": now - CLOCK_SKEW_S, "exp": now + JWT_LIFETIME_S, "iss": str(self._app_id)}
        try:
            return jwt.encode(claims, self._key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("SOLVER_GITHUB_APP_PRIVATE_KEY is not a usable RSA private key (PEM)") from exc

    def token_for(self, repo: RepoRef) -> str:
        with self._lock:
            cached = self._cache.get(repo.full_name)
            if cached and cached[1] - REFRESH_MARGIN_S > self._clock():
                return cached[0]
            token, expires = self._installation_token(repo)
            self._cache[repo.full_name] = (token, expires)
            return token

    def _installation_token(self, repo: RepoRef) -> tuple[str, float]:
        installation = self._installation_id or int(self._client.get(f"{repo.api_path}/installation")["id"])
        # Scoped to the one repository: the token can touch nothing else the App is installed on.
        answer = self._client.post(f"/app/installations/{installation}/access_tokens", {"repositories": [repo.name]})
        expires = datetime.fromisoformat(str(answer["expires_at"]).replace("Z", "+00:00")).timestamp()
        return str(answer["token"]), expires
