"""A small GitHub REST client (urllib, JSON) with the error handling publishing needs.

- Rate limits (429, or 403 with `Retry-After`, `x-ratelimit-remaining: 0` or a "secondary rate limit"
  message) are waited out when the wait is at most `max_wait_s`, a bounded number of times; a longer
  wait raises GitHubRateLimited at once (publishing again later works).
- 5xx and transport errors are retried with exponential backoff, a bounded number of times.
- 401 and any other 403 raise GitHubPermissionDenied: no retry can fix credentials.
The token is sent to the configured API URL only, and never logged.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from solver_core import outbound
from solver_core.errors import (
    GitHubError,
    GitHubNotFound,
    GitHubPermissionDenied,
    GitHubRateLimited,
    GitHubUnavailable,
)

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
SECONDARY_LIMIT_WAIT_S = 60.0  # GitHub: wait at least a minute after a secondary rate limit


@dataclass(frozen=True)
class RetryPolicy(outbound.RetryPolicy):
    """The shared policy, plus the longest rate-limit wait worth sitting out."""

    max_wait_s: float = 60.0


class _Answer(outbound.Answer):
    def message(self) -> str:
        """GitHub's message, with the details of a 422 (they say *what* failed validation)."""
        try:
            payload = json.loads(self.body)
        except ValueError:
            return self.body[:200].decode(errors="replace")
        if not isinstance(payload, dict):
            return ""
        details = [str(e.get("message") or e.get("code")) for e in payload.get("errors", []) if isinstance(e, dict)]
        return "; ".join([str(payload.get("message", "")), *details])[:500]


class GitHubClient:
    def __init__(
        self,
        api_url: str,
        token: Callable[[], str],
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 30.0,
    ) -> None:
        self._api = api_url.rstrip("/")
        self._token = token
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._timeout = timeout_s
        self._opener = outbound.opener()  # a redirect would carry the token elsewhere

    def get(self, path: str, **params: str | int) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, body)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        url = self._api + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()

        def attempt() -> Any:
            answer = self._send(method, url, data)
            if answer is not None and answer.status < 300:
                return json.loads(answer.body) if answer.body.strip() else None
            raise self._verdict(f"GitHub {method} {path}", answer)

        return self._policy.call(attempt, sleep=self._sleep)

    def _send(self, method: str, url: str, data: bytes | None) -> _Answer | None:
        """The answer, or None when GitHub could not be reached."""
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token()}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "solver-publish/1",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - configured URL
        answer = outbound.send(self._opener, request, self._timeout)
        return None if answer is None else _Answer(answer.status, answer.headers, answer.body)

    def _verdict(self, what: str, answer: _Answer | None) -> Exception:
        """What a failed attempt raises: TryAgain (with the typed error for when none is left), or
        the typed error itself when no retry can help."""
        if answer is None or answer.status >= 500:
            status = 0 if answer is None else answer.status
            final = GitHubUnavailable(
                f"{what}: {_describe(answer)} after {self._policy.attempts} attempts", http_status=status
            )
            log.warning("%s: %s; retrying", what, _describe(answer))
            return outbound.TryAgain(_describe(answer), final=final)
        rate_wait = self._rate_limit_wait(answer)
        if rate_wait is None:
            return _error(what, answer)
        limited = GitHubRateLimited(
            f"{what}: rate limited; retry in {rate_wait:.0f}s ({answer.message()})", http_status=answer.status
        )
        if rate_wait > self._policy.max_wait_s:
            return limited
        log.warning("%s: rate limited; retrying in %.1fs", what, rate_wait)
        return outbound.TryAgain("rate limited", wait_s=rate_wait, final=limited)

    def _rate_limit_wait(self, answer: _Answer) -> float | None:
        if answer.status not in {403, 429}:
            return None
        retry_after = answer.headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        if answer.headers.get("x-ratelimit-remaining") == "0":
            reset = answer.headers.get("x-ratelimit-reset", "").strip()
            return max(0.0, float(reset) - self._clock()) + 1.0 if reset.isdigit() else SECONDARY_LIMIT_WAIT_S
        if answer.status == 429 or "rate limit" in answer.message().lower():
            return SECONDARY_LIMIT_WAIT_S
        return None


def _error(what: str, answer: _Answer) -> GitHubError:
    message = f"{what}: {answer.status} {answer.message()}"
    if answer.status in {401, 403}:
        return GitHubPermissionDenied(message, http_status=answer.status)
    if answer.status == 404:
        return GitHubNotFound(message, http_status=404)
    return GitHubError(message, http_status=answer.status)


def _describe(answer: _Answer | None) -> str:
    return "unreachable" if answer is None else f"{answer.status} {answer.message()}"
