"""Issue comments and pull requests of the fake GitHub (registered into github_routes.ROUTES)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from tests.fakes.github_routes import FakeRepo, HttpError, Payload, route

_comment_ids = itertools.count(5000)


def _issue(repo: FakeRepo, number: str) -> int:
    if int(number) not in repo.issues and int(number) not in repo.pulls:
        raise HttpError(404, "Not Found")
    return int(number)


@route("GET", r"/issues/(?P<number>\d+)/comments")
def list_comments(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    comments = repo.comments.get(_issue(repo, m["number"]), [])
    per_page, page = min(int(q.get("per_page", "30")), 100), int(q.get("page", "1"))
    return 200, comments[(page - 1) * per_page : page * per_page]


@route("POST", r"/issues/(?P<number>\d+)/comments")
def create_comment(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    number = _issue(repo, m["number"])
    comment_id = next(_comment_ids)
    url = f"{repo.html}/issues/{number}#issuecomment-{comment_id}"
    comment: dict[str, Any] = {"id": comment_id, "body": str(body["body"]), "html_url": url, "issue": number}
    if len(comment["body"]) > 65_536:
        raise HttpError(422, "Validation Failed", [{"message": "body is too long (maximum is 65536 characters)"}])
    repo.comments.setdefault(number, []).append(comment)
    return 201, comment


@route("PATCH", r"/issues/comments/(?P<id>\d+)")
def update_comment(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    for comment in itertools.chain.from_iterable(repo.comments.values()):
        if comment["id"] == int(m["id"]):
            comment["body"] = str(body["body"])
            return 200, comment
    raise HttpError(404, "Not Found")


def _shown(repo: FakeRepo, pull: dict[str, Any]) -> dict[str, Any]:
    head = pull["head"]["ref"]
    return pull | {"head": {"ref": head, "sha": repo.refs.get(head), "label": f"{repo.owner}:{head}"}}


@route("GET", r"/pulls")
def list_pulls(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    state, head = q.get("state", "open"), q.get("head")
    found = [
        _shown(repo, p)
        for p in repo.pulls.values()
        if (state == "all" or p["state"] == state) and (head is None or f"{repo.owner}:{p['head']['ref']}" == head)
    ]
    return 200, found


@route("GET", r"/pulls/(?P<number>\d+)")
def get_pull(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    pull = repo.pulls.get(int(m["number"]))
    if pull is None:
        raise HttpError(404, "Not Found")
    return 200, _shown(repo, pull)


@route("POST", r"/pulls")
def create_pull(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    head, base = str(body["head"]), str(body["base"])
    if head not in repo.refs or base not in repo.refs:
        raise HttpError(
            422, "Validation Failed", [{"field": "head" if head not in repo.refs else "base", "code": "invalid"}]
        )
    if any(p["head"]["ref"] == head and p["state"] == "open" for p in repo.pulls.values()):
        raise HttpError(
            422, "Validation Failed", [{"message": f"A pull request already exists for {repo.owner}:{head}."}]
        )
    number = repo.next_number
    repo.next_number += 1
    repo.pulls[number] = {
        "number": number,
        "html_url": f"{repo.html}/pull/{number}",
        "title": str(body["title"]),
        "body": str(body.get("body", "")),
        "draft": bool(body.get("draft", False)),
        "state": "open",
        "merged_at": None,
        "head": {"ref": head},
        "base": {"ref": base},
    }
    return 201, _shown(repo, repo.pulls[number])


@route("PATCH", r"/pulls/(?P<number>\d+)")
def update_pull(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    pull = repo.pulls.get(int(m["number"]))
    if pull is None:
        raise HttpError(404, "Not Found")
    pull.update({k: v for k, v in body.items() if k in {"title", "body", "state", "base"}})
    return 200, _shown(repo, pull)
