"""Status-change notifications: an EventBridge event, and the solve's optional `callback_url` webhook.

Both are best effort and never raise: a notification that cannot be delivered is logged, and the
solve's state (which the caller can always poll) is unaffected.

The webhook is a JSON POST signed with `X-Solver-Signature: sha256=<hex HMAC-SHA256 of the raw
body>` under the deployment's webhook secret. It goes to https URLs only (http only to hosts in
`allowed_http_hosts`, for tests and local setups), never follows redirects, and refuses hosts that
resolve to private, loopback or link-local addresses unless listed there too: a callback URL is
chosen by the caller and must not reach into our network. Transport errors, 408, 429 and 5xx are
retried with exponential backoff, a bounded number of times.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from solver_core import outbound
from solver_core.models import SolveView
from solver_core.ports import Notifier
from solver_core.status import SolveStatus

if TYPE_CHECKING:
    from solver_core.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "solver"
DETAIL_TYPE = "Solve Status Changed"
SIGNATURE_HEADER = "X-Solver-Signature"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class SolveChanged(BaseModel):
    """The EventBridge event's detail, and the webhook's body."""

    model_config = ConfigDict(frozen=True)

    type: str = "solve.status_changed"
    solve_id: str
    status: SolveStatus
    champion_run_id: str | None
    owner: str
    external_ref: dict[str, str] | None
    repo_url: str
    error: str | None
    finished_at: datetime | None
    stack: str
    sent_at: datetime

    @classmethod
    def of(cls, solve: SolveView, stack: str) -> SolveChanged:
        return cls(
            solve_id=str(solve.id),
            status=solve.status,
            champion_run_id=str(solve.champion_run_id) if solve.champion_run_id else None,
            owner=solve.owner,
            external_ref=solve.external_ref,
            repo_url=solve.repo_url,
            error=solve.error,
            finished_at=solve.finished_at,
            stack=stack,
            sent_at=datetime.now(UTC),
        )


class EventBridgeNotifier:
    def __init__(self, client: Any, *, bus_name: str = "default", stack: str = "solver") -> None:
        self._client = client
        self._bus = bus_name
        self._stack = stack

    def solve_changed(self, solve: SolveView) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": SolveChanged.of(solve, self._stack).model_dump_json(),
            "EventBusName": self._bus,
        }
        try:
            answer = self._client.put_events(Entries=[entry])
        except Exception:
            log.exception("could not publish the status of solve %s to EventBridge", solve.id)
            return
        if answer.get("FailedEntryCount"):
            log.error("EventBridge refused the status of solve %s: %s", solve.id, answer.get("Entries"))


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookRefused(Exception):
    """The callback URL may not be called (scheme, host or address)."""


class WebhookNotifier:
    def __init__(
        self,
        secret: str,
        *,
        allowed_http_hosts: Iterable[str] = (),
        attempts: int = 4,
        timeout_s: float = 5.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        stack: str = "solver",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._secret = secret.encode()
        self._trusted = frozenset(h.lower() for h in allowed_http_hosts)
        self._policy = outbound.RetryPolicy(
            attempts=max(1, attempts), backoff_s=backoff_s, max_backoff_s=max_backoff_s, jitter=True
        )
        self._timeout = timeout_s
        self._stack = stack
        self._sleep = sleep
        # A redirect could lead anywhere, http or internal: it is an answer, not a hop.
        self._opener = outbound.opener()

    def solve_changed(self, solve: SolveView) -> None:
        if not solve.callback_url:
            return
        body = SolveChanged.of(solve, self._stack).model_dump_json().encode()
        try:
            delivered = self.deliver(solve.callback_url, body)
        except Exception:
            log.exception("the webhook of solve %s failed", solve.id)
            return
        if not delivered:
            log.error("gave up on the webhook of solve %s after %d attempts", solve.id, self._policy.attempts)

    def deliver(self, url: str, body: bytes) -> bool:
        """POST the body; True once the receiver answered 2xx. Raises WebhookRefused for a URL
        that may not be called."""
        self.check_destination(url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "solver-webhook/1",
            SIGNATURE_HEADER: sign(self._secret, body),
            "X-Solver-Event": "solve.status_changed",
            "X-Solver-Delivery": str(uuid.uuid4()),  # the same on every retry: receivers can dedupe
        }
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked

        def attempt() -> bool:
            answer = outbound.send(self._opener, request, self._timeout)
            if answer is None:
                raise outbound.TryAgain("unreachable")
            if 200 <= answer.status < 300:
                return True
            log.warning("webhook %s answered %s", _redact(url), answer.status)
            if answer.status in RETRYABLE_STATUS:
                raise outbound.TryAgain(str(answer.status), wait_s=self._retry_after(answer.headers.get("retry-after")))
            return False

        try:
            return self._policy.call(attempt, sleep=self._sleep)
        except outbound.TryAgain:
            return False

    def _retry_after(self, value: str | None) -> float | None:
        if value is None or not value.strip().isdigit():
            return None
        return min(float(value), self._policy.max_backoff_s)

    def check_destination(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        trusted = host in self._trusted
        if parts.scheme != "https" and not (parts.scheme == "http" and trusted):
            raise WebhookRefused(f"callback URLs must use https: {_redact(url)}")
        if not host or parts.username or parts.password:
            raise WebhookRefused(f"callback URL has no usable host: {_redact(url)}")
        if trusted:
            return
        # Resolved here and again when connecting: a name that changes its answer in between can
        # still slip through, which needs a pinned connection to close; this stops the plain cases.
        for info in socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP):
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not address.is_global:
                raise WebhookRefused(f"callback host {host} resolves to a non-public address")


def _redact(url: str) -> str:
    """The URL without its query, which may carry the receiver's own token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class CompositeNotifier:
    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self._notifiers = list(notifiers)

    def solve_changed(self, solve: SolveView) -> None:
        for notifier in self._notifiers:
            try:
                notifier.solve_changed(solve)
            except Exception:  # each is meant never to raise; one that does must not stop the others
                log.exception("notifier %s failed for solve %s", type(notifier).__name__, solve.id)


def build_notifier(settings: Settings, *, events_client: Any = None) -> Notifier:
    """EventBridge when a bus is configured; webhooks when a secret is (unsigned ones are never sent)."""
    notifiers: list[Notifier] = []
    bus = settings.event_bus_name
    if bus:
        if events_client is None:
            import boto3

            events_client = boto3.client("events", region_name=settings.aws_region)
        notifiers.append(EventBridgeNotifier(events_client, bus_name=bus, stack=settings.stack_name))
    secret = settings.webhook_secret
    if secret is not None:
        notifiers.append(
            WebhookNotifier(
                secret.get_secret_value(),
                allowed_http_hosts=settings.allowed_http_hosts,
                attempts=settings.webhook_attempts,
                stack=settings.stack_name,
            )
        )
    else:
        log.info("callback_url webhooks are off: no webhook secret is configured")
    return CompositeNotifier(notifiers)
