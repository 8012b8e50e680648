"""Status changes are conditional updates: one of two racing writers wins, terminal rows stay put."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from solver_core.errors import IllegalTransition, NotFound
from solver_core.models import SolveRequest, SolveView
from solver_core.status import RunStatus, SolveStatus
from tests.conftest import Services

pytestmark = pytest.mark.integration

PIPELINE = [RunStatus.LAUNCHING, RunStatus.PREPARING, RunStatus.SOLVING, RunStatus.COLLECTING]


def start(services: Services) -> SolveView:
    request = SolveRequest.model_validate(
        {
            "repo_url": "https://github.com/org/repo",
            "issue": {"title": "Fix it"},
            "models": ["openai/gpt-5"],
            "attempts_per_model": 2,
        }
    )
    return services.solves.start("alice", request).solve


def race(writers: list[Callable[[], Any]]) -> list[str]:
    """Run writers at the same instant; report 'won' or the error class of each."""
    barrier = threading.Barrier(len(writers))

    def attempt(writer: Callable[[], Any]) -> str:
        barrier.wait()
        try:
            writer()
        except IllegalTransition:
            return "lost"
        return "won"

    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        return list(pool.map(attempt, writers))


def walk(services: Services, run_id: UUID, statuses: list[RunStatus]) -> None:
    for status in statuses:
        services.runs.move(run_id, status)


@pytest.mark.parametrize("contenders", [2, 8])
def test_of_concurrent_finishers_exactly_one_wins(services: Services, contenders: int) -> None:
    run = start(services).runs[0]
    walk(services, run.id, PIPELINE)
    targets = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED] * contenders
    outcomes = race([functools.partial(services.runs.move, run.id, t) for t in targets[:contenders]])
    assert sorted(outcomes) == ["lost"] * (contenders - 1) + ["won"]
    final = services.runs.get(run.id)
    status_events = [e for e in services.events.read("alice", run.solve_id) if e.run_id == run.id]
    assert status_events[-1].data is not None
    assert status_events[-1].data["status"] == final.status.value  # the winner's event, and only it
    assert len(status_events) == len(PIPELINE) + 1


def test_cancel_racing_completion_of_a_solve_has_one_winner(services: Services) -> None:
    solve = start(services)
    services.runs.move_solve(solve.id, SolveStatus.RUNNING)
    outcomes = race(
        [
            lambda: services.runs.move_solve(solve.id, SolveStatus.SUCCEEDED),
            lambda: services.runs.move_solve(solve.id, SolveStatus.CANCELLING),
        ]
    )
    assert sorted(outcomes) == ["lost", "won"]


def test_terminal_runs_do_not_move(services: Services) -> None:
    run = start(services).runs[0]
    walk(services, run.id, [*PIPELINE, RunStatus.SUCCEEDED])
    for target in RunStatus:
        with pytest.raises(IllegalTransition):
            services.runs.move(run.id, target)
    assert services.runs.get(run.id).status is RunStatus.SUCCEEDED


def test_illegal_jumps_are_refused_and_leave_the_row_alone(services: Services) -> None:
    run = start(services).runs[0]
    with pytest.raises(IllegalTransition, match="queued to solving"):
        services.runs.move(run.id, RunStatus.SOLVING)
    assert services.runs.get(run.id).status is RunStatus.QUEUED


def test_only_a_retryable_failure_returns_to_the_queue_as_a_new_attempt(services: Services) -> None:
    first, second = start(services).runs
    services.runs.move(first.id, RunStatus.LAUNCHING, sandbox_id="sbx-1")
    services.runs.move(first.id, RunStatus.FAILED, error="sandbox gone", retryable=True)
    requeued = services.runs.move(first.id, RunStatus.QUEUED)
    assert (requeued.status, requeued.attempt, requeued.retryable) == (RunStatus.QUEUED, 1, False)
    assert requeued.error is None
    assert requeued.sandbox_id is None
    assert requeued.finished_at is None

    services.runs.move(second.id, RunStatus.FAILED, error="bad ref", retryable=False)
    with pytest.raises(IllegalTransition):
        services.runs.move(second.id, RunStatus.QUEUED)


def test_timestamps_follow_the_status(services: Services) -> None:
    run = start(services).runs[0]
    assert run.started_at is None
    launched = services.runs.move(run.id, RunStatus.LAUNCHING)
    assert launched.started_at is not None
    assert launched.finished_at is None
    failed = services.runs.move(run.id, RunStatus.FAILED, error="boom")
    assert failed.finished_at is not None
    assert launched.started_at is not None
    assert failed.finished_at >= launched.started_at
    assert failed.error == "boom"


def test_solve_cancel_path(services: Services) -> None:
    solve = start(services)
    services.runs.move_solve(solve.id, SolveStatus.CANCELLING)
    with pytest.raises(IllegalTransition):
        services.runs.move_solve(solve.id, SolveStatus.RUNNING)
    done = services.runs.move_solve(solve.id, SolveStatus.CANCELLED)
    assert done.status is SolveStatus.CANCELLED
    assert done.finished_at is not None


def test_progress_updates_live_runs_only(services: Services) -> None:
    run = start(services).runs[0]
    walk(services, run.id, PIPELINE[:3])
    assert services.runs.record_progress(run.id, steps=3, cost_usd=0.25, tokens=1200)
    live = services.runs.get(run.id)
    assert (live.steps, live.cost_usd, live.tokens) == (3, 0.25, 1200)
    assert live.heartbeat_at is not None
    services.runs.move(run.id, RunStatus.CANCELLED)
    assert not services.runs.record_progress(run.id, steps=4, cost_usd=0.3)
    assert services.runs.get(run.id).steps == 3


def test_unknown_ids_are_not_found(services: Services) -> None:
    import uuid

    with pytest.raises(NotFound):
        services.runs.move(uuid.uuid4(), RunStatus.LAUNCHING)
    with pytest.raises(NotFound):
        services.runs.move_solve(uuid.uuid4(), SolveStatus.RUNNING)
