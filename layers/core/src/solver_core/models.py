"""Pydantic models at the boundaries: the solve request (input) and solve/run/event views (output)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from solver_core import rules
from solver_core.github_urls import RepoRef, parse_issue_url, pull_request_repo
from solver_core.status import EventKind, Outcome, RunStatus, SolveStatus

MAX_COMMAND_LENGTH = 4096
MAX_BODY_LENGTH = 65_536


class Input(BaseModel):
    """Base of everything a caller sends: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


def _single_line(value: str) -> str:
    return rules.check_text(value, single_line=True)


def _multi_line(value: str) -> str:
    return rules.check_text(value, single_line=False)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise rules.fail("blank", "must not be blank")
    return value


def _model_name(value: str, info: ValidationInfo) -> str:
    return rules.check_model_name(value, rules.policy_of(info))


Title = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_single_line), AfterValidator(_not_blank)]
Body = Annotated[str, Field(max_length=MAX_BODY_LENGTH), AfterValidator(_multi_line)]
Command = Annotated[
    str,
    Field(min_length=1, max_length=MAX_COMMAND_LENGTH),
    AfterValidator(_multi_line),
    AfterValidator(_not_blank),
]
ShortText = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_single_line)]


# Publishing: the option of a solve request and the record of what was published (stored on the solve).

DEFAULT_BRANCH_PREFIX = "solver/"


