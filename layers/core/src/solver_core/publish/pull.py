"""The draft pull request: found again by its number or its head branch, created or updated."""

from __future__ import annotations

from typing import Any

from solver_core.errors import GitHubError, GitHubNotFound
from solver_core.github_urls import RepoRef
from solver_core.models import PublishedPull
from solver_core.publish.client import GitHubClient
from solver_core.publish.commit import Base


def find_pull(gh: GitHubClient, repo: RepoRef, branch: str, number: int | None) -> dict[str, Any] | None:
    """The pull request of this branch: the recorded number first, else a search by head branch (in
    case the number was never recorded, say the step died right after creating it)."""
    if number is not None:
        try:
            pull: dict[str, Any] = gh.get(f"{repo.api_path}/pulls/{number}")
            if pull["head"]["ref"] == branch:
                return pull
        except GitHubNotFound:
            pass
    found = gh.get(f"{repo.api_path}/pulls", head=f"{repo.owner}:{branch}", state="all", per_page=10)
    return found[0] if found else None


def upsert_pull(
    gh: GitHubClient, repo: RepoRef, existing: dict[str, Any] | None, *, branch: str, base: str, title: str, body: str
) -> dict[str, Any]:
    if existing is not None:
        answer: dict[str, Any] = gh.patch(f"{repo.api_path}/pulls/{existing['number']}", {"title": title, "body": body})
        return answer
    create = {"title": title, "head": branch, "base": base, "body": body, "draft": True}
    try:
        created: dict[str, Any] = gh.post(f"{repo.api_path}/pulls", create)
        return created
    except GitHubError as exc:
        if exc.http_status != 422:
            raise
        if "already exists" in exc.message and (raced := find_pull(gh, repo, branch, None)):
            return upsert_pull(gh, repo, raced, branch=branch, base=base, title=title, body=body)
        if "draft" not in exc.message.lower():
            raise
    # Draft pull requests are not available on every plan; an ordinary one says "draft" in its body.
    ordinary: dict[str, Any] = gh.post(f"{repo.api_path}/pulls", create | {"draft": False})
    return ordinary


def published(pull: dict[str, Any], branch: str, parent: str | None) -> PublishedPull:
    return PublishedPull(
        number=int(pull["number"]),
        url=str(pull["html_url"]),
        branch=branch,
        base=str(pull["base"]["ref"]),
        head_sha=str(pull["head"]["sha"]),
        parent_sha=parent,
        draft=bool(pull.get("draft", False)),
        state="merged" if pull.get("merged_at") else str(pull.get("state", "open")),
    )


def base_note(base: Base) -> str:
    if base.recorded is None:
        return f"Built on `{base.parent[:12]}`, the commit the run started from; base branch `{base.branch}`."
    return (
        f"The run started from `{base.recorded[:12]}`, which this repository does not have; the patch was "
        f"applied to the head of `{base.branch}` (`{base.parent[:12]}`), where every file it touches is unchanged."
    )
