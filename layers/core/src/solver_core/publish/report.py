"""What publishing works from: the finished solve, its champion and patch, and links to artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from solver_core.models import RunView, SolveView
from solver_core.publish.urls import IssueRef, RepoRef, parse_issue_url, pull_request_repo

MARKER_PREFIX = "<!-- solver:solve:"


def marker(solve_id: UUID) -> str:
    """Hidden in comments and pull request bodies: finds them again when publishing is repeated."""
    return f"{MARKER_PREFIX}{solve_id} -->"


@dataclass(frozen=True)
class SolveReport:
    solve: SolveView
    champion: RunView | None
    patch: bytes | None
    links: dict[UUID, dict[str, str]] = field(default_factory=dict)  # run id → artifact kind → URL
    patch_url: str | None = None

    @property
    def marker(self) -> str:
        return marker(self.solve.id)

    @property
    def issue(self) -> IssueRef | None:
        return parse_issue_url(self.solve.issue.url)

    @property
    def repo(self) -> RepoRef | None:
        return pull_request_repo(self.solve.repo_url, self.solve.issue.url)

    def branch(self, prefix: str) -> str:
        return f"{prefix}{str(self.solve.id)[:8]}"
