"""What `solver list`/`status` mark on a solve and a run: a stopped heartbeat, and a passing patch
that modifies the tests that judged it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from solver_core.cli.liveness import stalled_note
from solver_core.cli.render import tests_cell as column_of_tests
from solver_core.cli.render import verdict_label
from solver_core.models import IssueSpec, Limits, SolveView
from solver_core.status import SolveStatus
from tests.unit.test_selection import run

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


def solve(status: SolveStatus, last: datetime) -> SolveView:
    return SolveView.model_validate(
        {
            "id": "6f1c2b1e-8d1c-4a7e-9a0b-0c1d2e3f4a5b", "owner": "alice", "status": status,
            "repo_url": "https://github.com/org/repo", "ref": None, "issue": IssueSpec(title="t"),
            "models": ["m"], "attempts_per_model": 1, "max_parallel": 1, "agent_config": None, "limits": Limits(),
            "setup_command": None, "test_command": None, "callback_url": None, "external_ref": None,
            "execution_ref": None, "champion_run_id": None, "error": None, "created_at": last, "updated_at": last,
            "started_at": last, "finished_at": None, "runs": [],
        }
    )  # fmt: skip


def test_a_running_solve_whose_heartbeat_stopped_is_marked_and_a_live_or_ended_one_is_not() -> None:
    stale = solve(SolveStatus.RUNNING, NOW - timedelta(minutes=30))
    assert stalled_note(stale, stale_after_s=1200, now=NOW) == "no heartbeat since 2026-12-04 05:30 UTC"
    assert stalled_note(solve(SolveStatus.RUNNING, NOW - timedelta(minutes=5)), stale_after_s=1200, now=NOW) is None
    assert stalled_note(solve(SolveStatus.SUCCEEDED, NOW - timedelta(days=2)), stale_after_s=1200, now=NOW) is None


def test_a_passing_patch_that_modifies_its_tests_says_so() -> None:
    honest, editing = run(0, passed=True), run(1, passed=True, modifies_tests=True)
    assert (verdict_label(honest), verdict_label(editing)) == ("passed", "passed, modifies tests")
    assert column_of_tests(editing) == "passed, modifies tests"
    assert run(2, passed=True, modifies_tests=True).model_dump(mode="json")["modifies_tests"] is True  # the API's
