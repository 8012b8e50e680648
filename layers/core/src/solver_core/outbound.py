"""Outbound HTTP that Solver makes on its own behalf (GitHub's API, webhooks): one way to send a
request that never follows a redirect, and one retry policy, both built on well-kept libraries
(urllib, tenacity) instead of a loop per client.

A redirect is an answer, not a hop: following it could carry a credential or a signed body to a
host nobody chose. Each client decides per answer whether to try again (and may name the wait the
server asked for); the policy bounds the attempts and backs off exponentially, with jitter,
between them.
"""

from __future__ import annotations

import logging
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """What a server answered: any status, headers with lower-case names, and the body."""

    status: int
    headers: dict[str, str]
    body: bytes


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx comes back as an HTTPError: an answer, never a hop


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(NoRedirects)


def send(director: urllib.request.OpenerDirector, request: urllib.request.Request, timeout_s: float) -> Answer | None:
    """The server's answer, whatever its status, or None when it could not be reached."""
    try:
        with director.open(request, timeout=timeout_s) as response:
            return Answer(response.status, _lower(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, _lower(exc.headers.items()), exc.read())
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeouts
        log.warning("%s unreachable: %s", request.host, exc)
        return None


class TryAgain(Exception):
    """Raised by an attempt that should be repeated: after `wait_s` when the server said how long,
    else after the policy's backoff. `final` is raised instead when no attempt is left (None: the
    attempt's caller gets the TryAgain itself)."""

    def __init__(self, reason: str, *, wait_s: float | None = None, final: Exception | None = None) -> None:
        super().__init__(reason)
        self.wait_s = wait_s
        self.final = final


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries; between them the server's wait, else `backoff_s` doubling up to
    `max_backoff_s`, with jitter when `jitter` is set."""

    attempts: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    jitter: bool = False

    def backoff(self, attempt: int) -> float:
        base = min(self.backoff_s * 2.0 ** (attempt - 1), self.max_backoff_s)
        return base * random.uniform(0.5, 1.0) if self.jitter else base  # noqa: S311 - jitter, not secrecy

    def call(self, attempt: Callable[[], T], *, sleep: Callable[[float], None]) -> T:
        """Run `attempt` until it returns, raising TryAgain in between; when the attempts are spent,
        raise the last TryAgain's `final` error (or the TryAgain itself)."""
        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(TryAgain),
            sleep=sleep,
            retry_error_callback=_give_up,
        )
        return retrying(attempt)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TryAgain) and error.wait_s is not None:
            return error.wait_s
        return self.backoff(state.attempt_number)


def _give_up(state: RetryCallState) -> Any:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, TryAgain) and error.final is not None:
        raise error.final
    if error is not None:
        raise error
    raise RuntimeError("retry gave up without an outcome")  # pragma: no cover - tenacity always sets one


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}
