"""The live feed: events in order, read after a sequence number, with nothing skipped under load."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from solver_core.errors import NotFound
from solver_core.models import SolveRequest
from solver_core.status import EventKind
from tests.conftest import Services

pytestmark = pytest.mark.integration


def new_solve(services: Services, owner: str = "alice") -> UUID:
    request = SolveRequest.model_validate(
        {"repo_url": "https://github.com/org/repo", "issue": {"title": "t"}, "models": ["openai/gpt-5"]}
    )
    return services.solves.start(owner, request).solve.id


def test_events_come_back_in_order_and_page_with_after(services: Services) -> None:
    solve_id = new_solve(services)
    run_id = services.solves.get("alice", solve_id).runs[0].id
    for step in range(1, 26):
        services.events.append(solve_id, EventKind.STEP, f"step {step}", run_id=run_id, data={"step": step})
    everything = services.events.read("alice", solve_id, limit=1000)
    assert [e.message for e in everything] == ["solve queued"] + [f"step {i}" for i in range(1, 26)]
    assert [e.seq for e in everything] == sorted(e.seq for e in everything)

    paged, after = [], 0
    while page := services.events.read("alice", solve_id, after=after, limit=10):
        paged += page
        after = page[-1].seq
    assert paged == everything
    assert services.events.read("alice", solve_id, after=everything[-1].seq) == []
    assert everything[5].data == {"step": 5}
    assert everything[5].run_id == run_id


def test_events_of_other_solves_do_not_mix_in(services: Services) -> None:
    mine, theirs = new_solve(services), new_solve(services, owner="bob")
    services.events.append(theirs, EventKind.LOG, "bob's")
    services.events.append(mine, EventKind.LOG, "mine")
    assert [e.message for e in services.events.read("alice", mine)] == ["solve queued", "mine"]


def test_long_messages_are_truncated_not_refused(services: Services) -> None:
    solve_id = new_solve(services)
    services.events.append(solve_id, EventKind.LOG, "x" * 10_000)
    assert len(services.events.read("alice", solve_id)[-1].message) == 4000


def test_appending_to_an_unknown_solve_is_not_found(services: Services) -> None:
    import uuid

    with pytest.raises(NotFound):
        services.events.append(uuid.uuid4(), EventKind.LOG, "orphan")


def test_a_follower_polling_with_after_never_misses_concurrent_appends(services: Services) -> None:
    """Sequence numbers are taken at insert but become visible at commit; without per-solve ordering
    a reader could see seq N+1 before N commits, move `after` past N and lose it forever."""
    solve_id = new_solve(services)
    writers, per_writer = 6, 25
    done = threading.Event()
    seen: list[int] = []

    def follow() -> None:
        after = 0
        while True:
            finished = done.is_set()
            for event in services.events.read("alice", solve_id, after=after, limit=1000):
                seen.append(event.seq)
                after = event.seq
            if finished:
                return

    def write(writer: int) -> None:
        for i in range(per_writer):
            services.events.append(solve_id, EventKind.STEP, f"w{writer}-{i}")

    follower = threading.Thread(target=follow)
    follower.start()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(write, range(writers)))
    done.set()
    follower.join(timeout=30)
    stored = [e.seq for e in services.events.read("alice", solve_id, limit=1000)]
    assert len(stored) == writers * per_writer + 1
    assert seen == stored
