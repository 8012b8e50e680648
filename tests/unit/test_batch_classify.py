"""A finished solve's batch outcome, and which clone failures count as infrastructure trouble: an
instance whose clone failed for a reason that may pass is run again, never given an empty prediction."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from solver_core.batch.outputs import Outcome
from solver_core.batch.requests import classify
from solver_core.errors import CloneFailed, RepositoryError, is_retryable
from solver_core.models import IssueSpec, Limits, RunView, SolveView
from solver_core.sandbox.base import CommandResult
from solver_core.sandbox.repository import clone_failure
from solver_core.status import RunStatus, SolveStatus

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REPO = "https://github.com/org/calc"


def run(status: RunStatus, *, retryable: bool = False, error: str | None = None) -> RunView:
    return RunView(
        id=uuid4(), solve_id=uuid4(), index=0, model="m", agent_config=None, status=status, exit_status=None,
        attempt=0, retryable=retryable, sandbox_id=None, base_commit=None, steps=0, cost_usd=0.0, tokens=0,
        patch_stats=None, tests=None, error=error, artifacts={}, heartbeat_at=None, created_at=NOW,
        started_at=None, finished_at=None,
    )  # fmt: skip


def solve(status: SolveStatus, runs: list[RunView], *, champion: bool = False, error: str | None = None) -> SolveView:
    return SolveView(
        id=uuid4(), owner="local:user", status=status, repo_url=REPO, ref=None, issue=IssueSpec(title="t", body="b"),
        models=["m"], attempts_per_model=1, max_parallel=1, agent_config=None, limits=Limits(), setup_command=None,
        test_command=None, callback_url=None, external_ref=None, execution_ref=None,
        champion_run_id=runs[0].id if champion else None, error=error, created_at=NOW, updated_at=NOW,
        started_at=None, finished_at=None, runs=runs,
    )  # fmt: skip


def clone_error(output: str, *, timed_out: bool = False) -> RepositoryError:
    return clone_failure(CommandResult(output, 3 if not timed_out else -1, timed_out), f"could not clone {REPO}")


def test_a_champion_is_a_patch() -> None:
    assert classify(solve(SolveStatus.SUCCEEDED, [run(RunStatus.SUCCEEDED)], champion=True)) == (Outcome.PATCH, None)


def test_runs_that_failed_definitively_leave_no_patch() -> None:
    failed = run(RunStatus.FAILED, error="RepositoryError: ref 'v9' not found in org/calc")
    outcome, error = classify(solve(SolveStatus.FAILED, [failed], error="every run failed"))
    assert outcome is Outcome.NO_PATCH
    assert error == "every run failed"


def test_a_run_that_failed_retryably_makes_the_instance_one_to_run_again() -> None:
    infra = run(RunStatus.FAILED, retryable=True, error="CloneFailed: could not clone org/calc: HTTP 503")
    definitive = run(RunStatus.FAILED, error="PatchTooLarge: too large")
    outcome, error = classify(solve(SolveStatus.FAILED, [definitive, infra]))
    assert outcome is Outcome.INFRA_ERROR
    assert error is not None
    assert "HTTP 503" in error
    assert "too large" not in error


def test_an_unfinished_solve_is_infrastructure_and_a_cancelled_one_an_error() -> None:
    assert classify(solve(SolveStatus.RUNNING, [run(RunStatus.SOLVING)]))[0] is Outcome.INFRA_ERROR
    assert classify(solve(SolveStatus.CANCELLED, [run(RunStatus.CANCELLED)]))[0] is Outcome.ERROR


@pytest.mark.parametrize(
    "output",
    [
        "SOLVER_ERROR: could not clone org/calc: fatal: unable to access 'https://github.com/org/calc/': "
        "Failed to connect to github.com port 443 after 3 ms: Couldn't connect to server",
        "SOLVER_ERROR: could not clone org/calc: fatal: unable to access 'https://github.com/org/calc/': "
        "Could not resolve host: github.com",
        "SOLVER_ERROR: could not clone org/calc: fatal: unable to access 'https://github.com/org/calc/': "
        "The requested URL returned error: 503",
        "SOLVER_ERROR: could not clone org/calc: error: RPC failed; curl 18 transfer closed fatal: early EOF",
        "SOLVER_ERROR: could not clone org/calc: fatal: unable to access 'https://github.com/org/calc/': "
        "The requested URL returned error: 429",
        "SOLVER_ERROR: could not fetch 'abc123' from org/calc: fatal: unable to access: Operation timed out",
    ],
)
def test_a_clone_that_may_pass_is_retryable(output: str) -> None:
    error = clone_error(output)
    assert isinstance(error, CloneFailed)
    assert error.retryable
    assert is_retryable(type(error).__name__)


def test_a_clone_cut_off_by_its_time_limit_is_retryable() -> None:
    error = clone_error("Cloning into 'repo'...", timed_out=True)
    assert isinstance(error, CloneFailed)
    assert error.message.startswith(f"could not clone {REPO}: timed out")


@pytest.mark.parametrize(
    "output",
    [
        "SOLVER_ERROR: ref 'no-such-branch' not found in org/calc",
        "SOLVER_ERROR: org/calc has no commits on its default branch",
        "SOLVER_ERROR: could not clone org/calc: remote: Repository not found. "
        "fatal: repository 'https://github.com/org/calc/' not found",
        "SOLVER_ERROR: could not clone /src/calc: fatal: repository '/src/calc' does not exist",
        "SOLVER_ERROR: could not clone org/calc: fatal: could not read Username for 'https://github.com': "
        "terminal prompts disabled",
        "SOLVER_ERROR: could not clone org/calc: fatal: Authentication failed for 'https://github.com/org/calc/'",
    ],
)
def test_a_missing_repository_or_ref_is_definitive(output: str) -> None:
    error = clone_error(output)
    assert type(error) is RepositoryError
    assert not error.retryable


# Every key of swebench 5's `make_run_report` (without a docker client), schema version 2.
HARNESS_REPORT_KEYS = {
    "total_instances", "submitted_instances", "completed_instances", "resolved_instances", "unresolved_instances",
    "infra_failure_instances", "ambiguous_failure_instances", "empty_patch_instances", "error_instances",
    "completed_ids", "incomplete_ids", "empty_patch_ids", "submitted_ids", "resolved_ids", "unresolved_ids",
    "infra_failure_ids", "ambiguous_failure_ids", "failure_reasons", "error_ids", "schema_version",
}  # fmt: skip


def test_report_json_follows_the_harness_rules() -> None:
    """Instances without a prediction (infrastructure failures, refused, not started) are incomplete,
    never errors; errors are submitted patches whose evaluation gave no verdict."""
    from solver_core.batch.evaluate import build_report
    from solver_core.batch.outputs import InstanceRecord, InstanceReport, TestsStatus

    outcomes = {
        "resolved": Outcome.PATCH, "unresolved": Outcome.PATCH, "does-not-apply": Outcome.PATCH,
        "sandbox-down": Outcome.PATCH, "empty": Outcome.NO_PATCH, "infra": Outcome.INFRA_ERROR,
        "refused": Outcome.ERROR, "over-budget": Outcome.NOT_STARTED, "interrupted": Outcome.RUNNING,
    }  # fmt: skip
    records = {iid: InstanceRecord(instance_id=iid, outcome=outcome) for iid, outcome in outcomes.items()}
    passed = {"FAIL_TO_PASS": TestsStatus(success=["t"]), "PASS_TO_PASS": TestsStatus()}
    failed = {"FAIL_TO_PASS": TestsStatus(failure=["t"]), "PASS_TO_PASS": TestsStatus()}
    reports = {
        "resolved": InstanceReport(
            patch_exists=True, patch_successfully_applied=True, resolved=True, tests_status=passed
        ),
        "unresolved": InstanceReport(patch_exists=True, patch_successfully_applied=True, tests_status=failed),
        "does-not-apply": InstanceReport(patch_exists=True, error="the champion patch does not apply: corrupt"),
        "sandbox-down": InstanceReport(patch_exists=True, error="SandboxUnavailable: no engine", infra_failure=True),
        "empty": InstanceReport(),
    }
    patches = {iid: "diff --git a/x b/x\n" for iid in ("resolved", "unresolved", "does-not-apply", "sandbox-down")}
    report = build_report(records, reports, patches | {"empty": ""}).model_dump(mode="json")

    assert set(report) - {"instances"} == HARNESS_REPORT_KEYS
    assert report["total_instances"] == 9
    assert report["submitted_ids"] == ["does-not-apply", "empty", "resolved", "sandbox-down", "unresolved"]
    assert report["incomplete_ids"] == ["infra", "interrupted", "over-budget", "refused"]
    assert report["empty_patch_ids"] == ["empty"]
    assert report["completed_ids"] == ["resolved", "unresolved"]
    assert report["resolved_ids"] == ["resolved"]
    assert report["unresolved_ids"] == ["unresolved"]
    assert report["error_ids"] == ["does-not-apply", "sandbox-down"]
    assert set(report["error_ids"]) <= set(report["submitted_ids"])
    assert report["infra_failure_ids"] == ["sandbox-down"]
    assert report["failure_reasons"] == {"sandbox-down": "SandboxUnavailable: no engine"}
    assert report["ambiguous_failure_ids"] == []
    for key in HARNESS_REPORT_KEYS - {"schema_version", "failure_reasons"}:
        if key.endswith("_instances") and key != "total_instances":
            assert report[key] == len(report[key.replace("_instances", "_ids")]), key
    assert report["schema_version"] == 2
    assert report["instances"]["resolved"]["tests_status"]["FAIL_TO_PASS"] == {"success": ["t"], "failure": []}