class PublishOptions(BaseModel):
    """Where to publish a finished solve: a comment on its GitHub issue, a draft pull request, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: bool = Field(default=False, description="comment on the issue (needs a GitHub issue URL)")
    pull_request: bool = Field(
        default=False, description="open a draft pull request with the champion's patch (needs a GitHub repository)"
    )
    branch_prefix: str = Field(
        default=DEFAULT_BRANCH_PREFIX,
        min_length=1,
        max_length=100,
        description="the pull request's branch is <branch_prefix><solve id, first 8 characters>",
    )

    @field_validator("branch_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            rules.check_git_ref(value + "x")  # a prefix is good when a branch name can follow it
        except PydanticCustomError as exc:
            raise rules.fail("branch_prefix", f"'{value[:80]}' cannot start a git branch name") from exc
        if value.startswith("refs/"):
            raise rules.fail("branch_prefix", "a branch prefix is a branch name, not a full ref")
        return value


def check_publish_target(options: PublishOptions, issue_url: str | None, repo_url: str | None) -> None:
    """What publishing needs: a GitHub issue for a comment, a GitHub repository for a pull request."""
    if not (options.comment or options.pull_request):
        raise rules.fail("publish_nothing", "publish asks for neither a comment nor a pull request")
    if options.comment and parse_issue_url(issue_url) is None:
        raise rules.fail(
            "publish_needs_github_issue",
            "a comment needs issue.url to be a GitHub issue URL (https://github.com/owner/repo/issues/N)",
        )
    pull_repo = pull_request_repo(repo_url, issue_url)
    if options.pull_request and pull_repo is None:
        raise rules.fail(
            "publish_needs_github_repo",
            "a pull request needs a GitHub repository: repo_url on github.com, or a GitHub issue URL",
        )
    source = rules.repository_key(repo_url or "")
    for what, repo in publish_targets(options, repo_url, issue_url):
        # A local path (the CLI, serve with local repositories) names no repository to compare.
        if source is not None and rules.repository_key(repo.url) != source:
            raise rules.fail(
                "publish_target_mismatch",
                f"{what} would go to {repo.url}, but repo_url is {repo_url}: "
                "results are published only to the repository the code came from",
            )


def publish_targets(options: PublishOptions, repo_url: str | None, issue_url: str | None) -> list[tuple[str, RepoRef]]:
    """The GitHub repositories publishing will write to: the issue's for a comment, the pull request's."""
    issue = parse_issue_url(issue_url)
    pull_repo = pull_request_repo(repo_url, issue_url)
    targets = [("the comment", issue.repo if options.comment and issue else None)]
    targets.append(("the pull request", pull_repo if options.pull_request else None))
    return [(what, repo) for what, repo in targets if repo is not None]


class PublishedComment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    url: str


class PublishedPull(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    url: str
    branch: str
    base: str
    head_sha: str
    parent_sha: str | None = None  # the commit the patch sits on (the run's base commit, normally)
    draft: bool
    state: str = "open"


class Publication(BaseModel):
    """What the last publishing attempt left on GitHub (kept across attempts) and what went wrong."""

    model_config = ConfigDict(frozen=True)

    comment: PublishedComment | None = None
    pull_request: PublishedPull | None = None
    published_at: datetime | None = None
    errors: list[str] = Field(default_factory=list, description="the last attempt's errors, if any")


class IssueSpec(Input):
    title: Title
    body: Body = ""
    url: str | None = Field(default=None, max_length=rules.MAX_URL_LENGTH)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return rules.check_remote_url(value, rules.STRICT_POLICY, what="issue URL", needs_path=False)


class VerifyIn(StrEnum):
    """Where VerifyPatch runs the tests (docs/architecture.md, "Verification")."""

    FRESH_SANDBOX = "fresh_sandbox"  # a new sandbox from Solver's own scripts: nothing of the agent's but its patch
    SAME_SANDBOX = "same_sandbox"  # faster, and trusts the agent: the sandbox it worked in, hardened


class Limits(Input):
    step_limit: int = Field(default=50, ge=1, le=1000)
    cost_limit_usd: float = Field(default=3.0, gt=0, le=100)
    time_limit_s: int = Field(default=3600, ge=10, le=24 * 3600)


DEFAULT_REPRODUCE_PATH = "reproduce_issue.py"


def reproduce_command_of(path: str, command: str | None) -> str:
    """The command that runs the reproduction script: the one given, else `python <path>`."""
    return command or f"python {path}"


class SolveRequest(Input):
    """POST /solves, and what `solver solve` builds from its options."""

    repo_url: str = Field(min_length=1)
    ref: str | None = Field(default=None, description="branch, tag or commit sha; default branch when omitted")
    issue: IssueSpec
    models: list[Annotated[str, AfterValidator(_model_name)]] = Field(min_length=1, max_length=8)
    attempts_per_model: int = Field(default=1, ge=1, le=10)
    max_parallel: int = Field(default=3, ge=1, le=32)
    agent_config: str | None = Field(default=None, max_length=100)
    limits: Limits = Field(default_factory=Limits)
    setup_command: Command | None = None
    test_command: Command | None = None
    detect_tests: bool = Field(
        default=True,
        description="without test_command, detect the repository's test command (pytest, npm test, go test, …); "
        "false runs no tests",
    )
    verify_in: VerifyIn = Field(
        default=VerifyIn.FRESH_SANDBOX,
        description="fresh_sandbox (default): the tests run in a new sandbox with only the patch applied; "
        "same_sandbox: faster, in the sandbox the agent used, which trusts the agent",
    )
    callback_url: str | None = Field(default=None, max_length=rules.MAX_URL_LENGTH)
    external_ref: dict[Annotated[str, Field(max_length=64)], ShortText] | None = Field(default=None, max_length=16)
    sandbox_image: str | None = Field(
        default=None,
        max_length=512,
        description="the sandbox image (docker) or template (e2b) for this solve; the deployment's by default. "
        "Only images the deployment allows the caller (422 `image_not_allowed` otherwise)",
    )
    reproduce: bool = Field(
        default=False,
        description="ask each attempt to write a reproduction script as well; scripts that fail on the base commit "
        "are run against every candidate, and the number a candidate passes ranks it",
    )
    reproduce_path: Annotated[str, AfterValidator(rules.check_repo_file)] = Field(
        default=DEFAULT_REPRODUCE_PATH,
        max_length=255,
        description="where the script goes, relative to the repository root; it is taken out of the patch",
    )
    reproduce_command: Command | None = Field(
        default=None, description="how the script runs, from the repository root; default `python <reproduce_path>`"
    )
    # Last, so that its validator sees the validated repo_url and issue.
    publish: PublishOptions | None = Field(default=None, description="publish the result on GitHub when done")

    @field_validator("repo_url")
    @classmethod
    def _repo(cls, value: str, info: ValidationInfo) -> str:
        return rules.check_repo_location(value, rules.policy_of(info))

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        return None if value is None else rules.check_git_ref(value)

    selector_model: Annotated[str, AfterValidator(_model_name)] | None = Field(
        default=None,
        description="a model that picks among candidates still tied on every test signal and on consensus "
        "(it sees the issue and their diffs; it never overrides a test signal); `replay:PATH` where allowed",
    )

    @field_validator("sandbox_image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else rules.check_image_name(value)

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return rules.check_remote_url(value, rules.policy_of(info), what="callback URL", needs_path=False)

    @field_validator("publish")
    @classmethod
    def _publish(cls, value: PublishOptions | None, info: ValidationInfo) -> PublishOptions | None:
        issue = info.data.get("issue")
        if value is not None and isinstance(issue, IssueSpec):  # else issue's own error is reported
            check_publish_target(value, issue.url, info.data.get("repo_url"))
        return value

    @model_validator(mode="after")
    def _run_count(self, info: ValidationInfo) -> SolveRequest:
        limit = rules.policy_of(info).max_runs
        if self.run_count > limit:
            raise rules.fail(
                "too_many_runs",
                f"models x attempts_per_model = {self.run_count} exceeds the limit of {limit}",
            )
        return self

    @property
    def run_count(self) -> int:
        return len(self.models) * self.attempts_per_model

    def run_models(self) -> list[str]:
        """The model of each run, in run-index order: every model, attempts_per_model times."""
        return [model for model in self.models for _ in range(self.attempts_per_model)]

    def fingerprint(self) -> str:
        """A stable digest of the request, to tell a replayed Idempotency-Key from a reused one."""
        # Without options that are unset (or at their default), so requests made before they existed
        # keep their digest.
        exclude = {
            name for name in ("publish", "sandbox_image", "selector_model", "reproduce_command")
            if getattr(self, name) is None
        }  # fmt: skip
        if not self.reproduce and self.reproduce_path == DEFAULT_REPRODUCE_PATH:
            exclude |= {"reproduce", "reproduce_path"}
        exclude |= {"detect_tests"} if self.detect_tests else set()
        if self.verify_in is VerifyIn.FRESH_SANDBOX:  # the default, as before the option existed
            exclude.add("verify_in")
        canonical = json.dumps(self.model_dump(mode="json", exclude=exclude), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class ModelSpec(BaseModel):
    """A model as the registry describes it (prices per token; None means litellm's own map)."""

    model_config = ConfigDict(frozen=True)

    name: str
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None

    @property
    def is_replay(self) -> bool:
        return self.name.startswith(rules.REPLAY_PREFIX)


# --- Output views. They never carry ORM rows; services build them. ---


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class PatchStats(View):
    files: int
    added: int
    removed: int
    group: str | None = Field(
        default=None, description="consensus group: patches with the same group make the same change"
    )


class TestCounts(View):
    __test__: ClassVar[bool] = False

    passed: int
    failed: int
    skipped: int = 0


class TestResult(View):
    __test__: ClassVar[bool] = False  # a result of a repository's tests, not a pytest test class

    command: str
    exit_code: int | None
    passed: bool
    duration_s: float
    output_key: str | None = None
    detected: bool = Field(default=False, description="the command was detected from the repository, not given")
    modifies_tests: bool = Field(
        default=False,
        description="the patch changes existing test files or test configuration; such a run ranks below "
        "an equally passing one that does not",
    )
    test_changes: list[str] = Field(default_factory=list, description="the test files and settings it changes")
    per_test: TestCounts | None = Field(
        default=None, description="counts from the runner's JUnit XML report; null: exit code only"
    )


class RunKind(StrEnum):
    ATTEMPT = "attempt"  # an agent's attempt: a candidate
    BASELINE = "baseline"  # the test command on the base commit, alongside the attempts
    CHECK = "check"  # the attempts' reproduction scripts on one candidate's patch, or on the base commit


class ScriptResult(View):
    """One reproduction script run by a check (docs/architecture.md, "Choosing the champion", reproduction scripts)."""

    author_run_id: UUID = Field(description="the attempt that wrote the script")
    author_index: int
    exit_code: int | None = Field(description="null: it could not run (timed out or stopped)")
    passed: bool = Field(description="it exited 0")
    timed_out: bool = False


class ScriptAuthor(View):
    run_id: UUID
    index: int


class Reproduction(View):
    """What a check run found: each script's result on its target (a candidate's patch, or the base commit)."""

    target_run_id: UUID | None = Field(description="the candidate checked; null: the base commit (validation)")
    authors: list[ScriptAuthor] = Field(default_factory=list, description="the attempts whose scripts it runs")
    scripts: list[ScriptResult] = Field(default_factory=list, description="their results, once it ran")


class ReproductionSummary(View):
    """The reproduction scripts of a solve: how many the attempts wrote, and how many failed on the base commit."""

    status: Literal["checked", "no_scripts", "error"] = Field(
        description="no_scripts: no attempt left one; error: the scripts could not run on the base commit"
    )
    scripts: int = Field(description="scripts the attempts wrote")
    validated: int = Field(description="scripts that failed on the base commit: the ones that count")
    error: str | None = None


# --- The `selection` record of a solve: how every candidate compared, and why the champion won
# (docs/architecture.md, "Choosing the champion").

MAX_NAMED_TESTS = 20  # test ids listed per category; the counts are always complete


class TestDelta(View):
    """A candidate's tests compared with the baseline's (the same command on the base commit)."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    basis: Literal["per_test", "exit_code"] = Field(
        description="per_test: from JUnit XML reports of both; exit_code: the command's exit codes alone"
    )
    fixed: int = Field(description="tests that failed on the base commit and pass with the patch")
    broken: int = Field(description="tests that passed on the base commit and fail (or vanish) with the patch")
    still_failing: int = Field(description="tests that failed on the base commit and still do")
    fixed_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS} fixed")
    broken_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS} broken")
    still_failing_tests: list[str] = Field(default_factory=list, description=f"the first {MAX_NAMED_TESTS}")


class BaselineSummary(View):
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


class RunSignals(View):
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


class JudgeVerdict(View):
    """The selector model's pick among candidates tied on every other signal."""

    model: str
    candidates: list[int] = Field(description="the indexes of the tied runs it chose among")
    choice: int | None = Field(description="the index it picked; null: no valid answer (then size and cost decide)")
    reasoning: str = Field(description="its answer, shortened")
    cost_usd: float = Field(description="counted in the solve's cost")
    error: str | None = None


class Selection(View):
    champion_run_id: UUID | None
    reason: str = Field(description="one line: why the champion won")
    baseline: BaselineSummary | None = None
    runs: list[RunSignals] = Field(default_factory=list, description="every candidate, best first")
    judge: JudgeVerdict | None = Field(default=None, description="null: no selector model, or no tie to break")
    reproduction: ReproductionSummary | None = Field(default=None, description="null: not asked for (`reproduce`)")


class RunView(View):
    id: UUID
    solve_id: UUID
    index: int
    model: str
    agent_config: str | None
    status: RunStatus
    exit_status: str | None
    attempt: int
    retryable: bool
    sandbox_id: str | None
    base_commit: str | None
    steps: int
    cost_usd: float
    tokens: int
    patch_stats: PatchStats | None
    tests: TestResult | None
    modifies_tests: bool | None = Field(
        default=None,
        description="the patch changes existing test files or test configuration (null: not verified)",
    )
    error: str | None
    artifacts: dict[str, str] = Field(description="artifact kind → store key")
    detected_test_command: str | None = None
    outcome: Outcome = Outcome.PENDING
    kind: RunKind = RunKind.ATTEMPT
    reproduce_script: bool = Field(default=False, description="the attempt left a reproduction script")
    reproduction: Reproduction | None = Field(default=None, description="a check run's results")
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SolveView(View):
    id: UUID
    owner: str
    status: SolveStatus
    repo_url: str
    ref: str | None
    issue: IssueSpec
    models: list[str]
    attempts_per_model: int
    max_parallel: int
    agent_config: str | None
    limits: Limits
    setup_command: str | None
    test_command: str | None
    verify_in: VerifyIn = VerifyIn.FRESH_SANDBOX
    callback_url: str | None
    external_ref: dict[str, str] | None
    execution_ref: str | None
    detect_tests: bool = True
    outcome: Outcome = Outcome.PENDING
    champion_run_id: UUID | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    runs: list[RunView] = Field(default_factory=list)
    publish: PublishOptions | None = None
    publication: Publication | None = None
    sandbox_image: str | None = None
    selector_model: str | None = None
    selection_cost_usd: float = Field(default=0.0, description="what the selector model's calls cost")
    baseline: RunView | None = Field(default=None, description="the baseline run, apart from the attempts")
    reproduce: bool = False
    reproduce_path: str = DEFAULT_REPRODUCE_PATH
    reproduce_command: str | None = Field(default=None, description="null: `python <reproduce_path>`")
    checks: list[RunView] = Field(
        default_factory=list,
        description="the reproduction checks: the scripts on the base commit and on each candidate",
    )
    selection: Selection | None = None

    @property
    def all_runs(self) -> list[RunView]:
        """The attempts, the baseline and the checks: every run whose lifecycle the orchestration manages."""
        return [*self.runs, *([self.baseline] if self.baseline else []), *self.checks]


class SolvePage(View):
    items: list[SolveView]
    next_cursor: str | None


class EventView(View):
    seq: int
    solve_id: UUID
    run_id: UUID | None
    at: datetime
    kind: EventKind
    message: str
    data: dict[str, Any] | None


class StartResult(View):
    solve: SolveView
    created: bool = Field(description="False when an Idempotency-Key replay returned an existing solve")
