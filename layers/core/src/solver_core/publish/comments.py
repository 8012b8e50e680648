"""The issue comment: updated in place when publishing is repeated, found by its id or its marker."""

from __future__ import annotations

from typing import Any

from solver_core.errors import GitHubNotFound
from solver_core.github_urls import IssueRef
from solver_core.models import PublishedComment
from solver_core.publish.client import GitHubClient

PAGE = 100
MAX_PAGES = 30  # 3,000 comments: an issue with more is searched no further (a new comment is added)


def upsert_comment(gh: GitHubClient, issue: IssueRef, marker: str, body: str, known: int | None) -> PublishedComment:
    """Edit the solve's comment (by its recorded id, else found by marker), or post one."""
    comments = f"{issue.repo.api_path}/issues/comments"
    target = known if known is not None else _find(gh, issue, marker)
    if target is not None:
        try:
            return _published(gh.patch(f"{comments}/{target}", {"body": body}))
        except GitHubNotFound:  # deleted meanwhile: another copy may exist, else post anew
            target = _find(gh, issue, marker) if known is not None else None
            if target is not None:
                return _published(gh.patch(f"{comments}/{target}", {"body": body}))
    return _published(gh.post(f"{issue.repo.api_path}/issues/{issue.number}/comments", {"body": body}))


def _find(gh: GitHubClient, issue: IssueRef, marker: str) -> int | None:
    path = f"{issue.repo.api_path}/issues/{issue.number}/comments"
    for page in range(1, MAX_PAGES + 1):
        batch: list[dict[str, Any]] = gh.get(path, per_page=PAGE, page=page)
        found = next((c for c in batch if marker in str(c.get("body", ""))), None)
        if found is not None:
            return int(found["id"])
        if len(batch) < PAGE:
            return None
    return None


def _published(answer: dict[str, Any]) -> PublishedComment:
    return PublishedComment(id=int(answer["id"]), url=str(answer["html_url"]))
