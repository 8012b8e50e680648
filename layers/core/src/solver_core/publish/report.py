"""What publishing works from: the finished solve, its champion and patch, and links to artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

from solver_core.github_urls import IssueRef, RepoRef, parse_issue_url, pull_request_repo
from solver_core.models import RunView, SolveView

MARKER_PREFIX = "<!-- solver:solve:"


def marker(solve_id: UUID) -> str:
    """Hidden in comments and pull request bodies: finds them again when publishing is repeated."""
    return f"{MARKER_PREFIX}{solve_id} -->"


@dataclass(frozen=True)
class SolveReport:
    """What publishing shows. It carries no artifact links: an issue thread can be public, and a
    presigned link is readable by anyone who sees it. Comments point at the API's authenticated
    routes under `api_url` instead (or, without one, say how to fetch with `solver`)."""

    solve: SolveView
    champion: RunView | None
    patch: bytes | None
    api_url: str | None = None
    # The champion's post-images by blob id (stored at CollectArtifacts; gitdiff/images.py), or why
    # there are none: a pull request is made of them.
    images: Mapping[str, bytes] = field(default_factory=dict)
    images_missing: str | None = None
    # Whether the owner's allowlist entry for the repository lets a pull request change .github/workflows/.
    allow_workflows: bool = False

    @property
    def marker(self) -> str:
        return marker(self.solve.id)

    @property
    def issue(self) -> IssueRef | None:
        return parse_issue_url(self.solve.issue.url)

    @property
    def repo(self) -> RepoRef | None:
        return pull_request_repo(self.solve.repo_url, self.solve.issue.url)

    @property
    def solve_url(self) -> str | None:
        return f"{self.api_url.rstrip('/')}/solves/{self.solve.id}" if self.api_url else None

    def branch(self, prefix: str) -> str:
        return f"{prefix}{str(self.solve.id)[:8]}"
