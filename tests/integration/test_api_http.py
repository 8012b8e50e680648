"""The API through `solver serve` over real HTTP on a loopback port."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.api.http import ApiServer, is_loopback
from solver_core.cli.common import local_owner
from solver_core.cli.serve import make_server, serve_settings
from tests.support.api import ApiWorld, api_world, solve_body
from tests.support.api_client import HttpClient
from tests.support.api_scenarios import ApiScenarios

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world(database_url, tmp_path / "home") as built:
        yield built


def running_server(world: ApiWorld, *, token: str | None) -> Iterator[ApiServer]:
    # The world's current dependencies, read per request, so that a test can reconfigure them.
    server = make_server(lambda: world.deps, "127.0.0.1", 0, token=token, owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def server(world: ApiWorld) -> Iterator[ApiServer]:
    yield from running_server(world, token=TOKEN)


@pytest.fixture
def client(server: ApiServer, world: ApiWorld) -> HttpClient:
    return HttpClient(server.url, owner=local_owner(), token=TOKEN, world=world)


class TestThroughSolverServe(ApiScenarios):
    pass


def test_with_a_token_requests_without_it_have_no_owner(server: ApiServer, world: ApiWorld) -> None:
    for token in (None, "wrong"):
        anonymous = HttpClient(server.url, owner="", token=token, world=world)
        answer = anonymous.call("GET", "/solves")
        assert answer.status == 401
        assert answer.error["code"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.call("POST", "/solves", body=solve_body()).status == 401
        assert anonymous.call("GET", "/health").status == 200  # the service's health is not owner-scoped
    assert world.orchestrator.started == []


def test_without_a_token_loopback_clients_are_the_local_owner(world: ApiWorld) -> None:
    for server in running_server(world, token=None):
        client = HttpClient(server.url, owner=local_owner(), token=None, world=world)
        created = client.call("POST", "/solves", body=solve_body())
        assert created.status == 202
        assert created.json["links"]["self"] == f"{server.url}/solves/{created.json['id']}"
        listed = client.call("GET", "/solves").json["items"]
        assert [s["id"] for s in listed] == [created.json["id"]]
        assert world.deps.solves.list(local_owner()).items[0].owner == local_owner()


def test_a_solve_that_asks_for_reproduction_scripts_says_so_and_a_bad_path_is_422(world: ApiWorld) -> None:
    for server in running_server(world, token=None):
        client = HttpClient(server.url, owner=local_owner(), token=None, world=world)
        body = solve_body(reproduce=True, reproduce_path="checks/repro.sh", reproduce_command="bash checks/repro.sh")
        created = client.call("POST", "/solves", body=body)
        assert created.status == 202
        shown = client.call("GET", f"/solves/{created.json['id']}").json
        assert (shown["reproduce"], shown["reproduce_path"], shown["reproduce_command"], shown["checks"]) == (
            True, "checks/repro.sh", "bash checks/repro.sh", [],
        )  # fmt: skip
        refused = client.call("POST", "/solves", body=solve_body(reproduce=True, reproduce_path="../outside.py"))
        assert refused.status == 422
        assert "reproduce_path" in json.dumps(refused.json)


def test_a_declared_oversized_body_is_refused_before_it_is_read(server: ApiServer) -> None:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    connection.putrequest("POST", "/solves")
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.endheaders()  # and no body at all: the answer must not wait for one
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "payload_too_large"
    connection.close()


def test_a_body_that_is_not_utf8_is_400(client: HttpClient) -> None:
    answer = client.call("POST", "/solves", raw_body=b"\xff\xfe{}")
    assert answer.status == 400
    assert answer.error["code"] == "bad_request"


def test_serve_flags_only_ever_allow_more(monkeypatch: pytest.MonkeyPatch) -> None:
    strict = serve_settings(allow_local_repos=False, allow_replay_models=False)
    assert (strict.allow_local_repos, strict.allow_replay_models) == (False, False)
    loose = serve_settings(allow_local_repos=True, allow_replay_models=True)
    assert (loose.allow_local_repos, loose.allow_replay_models) == (True, True)
    monkeypatch.setenv("SOLVER_ALLOW_REPLAY_MODELS", "true")
    assert serve_settings(allow_local_repos=False, allow_replay_models=False).allow_replay_models


@pytest.mark.parametrize(("address", "loopback"), [("127.0.0.1", True), ("::1", True), ("10.1.2.3", False)])
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback
