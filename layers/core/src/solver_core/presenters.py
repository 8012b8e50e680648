"""The public shape of a solve, shared by the API and `solver solve --json`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from solver_core.models import (
    IssueSpec,
    Limits,
    PatchStats,
    Publication,
    PublishOptions,
    Reproduction,
    RunView,
    Selection,
    SolveView,
    TestResult,
    VerifyIn,
)
from solver_core.ports import ArtifactStore
from solver_core.status import Outcome, RunStatus, SolveStatus

PUBLIC_ARTIFACTS = ("patch", "trajectory", "log", "tests")


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunOut(Out):
    id: UUID
    index: int
    model: str
    status: RunStatus
    exit_status: str | None
    attempt: int
    steps: int
    cost_usd: float
    tokens: int
    patch_stats: PatchStats | None
    tests: TestResult | None
    base_commit: str | None = Field(
        default=None, description="the commit its repository was checked out at: the patch's base"
    )
    outcome: Outcome = Field(description="what the run produced, apart from its lifecycle status")
    modifies_tests: bool | None = Field(
        default=None,
        description="the patch changes existing test files or test configuration (null: not verified); "
        "such a run ranks below an equally passing one that does not",
    )
    error: str | None
    artifacts: dict[str, str]
    reproduce_script: bool = Field(default=False, description="the attempt left a reproduction script")
    reproduction: Reproduction | None = Field(default=None, description="a reproduction check's results")
    started_at: datetime | None
    finished_at: datetime | None


class SolveOut(Out):
    id: UUID
    status: SolveStatus
    repo_url: str
    ref: str | None
    issue: IssueSpec
    limits: Limits
    outcome: Outcome = Field(description="the champion's outcome; no_patch when there is none")
    verify_in: VerifyIn = VerifyIn.FRESH_SANDBOX
    champion_run_id: UUID | None
    error: str | None
    runs: list[RunOut]
    created_at: datetime
    finished_at: datetime | None
    external_ref: dict[str, str] | None = None
    sandbox_image: str | None = None
    publish: PublishOptions | None = None
    publication: Publication | None = None
    selection: Selection | None = Field(
        default=None,
        description="how the candidates ranked (the baseline comparison, consensus, …) and why the champion won; "
        "null until the champion is chosen",
    )
    reproduce: bool = Field(default=False, description="the attempts were asked for reproduction scripts")
    reproduce_path: str | None = None
    reproduce_command: str | None = None
    checks: list[RunOut] = Field(
        default_factory=list,
        description="the reproduction checks: every script on the base commit, then on each candidate",
    )


class SolveWithPatch(SolveOut):
    patch: str | None


def run_out(run: RunView, store: ArtifactStore) -> RunOut:
    links = {kind: store.url(key) for kind, key in run.artifacts.items() if kind in PUBLIC_ARTIFACTS}
    return RunOut(**run.model_dump(include=set(RunOut.model_fields) - {"artifacts"}), artifacts=links)


def solve_out(solve: SolveView, store: ArtifactStore) -> SolveOut:
    fields = solve.model_dump(include=set(SolveOut.model_fields) - {"runs", "checks"})
    checks = [run_out(r, store) for r in solve.checks]
    return SolveOut(**fields, runs=[run_out(r, store) for r in solve.runs], checks=checks)
