"""Starting, reading and listing solves on both databases."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from solver_core.db.schema import EventRow, RunRow, SolveRow
from solver_core.errors import BadRequest, IdempotencyConflict, NotFound, TooManyRequests, ValidationFailed
from solver_core.models import SolveRequest
from solver_core.rules import RequestPolicy
from solver_core.services.solves import ActiveCap, SolveService
from solver_core.status import SolveStatus
from tests.conftest import Services

pytestmark = pytest.mark.integration


def make_request(**changes: Any) -> SolveRequest:
    data: dict[str, Any] = {
        "repo_url": "https://github.com/org/repo",
        "ref": "main",
        "issue": {"title": "Fix the bug"},
        "models": ["anthropic/claude-sonnet-4-5", "openai/gpt-5"],
        "attempts_per_model": 2,
        "max_parallel": 3,
        "test_command": "pytest -q",
    }
    return SolveRequest.model_validate(data | changes)


def count(services: Services, table: type[SolveRow] | type[RunRow] | type[EventRow]) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_start_creates_the_solve_and_its_runs_queued(services: Services) -> None:
    result = services.solves.start("alice", make_request())
    solve = result.solve
    assert result.created
    assert solve.status is SolveStatus.QUEUED
    assert [(r.index, r.model) for r in solve.runs] == [
        (0, "anthropic/claude-sonnet-4-5"),
        (1, "anthropic/claude-sonnet-4-5"),
        (2, "openai/gpt-5"),
        (3, "openai/gpt-5"),
    ]
    assert {r.status.value for r in solve.runs} == {"queued"}
    assert solve.agent_config == "default"
    assert services.solves.get("alice", solve.id) == solve
    assert [e.message for e in services.events.read("alice", solve.id)] == ["solve queued"]


def test_max_parallel_never_exceeds_the_number_of_runs(services: Services) -> None:
    solve = services.solves.start("alice", make_request(models=["openai/gpt-5"], attempts_per_model=1)).solve
    assert solve.max_parallel == 1


def test_unregistered_models_and_agent_configs_are_refused_and_nothing_is_written(services: Services) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.solves.start("alice", make_request(models=["openai/gpt-5", "acme/unknown-model"]))
    assert caught.value.details[0]["field"] == "models[1]"
    assert caught.value.details[0]["rule"] == "model_not_registered"
    with pytest.raises(ValidationFailed, match="agent configuration"):
        services.solves.start("alice", make_request(agent_config="nope"))
    assert count(services, SolveRow) == count(services, RunRow) == count(services, EventRow) == 0


def test_a_permissive_policy_accepts_any_model(services: Services) -> None:
    permissive = SolveService(services.sessions, RequestPolicy(allow_unregistered_models=True))
    solve = permissive.start("alice", make_request(models=["acme/new-model"])).solve
    assert solve.models == ["acme/new-model"]


def test_same_key_and_request_returns_the_same_solve(services: Services) -> None:
    first = services.solves.start("alice", make_request(), idempotency_key="key-1")
    again = services.solves.start("alice", make_request(), idempotency_key="key-1")
    assert first.created
    assert not again.created
    assert again.solve.id == first.solve.id
    assert count(services, SolveRow) == 1


def test_same_key_with_a_different_request_is_a_conflict(services: Services) -> None:
    first = services.solves.start("alice", make_request(), idempotency_key="key-1")
    with pytest.raises(IdempotencyConflict) as caught:
        services.solves.start("alice", make_request(ref="dev"), idempotency_key="key-1")
    assert caught.value.status == 409
    assert caught.value.details[0]["solve_id"] == str(first.solve.id)
    assert count(services, SolveRow) == 1


def test_keys_are_unique_per_owner_not_globally(services: Services) -> None:
    alice = services.solves.start("alice", make_request(), idempotency_key="shared")
    bob = services.solves.start("bob", make_request(ref="dev"), idempotency_key="shared")
    assert alice.solve.id != bob.solve.id


def test_twenty_concurrent_identical_starts_make_one_solve(services: Services) -> None:
    barrier = threading.Barrier(20)

    def start(_: int) -> tuple[uuid.UUID, bool]:
        barrier.wait()
        result = services.solves.start("alice", make_request(), idempotency_key="burst")
        return result.solve.id, result.created

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(start, range(20)))
    assert len({solve_id for solve_id, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    assert count(services, SolveRow) == 1
    with services.sessions() as session:
        kinds = sorted(session.scalars(select(RunRow.kind)).all())
    assert kinds == ["attempt"] * 4 + ["baseline"]  # one solve's runs, made once: its attempts and its baseline


def test_another_owners_solve_is_not_found(services: Services) -> None:
    solve = services.solves.start("alice", make_request()).solve
    with pytest.raises(NotFound):
        services.solves.get("mallory", solve.id)
    with pytest.raises(NotFound):
        services.events.read("mallory", solve.id)
    assert services.solves.list("mallory").items == []
    with pytest.raises(NotFound):
        services.solves.get("alice", uuid.uuid4())


def test_list_pages_newest_first_without_gaps_or_repeats(services: Services) -> None:
    started = [services.solves.start("alice", make_request(ref=f"b{i}")).solve.id for i in range(7)]
    services.solves.start("bob", make_request())
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = services.solves.list("alice", limit=3, cursor=cursor)
        seen += [s.id for s in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(started))
    assert pages == 3


def test_list_filters_by_status(services: Services) -> None:
    ids = [services.solves.start("alice", make_request(ref=f"b{i}")).solve.id for i in range(3)]
    services.runs.move_solve(ids[1], SolveStatus.RUNNING)
    running = services.solves.list("alice", status=SolveStatus.RUNNING)
    assert [s.id for s in running.items] == [ids[1]]
    assert [s.id for s in services.solves.list("alice", status=SolveStatus.QUEUED).items] == [ids[2], ids[0]]


def test_a_forged_cursor_is_a_bad_request(services: Services) -> None:
    with pytest.raises(BadRequest, match="cursor"):
        services.solves.list("alice", cursor="not-a-cursor!!")


def test_the_cap_on_unfinished_solves_holds_under_a_burst(services: Services) -> None:
    barrier = threading.Barrier(12)
    cap = ActiveCap(limit=5, retry_after_s=7)

    def start(i: int) -> str:
        barrier.wait()
        try:
            services.solves.start("alice", make_request(ref=f"b{i}"), idempotency_key=f"k{i}", active_cap=cap)
        except TooManyRequests as exc:
            return f"refused after {exc.retry_after_s}s"
        return "started"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(start, range(12)))
    assert outcomes.count("started") == 5
    assert outcomes.count("refused after 7s") == 7
    assert count(services, SolveRow) == 5
    first = outcomes.index("started")
    replay = services.solves.start("alice", make_request(ref=f"b{first}"), idempotency_key=f"k{first}", active_cap=cap)
    assert replay.created is False  # a replay is never refused by the cap
    services.runs.move_solve(services.solves.list("alice").items[0].id, SolveStatus.FAILED)
    assert services.solves.start("alice", make_request(ref="new"), active_cap=cap).created  # a slot freed up


def test_the_deployment_bounds_max_parallel(services: Services) -> None:
    """SOLVER_MAX_PARALLEL caps every solve's concurrent runs; the solve shows the bound it runs with."""
    bounded = SolveService(services.sessions, RequestPolicy(max_parallel=2))
    solve = bounded.start("alice", make_request(max_parallel=4)).solve
    assert solve.max_parallel == 2
    assert services.solves.start("alice", make_request(max_parallel=4)).solve.max_parallel == 4


def test_max_parallel_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from solver_core.settings import Settings

    monkeypatch.setenv("SOLVER_MAX_PARALLEL", "3")
    assert RequestPolicy.from_settings(Settings()).max_parallel == 3
