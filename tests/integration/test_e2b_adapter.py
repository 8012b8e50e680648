"""E2BSandbox's own contract with the real SDK (against the fake service): what it sends at
create, and how SDK and transport failures become our typed errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.errors import SandboxCapacityExceeded, SandboxGone, SandboxUnavailable
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.e2b import E2BSandboxBackend
from tests.fakes.e2b import FakeE2BService

pytestmark = pytest.mark.integration

SPEC = SandboxSpec(
    metadata={"app": "solver", "run_id": "r-1"}, lifetime_s=900, idempotency_key="Run_1-0", template="solver-tpl"
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FakeE2BService]:
    with FakeE2BService(tmp_path / "e2b", capacity=1).start() as svc:
        yield svc


def backend_for(
    service: FakeE2BService, *, api_key: str | None = None, api_url: str | None = None
) -> E2BSandboxBackend:
    return E2BSandboxBackend(
        api_key=api_key or service.api_key, api_url=api_url or service.api_url, sandbox_url=service.sandbox_url
    )


def test_create_sends_template_metadata_lifetime_and_a_valid_idempotency_key(service: FakeE2BService) -> None:
    box = backend_for(service).create(SPEC)
    (request,) = service.create_requests
    assert request["template"] == "solver-tpl"
    assert request["metadata"] == {"app": "solver", "run_id": "r-1"}
    assert request["timeout"] == 900
    assert request["idempotency_key"] == "run-1-0"  # e2b accepts lowercase letters, digits and dashes
    assert request["envs"] in ({}, None)
    assert backend_for(service).create(SPEC).id == box.id  # same key, same sandbox


def test_capacity_is_its_own_error(service: FakeE2BService) -> None:
    backend = backend_for(service)
    backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=60))
    with pytest.raises(SandboxCapacityExceeded):
        backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=60))


def test_provider_errors_are_unavailable_and_retryable(service: FakeE2BService) -> None:
    service.fail_next(10, 503)  # more than the SDK's own retries
    with pytest.raises(SandboxUnavailable) as caught:
        backend_for(service).create(SPEC)
    assert caught.value.retryable


def test_an_unreachable_control_plane_is_unavailable(service: FakeE2BService) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(SandboxUnavailable):
        backend_for(service, api_url=closed).create(SPEC)


def test_a_wrong_key_is_unavailable_not_a_crash(service: FakeE2BService) -> None:
    with pytest.raises(SandboxUnavailable, match="API key"):
        backend_for(service, api_key="e2b_wrong").list({"app": "solver"})


def test_gone_sandboxes_are_gone(service: FakeE2BService) -> None:
    backend = backend_for(service)
    box = backend.create(SPEC)
    service.kill_sandbox(box.id)
    with pytest.raises(SandboxGone):
        box.run("true", timeout=10)
    with pytest.raises(SandboxGone):
        backend.connect(box.id)
    assert backend.kill(box.id) is False
