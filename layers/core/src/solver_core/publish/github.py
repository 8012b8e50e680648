"""GitHubPublisher: the Publisher port on GitHub's REST API (issue comments, git data, pull requests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from solver_core.errors import (
    ConfigurationError,
    PatchNotApplicable,
    PublishError,
    PublishNotConfigured,
    WorkflowChangeRefused,
)
from solver_core.gitdiff.parse import FilePatch, parse_patch
from solver_core.github_urls import RepoRef
from solver_core.models import PublishedComment, PublishedPull
from solver_core.publish.auth import Credentials, GitHubAppCredentials, StaticToken
from solver_core.publish.client import GitHubClient, RetryPolicy
from solver_core.publish.comments import upsert_comment
from solver_core.publish.commit import branch_head, commit_for, patch_tree, point_branch, resolve_base
from solver_core.publish.pull import base_note, find_pull, published, upsert_pull
from solver_core.publish.render import comment_body, commit_message, pull_body, pull_title
from solver_core.publish.report import SolveReport
from solver_core.settings import Settings


class GitHubPublisher:
    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api_url
        self._credentials = credentials
        self._policy = policy or RetryPolicy()
        self._sleep = sleep

    def client(self, repo: RepoRef) -> GitHubClient:
        return GitHubClient(
            self._api, lambda: self._credentials.token_for(repo), policy=self._policy, sleep=self._sleep
        )

    def pull_request(self, report: SolveReport, previous: PublishedPull | None) -> PublishedPull:
        repo, options = report.repo, report.solve.publish
        if repo is None or options is None or report.champion is None or report.patch is None:
            raise PublishError("no champion patch or no GitHub repository to open a pull request on")
        gh, branch = self.client(repo), report.branch(options.branch_prefix)
        existing = find_pull(gh, repo, branch, previous.number if previous else None)
        if existing is not None and existing.get("merged_at"):
            return published(existing, branch, previous.parent_sha if previous else None)  # merged: leave it be
        changes = parse_patch(report.patch)
        if not report.allow_workflows and (workflows := workflow_changes(changes)):
            raise WorkflowChangeRefused(
                f"the patch changes GitHub Actions workflows ({', '.join(workflows[:5])}); the allowlist entry for "
                f"{repo.full_name} does not permit pull requests that do (`solver owners add … --allow-workflows`)"
            )
        if report.images_missing is not None:
            raise PatchNotApplicable(f"no pull request: {report.images_missing}")
        base = resolve_base(gh, repo, report.solve.ref, report.champion.base_commit)
        tree = patch_tree(gh, repo, base, changes, report.images)
        current = branch_head(gh, repo, branch)
        head = commit_for(gh, repo, base, tree, message=commit_message(report), current=current)
        point_branch(gh, repo, branch, head, current)
        body = pull_body(report, changes, base_note(base))
        pull = upsert_pull(gh, repo, existing, branch=branch, base=base.branch, title=pull_title(report), body=body)
        return published(pull, branch, base.parent)

    def comment(
        self, report: SolveReport, previous: PublishedComment | None, pull: PublishedPull | None
    ) -> PublishedComment:
        issue = report.issue
        if issue is None:
            raise PublishError("the solve has no GitHub issue URL to comment on")
        gh = self.client(issue.repo)
        return upsert_comment(gh, issue, report.marker, comment_body(report, pull), previous.id if previous else None)


WORKFLOWS_DIR = ".github/workflows/"


def workflow_changes(changes: list[FilePatch]) -> list[str]:
    """The paths under .github/workflows/ that a patch adds, changes, renames or deletes, and changes
    of `.github` or `.github/workflows` themselves (a symlink put in their place). Compared
    case-insensitively: stricter than GitHub's own test."""
    paths = {p for c in changes for p in (c.old_path, c.new_path) if p is not None}
    whole = {".github", ".github/workflows"}
    return sorted(p for p in paths if p.lower().startswith(WORKFLOWS_DIR) or p.lower() in whole)


def credentials_from(settings: Settings, policy: RetryPolicy) -> Credentials:
    """A GitHub App when one is configured, else the github.com token; PublishNotConfigured without either."""
    if settings.github_app_id is not None and settings.github_app_private_key is not None:
        return GitHubAppCredentials(
            settings.github_app_id,
            settings.github_app_private_key.get_secret_value(),
            settings.github_api_url,
            installation_id=settings.github_app_installation_id,
            policy=policy,
        )
    token = settings.host_token("https://github.com/")  # used only on allowlisted repositories (service.py)
    if token is None:
        raise PublishNotConfigured(
            "no GitHub credentials: set SOLVER_GITHUB_TOKEN, or SOLVER_GITHUB_APP_ID and SOLVER_GITHUB_APP_PRIVATE_KEY"
        )
    return StaticToken(token)


def build_publisher(settings: Settings) -> GitHubPublisher:
    """The configured publisher; raises PublishNotConfigured without credentials."""
    parts = urlsplit(settings.github_api_url)
    trusted_http = parts.scheme == "http" and (parts.hostname or "") in settings.allowed_http_hosts
    if parts.scheme != "https" and not trusted_http:
        raise ConfigurationError("SOLVER_GITHUB_API_URL must use https (it receives the GitHub token)")
    policy = RetryPolicy(attempts=settings.publish_attempts, max_wait_s=settings.publish_max_wait_s)
    return GitHubPublisher(settings.github_api_url, credentials_from(settings, policy), policy=policy)
