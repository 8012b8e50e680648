"""GitHub locations named by a solve: the repository (`repo_url`) and the issue (`issue.url`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

GITHUB_HOSTS = frozenset({"github.com", "www.github.com"})
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class RepoRef:
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"

    @property
    def api_path(self) -> str:
        return f"/repos/{self.owner}/{self.name}"


@dataclass(frozen=True)
class IssueRef:
    repo: RepoRef
    number: int


def _segments(url: str) -> list[str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme != "https" or (parts.hostname or "").lower() not in GITHUB_HOSTS:
        return None
    return [s for s in parts.path.split("/") if s]


def _repo(owner: str, name: str) -> RepoRef | None:
    name = name.removesuffix(".git")
    if not (_NAME.match(owner) and _NAME.match(name)) or name in {".", ".."}:
        return None
    return RepoRef(owner, name)


def parse_repo_url(url: str | None) -> RepoRef | None:
    """`https://github.com/org/repo[.git]` → org/repo; None for anything else (other hosts, local paths)."""
    segments = _segments(url or "")
    if segments is None or len(segments) != 2:
        return None
    return _repo(*segments)


def parse_issue_url(url: str | None) -> IssueRef | None:
    """`https://github.com/org/repo/issues/12` (or `/pull/12`: pull requests are issues too) → its parts."""
    segments = _segments(url or "")
    if segments is None or len(segments) != 4 or segments[2] not in {"issues", "pull"}:
        return None
    repo = _repo(segments[0], segments[1])
    if repo is None or not segments[3].isdigit() or not 0 < int(segments[3]) < 2**31:
        return None
    return IssueRef(repo, int(segments[3]))


def pull_request_repo(repo_url: str | None, issue_url: str | None) -> RepoRef | None:
    """Where a pull request goes: the solved repository when it is on GitHub, else the issue's."""
    found = parse_repo_url(repo_url)
    if found is not None:
        return found
    issue = parse_issue_url(issue_url)
    return issue.repo if issue else None
