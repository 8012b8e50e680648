"""Status-change notifications: EventBridge (moto) and the signed webhook (a loopback receiver)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import boto3
import pytest
from moto import mock_aws

from solver_core.models import IssueSpec, Limits, SolveView
from solver_core.notify import (
    DETAIL_TYPE,
    SIGNATURE_HEADER,
    CompositeNotifier,
    EventBridgeNotifier,
    WebhookNotifier,
    WebhookRefused,
    build_notifier,
)
from solver_core.settings import Settings
from solver_core.status import SolveStatus

pytestmark = pytest.mark.integration

SECRET = "webhook-secret"


def solve(callback_url: str | None = None, status: SolveStatus = SolveStatus.SUCCEEDED) -> SolveView:
    now = datetime.now(UTC)
    return SolveView(
        id=uuid4(),
        owner="alice",
        status=status,
        repo_url="https://github.com/org/repo",
        ref="main",
        issue=IssueSpec(title="Fix it"),
        models=["openai/gpt-5"],
        attempts_per_model=1,
        max_parallel=1,
        agent_config="default",
        limits=Limits(),
        setup_command=None,
        test_command=None,
        callback_url=callback_url,
        external_ref={"session_id": "chat-9"},
        execution_ref=None,
        champion_run_id=uuid4(),
        error=None,
        created_at=now,
        updated_at=now,
        started_at=now,
        finished_at=now,
    )


# --- EventBridge -----------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def capture_queue(bus: str) -> tuple[Any, str]:
    """An SQS queue receiving every `solver` event on the bus (how a consumer would subscribe)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName="solver-status")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="solver-status", EventBusName=bus, EventPattern=json.dumps({"source": ["solver"]}))
    events.put_targets(Rule="solver-status", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, queue


def test_a_status_change_is_published_on_the_bus(aws: None) -> None:
    boto3.client("events").create_event_bus(Name="solver-bus")
    sqs, queue = capture_queue("solver-bus")
    changed = solve()
    EventBridgeNotifier(boto3.client("events"), bus_name="solver-bus", stack="prod").solve_changed(changed)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(messages[0]["Body"])
    assert (event["source"], event["detail-type"]) == ("solver", DETAIL_TYPE)
    detail = event["detail"]
    assert detail["solve_id"] == str(changed.id)
    assert detail["status"] == "succeeded"
    assert detail["champion_run_id"] == str(changed.champion_run_id)
    assert (detail["owner"], detail["external_ref"], detail["stack"]) == ("alice", {"session_id": "chat-9"}, "prod")


def test_a_publishing_failure_is_logged_not_raised(aws: None, caplog: pytest.LogCaptureFixture) -> None:
    EventBridgeNotifier(boto3.client("events"), bus_name="no-such-bus").solve_changed(solve())
    broken = EventBridgeNotifier(object()).solve_changed  # a client without put_events
    broken(solve())
    assert "could not publish" in caplog.text or "refused" in caplog.text


def test_build_notifier_follows_the_settings(aws: None) -> None:
    settings = Settings().model_copy(update={"event_bus_name": "default", "webhook_secret": None})
    sqs, queue = capture_queue("default")
    build_notifier(settings).solve_changed(solve())
    assert len(sqs.receive_message(QueueUrl=queue)["Messages"]) == 1


# --- the webhook -----------------------------------------------------------------------------


@dataclass
class Receiver:
    """A loopback webhook receiver answering a scripted list of statuses (then 200)."""

    script: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(script=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.script.pop(0) if state.script else 200
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/solver?token=abc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def webhook(attempts: int = 4, sleeps: list[float] | None = None) -> WebhookNotifier:
    return WebhookNotifier(
        SECRET,
        allowed_http_hosts=["127.0.0.1"],
        attempts=attempts,
        timeout_s=5,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_the_webhook_is_signed_with_hmac_sha256(receiver: Receiver) -> None:
    changed = solve(receiver.url)
    webhook().solve_changed(changed)
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], expected)
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["solve_id"] == str(changed.id)
    assert payload["status"] == "succeeded"
    assert payload["type"] == "solve.status_changed"


def test_server_errors_are_retried_with_backoff_then_delivered(receiver: Receiver) -> None:
    receiver.script = [500, 503, 502]
    sleeps: list[float] = []
    webhook(attempts=4, sleeps=sleeps).solve_changed(solve(receiver.url))
    assert len(receiver.received) == 4
    assert len(sleeps) == 3
    assert sleeps[0] < 0.6
    assert sleeps[2] > sleeps[0]
    deliveries = {headers["x-solver-delivery"] for headers, _ in receiver.received}
    assert len(deliveries) == 1  # one delivery id across retries: receivers can deduplicate


def test_it_gives_up_after_the_attempts_without_raising(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.script = [500] * 10
    webhook(attempts=3).solve_changed(solve(receiver.url))
    assert len(receiver.received) == 3
    assert "gave up" in caplog.text


def test_client_errors_and_redirects_are_not_retried_or_followed(receiver: Receiver) -> None:
    receiver.script = [400, 302]
    hook = webhook()
    assert not hook.deliver(receiver.url, b"{}")
    assert not hook.deliver(receiver.url, b"{}")
    assert len(receiver.received) == 2  # one each; the redirect to the metadata service was not followed


def test_unreachable_receivers_are_retried_and_never_raise() -> None:
    sleeps: list[float] = []
    webhook(attempts=3, sleeps=sleeps).solve_changed(solve("http://127.0.0.1:9/nothing-listens"))
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # http to a host not allowed http
        "https://127.0.0.2/x",  # loopback without being listed
        "https://169.254.169.254/latest",  # link-local (cloud metadata)
        "https://10.0.0.7/x",  # private
        "https://user:pw@hooks.example.com/x",
    ],
)
def test_urls_into_our_network_or_over_http_are_refused(url: str) -> None:
    with pytest.raises(WebhookRefused):
        webhook().check_destination(url)
    webhook().solve_changed(solve(url))  # and, as a notification, simply not sent


def test_a_failing_notifier_does_not_stop_the_others(receiver: Receiver) -> None:
    class Broken:
        def solve_changed(self, solve: SolveView) -> None:
            raise RuntimeError("boom")

    CompositeNotifier([Broken(), webhook()]).solve_changed(solve(receiver.url))
    assert len(receiver.received) == 1


def test_no_secret_means_no_webhook(receiver: Receiver) -> None:
    build_notifier(Settings()).solve_changed(solve(receiver.url))
    assert receiver.received == []
