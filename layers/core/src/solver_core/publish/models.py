"""The publish option of a solve request and the record of what was published (stored on the solve)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from solver_core import rules
from solver_core.publish.urls import RepoRef, parse_issue_url, pull_request_repo

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
