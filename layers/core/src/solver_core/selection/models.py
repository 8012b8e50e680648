"""The `selection` record of a solve: how every candidate compared, and why the champion won
(docs/architecture.md, "Choosing the champion")."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

MAX_NAMED_TESTS = 20  # test ids listed per category; the counts are always complete


class SelectionModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class TestDelta(SelectionModel):
    """A candidate's tests compared with the baseline's (the same command on the base commit)."""

    __test__ = False  # not a pytest test class

    basis: Literal["per_test", "exit_code"] = Field(
        description="per_test: from JUnit XML reports of both; exit_code: the command's exit codes alone"
    )
    fixed: int = Field(description="tests that failed on the base commit and pass with the patch")
    broken: int = Field(description="tests that passed on the base commit and fail (or vanish) with the patch")
    still_failing: int = Field(description="tests that failed on the base commit and still do")
    fixed_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS} fixed")
    broken_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS} broken")
    still_failing_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS}")


class BaselineSummary(SelectionModel):
    """The test command on the base commit, in its own fresh sandbox, run alongside the attempts."""

    status: Literal["passed", "failed", "not_run", "error"] = Field(
        description="not_run: no test command; error: the baseline could not run (the comparison is skipped)"
    )
    command: str | None = None
    exit_code: int | None = None
    base_commit: str | None = None
    per_test: bool = Field(default=False, description="the runner wrote a JUnit XML report")
    passed: int | None = None
    failed: int | None = None
    failing_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS} failing")
    error: str | None = None


class RunSignals(SelectionModel):
    """What ranked one candidate (a run with a patch)."""

    run_id: UUID
    index: int
    model: str
    rank: int = Field(description="1 for the champion")
    tests: Literal["passed", "failed"] | None = Field(description="the test command's verdict; null: not run")
    baseline_delta: TestDelta | None = Field(description="null: no baseline to compare with")
    modifies_tests: bool | None = None
    group_size: int = Field(
        default=1, description="candidates whose normalized patch is the same change (consensus), itself included"
    )
    group: str | None = Field(default=None, description="the consensus group's id (candidates with the same id agree)")
    reproduce_passed: int | None = Field(default=None, description="reproduction scripts passed (not run: null)")
    judge_vote: bool | None = Field(default=None, description="the selector model picked it (no judge: null)")
    submitted: bool
    patch_lines: int = Field(description="lines added plus removed")
    cost_usd: float


class Selection(SelectionModel):
    champion_run_id: UUID | None
    reason: str = Field(description="one line: why the champion won")
    baseline: BaselineSummary | None = None
    runs: list[RunSignals] = Field(default_factory=list, description="every candidate, best first")
