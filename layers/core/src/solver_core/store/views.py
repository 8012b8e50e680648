"""Rows → DTOs. Rows never leave a service; these views do.

The views read a row through the columns it has (`SolveFields`, `RunFields`): the ORM's rows have
them, and so do the records `store/direct_read.py` decodes without SQLAlchemy (`solver status`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from solver_core.models import (
    DEFAULT_REPRODUCE_PATH,
    EventView,
    IssueSpec,
    Limits,
    PatchStats,
    Publication,
    PublishOptions,
    Reproduction,
    RunKind,
    RunView,
    Selection,
    SolveView,
    TestResult,
    VerifyIn,
)
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, EventKind, Outcome, RunStatus, SolveStatus

if TYPE_CHECKING:
    from solver_core.db.schema import EventRow


class RunFields(Protocol):
    """The columns of a `runs` row that `run_view` reads (db/schema.py `RunRow`)."""

    @property
    def id(self) -> UUID: ...
    @property
    def solve_id(self) -> UUID: ...
    @property
    def index(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def agent_config(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def exit_status(self) -> str | None: ...
    @property
    def attempt(self) -> int: ...
    @property
    def retryable(self) -> bool: ...
    @property
    def sandbox_id(self) -> str | None: ...
    @property
    def base_commit(self) -> str | None: ...
    @property
    def steps(self) -> int: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def tokens(self) -> int: ...
    @property
    def heartbeat_at(self) -> datetime | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def checkpoint_key(self) -> str | None: ...
    @property
    def trajectory_key(self) -> str | None: ...
    @property
    def patch_key(self) -> str | None: ...
    @property
    def log_key(self) -> str | None: ...
    @property
    def patch_stats(self) -> dict[str, Any] | None: ...
    @property
    def tests(self) -> dict[str, Any] | None: ...
    @property
    def detected_test_command(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def reproduce_key(self) -> str | None: ...
    @property
    def reproduction(self) -> dict[str, Any] | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


class SolveFields(Protocol):
    """The columns of a `solves` row that `solve_view` reads (db/schema.py `SolveRow`)."""

    @property
    def id(self) -> UUID: ...
    @property
    def owner(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def repo_url(self) -> str: ...
    @property
    def ref(self) -> str | None: ...
    @property
    def issue_title(self) -> str: ...
    @property
    def issue_body(self) -> str: ...
    @property
    def issue_url(self) -> str | None: ...
    @property
    def external_ref(self) -> dict[str, Any] | None: ...
    @property
    def models(self) -> list[str]: ...
    @property
    def attempts_per_model(self) -> int: ...
    @property
    def max_parallel(self) -> int: ...
    @property
    def agent_config(self) -> str | None: ...
    @property
    def limits(self) -> dict[str, Any]: ...
    @property
    def setup_command(self) -> str | None: ...
    @property
    def test_command(self) -> str | None: ...
    @property
    def detect_tests(self) -> bool: ...
    @property
    def verify_in(self) -> str: ...
    @property
    def callback_url(self) -> str | None: ...
    @property
    def sandbox_image(self) -> str | None: ...
    @property
    def selector_model(self) -> str | None: ...
    @property
    def selection_cost_usd(self) -> float: ...
    @property
    def reproduce(self) -> bool: ...
    @property
    def reproduce_path(self) -> str | None: ...
    @property
    def reproduce_command(self) -> str | None: ...
    @property
    def execution_ref(self) -> str | None: ...
    @property
    def champion_run_id(self) -> UUID | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def publish(self) -> dict[str, Any] | None: ...
    @property
    def publication(self) -> dict[str, Any] | None: ...
    @property
    def selection(self) -> dict[str, Any] | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


ARTIFACT_COLUMNS = {
    "checkpoint": "checkpoint_key",
    "trajectory": "trajectory_key",
    "patch": "patch_key",
    "log": "log_key",
    "reproduce": "reproduce_key",
}


def run_outcome(status: RunStatus, patch_stats: dict[str, Any] | None, tests: dict[str, Any] | None) -> Outcome:
    if status not in RUN_TERMINAL:
        return Outcome.PENDING
    if not (patch_stats and patch_stats.get("files")):
        return Outcome.NO_PATCH
    if tests is None:
        return Outcome.UNTESTED
    return Outcome.TESTS_PASSED if tests.get("passed") else Outcome.TESTS_FAILED


def solve_outcome(row: SolveFields, runs: list[RunView]) -> Outcome:
    champion = next((run for run in runs if run.id == row.champion_run_id), None)
    if champion is not None:
        return champion.outcome
    return Outcome.NO_PATCH if SolveStatus(row.status) in SOLVE_TERMINAL else Outcome.PENDING


def run_view(row: RunFields) -> RunView:
    artifacts = {kind: key for kind, column in ARTIFACT_COLUMNS.items() if (key := getattr(row, column))}
    if row.tests and row.tests.get("output_key"):
        artifacts["tests"] = row.tests["output_key"]
    status = RunStatus(row.status)
    return RunView(
        id=row.id,
        solve_id=row.solve_id,
        index=row.index,
        model=row.model,
        agent_config=row.agent_config,
        status=status,
        exit_status=row.exit_status,
        attempt=row.attempt,
        retryable=row.retryable,
        sandbox_id=row.sandbox_id,
        base_commit=row.base_commit,
        steps=row.steps,
        cost_usd=row.cost_usd,
        tokens=row.tokens,
        patch_stats=PatchStats.model_validate(row.patch_stats) if row.patch_stats else None,
        tests=TestResult.model_validate(row.tests) if row.tests else None,
        modifies_tests=bool(row.tests.get("modifies_tests")) if row.tests else None,
        error=row.error,
        artifacts=artifacts,
        detected_test_command=row.detected_test_command,
        outcome=run_outcome(status, row.patch_stats, row.tests),
        kind=RunKind(row.kind or RunKind.ATTEMPT),
        reproduce_script=row.reproduce_key is not None,
        reproduction=Reproduction.model_validate(row.reproduction) if row.reproduction else None,
        heartbeat_at=row.heartbeat_at,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def solve_view(row: SolveFields, runs: Iterable[RunFields] = ()) -> SolveView:
    every = [run_view(r) for r in sorted(runs, key=lambda r: r.index)]
    run_views = [r for r in every if r.kind is RunKind.ATTEMPT]
    baseline = next((r for r in every if r.kind is RunKind.BASELINE), None)
    checks = sorted((r for r in every if r.kind is RunKind.CHECK), key=lambda r: -r.index)  # the base commit's first
    return SolveView(
        id=row.id,
        owner=row.owner,
        status=SolveStatus(row.status),
        repo_url=row.repo_url,
        ref=row.ref,
        issue=IssueSpec.model_construct(title=row.issue_title, body=row.issue_body, url=row.issue_url),
        models=list(row.models),
        attempts_per_model=row.attempts_per_model,
        max_parallel=row.max_parallel,
        agent_config=row.agent_config,
        limits=Limits.model_construct(**row.limits),
        setup_command=row.setup_command,
        test_command=row.test_command,
        verify_in=VerifyIn(row.verify_in),
        callback_url=row.callback_url,
        external_ref=row.external_ref,
        sandbox_image=row.sandbox_image,
        selector_model=row.selector_model,
        selection_cost_usd=row.selection_cost_usd or 0.0,
        execution_ref=row.execution_ref,
        champion_run_id=row.champion_run_id,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        runs=run_views,
        detect_tests=row.detect_tests,
        outcome=solve_outcome(row, run_views),
        publish=PublishOptions.model_construct(**row.publish) if row.publish else None,
        publication=Publication.model_validate(row.publication) if row.publication else None,
        baseline=baseline,
        reproduce=bool(row.reproduce),
        reproduce_path=row.reproduce_path or DEFAULT_REPRODUCE_PATH,
        reproduce_command=row.reproduce_command,
        checks=checks,
        selection=Selection.model_validate(row.selection) if row.selection else None,
    )


def event_view(row: EventRow) -> EventView:
    return EventView(
        seq=row.seq,
        solve_id=row.solve_id,
        run_id=row.run_id,
        at=row.at,
        kind=EventKind(row.kind),
        message=row.message,
        data=row.data,
    )
