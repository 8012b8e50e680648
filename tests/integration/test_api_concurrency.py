"""Bursts of starts over real HTTP: every distinct Idempotency-Key makes one solve, one key makes one."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from solver_core.api import ApiLimits
from solver_core.cli.common import local_owner
from solver_core.cli.serve import make_server
from solver_core.db.schema import RunRow, SolveRow
from tests.support.api import ApiWorld, api_world, solve_body
from tests.support.api_client import Answer, HttpClient

pytestmark = pytest.mark.integration

BURST = 100


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[tuple[HttpClient, ApiWorld]]:
    with api_world(database_url, tmp_path / "home", limits=ApiLimits(max_active_solves_per_owner=10 * BURST)) as world:
        server = make_server(lambda: world.deps, "127.0.0.1", 0, token=None, owner=local_owner())
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield HttpClient(server.url, owner=local_owner(), token=None, world=world), world
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def burst(client: HttpClient, keys: list[str]) -> list[Answer]:
    barrier = threading.Barrier(len(keys))

    def start(key: str) -> Answer:
        barrier.wait()  # every request in flight at once
        return client.call("POST", "/solves", body=solve_body(), headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        return list(pool.map(start, keys))


def count(world: ApiWorld, table: type[SolveRow] | type[RunRow]) -> int:
    with world.deps.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_a_hundred_distinct_keys_make_a_hundred_solves(client: tuple[HttpClient, ApiWorld]) -> None:
    http, world = client
    answers = burst(http, [f"key-{i}" for i in range(BURST)])
    assert Counter(a.status for a in answers) == {202: BURST}, [a.text for a in answers if a.status != 202][:3]
    assert len({a.json["id"] for a in answers}) == BURST
    assert count(world, SolveRow) == BURST
    assert count(world, RunRow) == 3 * BURST  # two attempts and the baseline each
    assert len(set(world.orchestrator.started)) == BURST


def test_a_hundred_starts_with_one_key_make_one_solve(client: tuple[HttpClient, ApiWorld]) -> None:
    http, world = client
    answers = burst(http, ["the-same-key"] * BURST)
    assert Counter(a.status for a in answers) == {202: 1, 200: BURST - 1}, [a.text for a in answers][:3]
    assert len({a.json["id"] for a in answers}) == 1
    assert count(world, SolveRow) == 1
    assert count(world, RunRow) == 3  # two attempts and the baseline
