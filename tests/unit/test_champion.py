"""PickChampion's order: tests passed > leaves the tests alone > submitted > smaller patch > lower cost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from solver_core.errors import is_retryable
from solver_core.models import PatchStats, RunView, TestResult
from solver_core.status import RunStatus
from solver_core.workflow.champion import pick_champion

pytestmark = pytest.mark.unit


def run(index: int, **changes: Any) -> RunView:
    base: dict[str, Any] = {
        "id": uuid.uuid4(), "solve_id": uuid.UUID(int=0), "index": index, "model": f"m{index}", "agent_config": None,
        "status": RunStatus.SUCCEEDED, "exit_status": "Submitted", "attempt": 0, "retryable": False,
        "sandbox_id": None, "base_commit": None, "steps": 3, "cost_usd": 1.0, "tokens": 0,
        "patch_stats": PatchStats(files=1, added=5, removed=5), "tests": None, "error": None, "artifacts": {},
        "heartbeat_at": None, "created_at": datetime.now(UTC), "started_at": None, "finished_at": None,
    }  # fmt: skip
    return RunView(**(base | changes))


def passed(ok: bool) -> TestResult:
    return TestResult(command="pytest", exit_code=0 if ok else 1, passed=ok, duration_s=1.0)


def test_passing_tests_beat_everything_else() -> None:
    small_unsubmitted_failing = run(0, tests=passed(False), patch_stats=PatchStats(files=1, added=1, removed=0))
    big_passing = run(1, tests=passed(True), exit_status="LimitsExceeded", cost_usd=9.0,
                      patch_stats=PatchStats(files=9, added=300, removed=20))  # fmt: skip
    choice = pick_champion([small_unsubmitted_failing, big_passing])
    assert choice.run == big_passing
    assert "tests passed" in choice.reason


def test_then_submission_then_size_then_cost_then_index() -> None:
    assert pick_champion([run(0, exit_status="LimitsExceeded"), run(1)]).run.index == 1  # type: ignore[union-attr]
    assert pick_champion([run(0), run(1, patch_stats=PatchStats(files=1, added=1, removed=1))]).run.index == 1  # type: ignore[union-attr]
    assert pick_champion([run(0, cost_usd=2.0), run(1, cost_usd=0.5)]).run.index == 1  # type: ignore[union-attr]
    assert pick_champion([run(1), run(0)]).run.index == 0  # type: ignore[union-attr]


def test_a_run_that_modifies_the_tests_ranks_below_an_equally_passing_one_that_does_not() -> None:
    edits_tests = run(0, tests=passed(True), modifies_tests=True, cost_usd=0.1,
                      patch_stats=PatchStats(files=1, added=0, removed=3))  # fmt: skip
    fixes = run(1, tests=passed(True), modifies_tests=False, exit_status="LimitsExceeded",
                patch_stats=PatchStats(files=2, added=30, removed=10))  # fmt: skip
    choice = pick_champion([edits_tests, fixes])
    assert choice.run == fixes
    # Passing still comes first: a test editor that passes beats a clean patch that fails.
    failing = run(1, tests=passed(False), modifies_tests=False)
    choice = pick_champion([edits_tests, failing])
    assert choice.run == edits_tests
    assert "the patch modifies tests" in choice.reason


def test_runs_without_a_patch_never_win_and_no_patch_means_no_champion() -> None:
    empty = run(0, patch_stats=PatchStats(files=0, added=0, removed=0))
    failed = run(1, status=RunStatus.FAILED, error="SandboxGone: gone")
    choice = pick_champion([empty, failed])
    assert choice.run is None
    assert "no run produced a patch" in choice.reason
    assert "SandboxGone" in choice.reason


def test_error_names_say_whether_a_run_may_be_retried() -> None:
    assert is_retryable("SandboxGone")
    assert is_retryable("ModelUnavailable")
    assert is_retryable("SandboxCapacityExceeded")
    assert is_retryable("States.Timeout")
    assert is_retryable("Lambda.ServiceException")
    assert not is_retryable("RepositoryError")
    assert not is_retryable("RunError")
    assert not is_retryable("ValueError")
