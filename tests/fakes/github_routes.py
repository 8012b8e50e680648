"""The GitHub REST endpoints the publisher uses, over one in-memory repository (see github.py)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.github_objects import TREE_MODE, GitObjects

Payload = dict[str, Any] | list[Any]
WHO = "Solver Fake <fake@example.com> 1700000000 +0000"


class HttpError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


@dataclass
class FakeRepo:
    owner: str
    name: str
    default_branch: str = "main"
    objects: GitObjects = field(default_factory=GitObjects)
    refs: dict[str, str] = field(default_factory=dict)  # branch → commit
    issues: dict[int, str] = field(default_factory=dict)  # number → title
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # issue → its comments
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 100
    base_url: str = "https://github.com"

    @property
    def html(self) -> str:
        return f"{self.base_url}/{self.owner}/{self.name}"

    def commit_or_404(self, sha: str) -> Any:
        found = self.objects.read_commit(sha)
        if found is None:
            raise HttpError(404 if re.fullmatch(r"[0-9a-f]{40}", sha) else 422, "No commit found for SHA: " + sha)
        return found


Handler = Callable[[FakeRepo, re.Match[str], dict[str, str], dict[str, Any]], tuple[int, Payload]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, re.compile(pattern + "$"), handler))
        return handler

    return register


@route("GET", r"")
def get_repo(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    return 200, {"full_name": f"{repo.owner}/{repo.name}", "default_branch": repo.default_branch, "private": True}


@route("GET", r"/git/ref/heads/(?P<branch>.+)")
def get_ref(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    sha = repo.refs.get(m["branch"])
    if sha is None:
        raise HttpError(404, "Not Found")
    return 200, {"ref": f"refs/heads/{m['branch']}", "object": {"sha": sha, "type": "commit"}}


@route("POST", r"/git/refs")
def create_ref(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    branch = str(body["ref"]).removeprefix("refs/heads/")
    if branch in repo.refs:
        raise HttpError(422, "Reference already exists")
    repo.commit_or_404(body["sha"])
    repo.refs[branch] = body["sha"]
    return 201, {"ref": body["ref"], "object": {"sha": body["sha"], "type": "commit"}}


@route("PATCH", r"/git/refs/heads/(?P<branch>.+)")
def update_ref(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    current = repo.refs.get(m["branch"])
    if current is None:
        raise HttpError(422, "Reference does not exist")
    repo.commit_or_404(body["sha"])
    if not body.get("force") and not repo.objects.is_ancestor(current, body["sha"]):
        raise HttpError(422, "Update is not a fast forward")
    repo.refs[m["branch"]] = body["sha"]
    return 200, {"ref": f"refs/heads/{m['branch']}", "object": {"sha": body["sha"], "type": "commit"}}


@route("GET", r"/git/commits/(?P<sha>[^/]+)")
def get_commit(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    found = repo.commit_or_404(m["sha"])
    parents = [{"sha": p} for p in found.parents]
    return 200, {"sha": found.sha, "tree": {"sha": found.tree}, "parents": parents, "message": found.message}


@route("POST", r"/git/commits")
def create_commit(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    if repo.objects.get(body["tree"], "tree") is None:
        raise HttpError(422, "Tree SHA does not exist")
    for parent in body.get("parents", []):
        repo.commit_or_404(parent)
    sha = repo.objects.write_commit(body["tree"], list(body.get("parents", [])), str(body["message"]), WHO)
    return 201, {"sha": sha, "tree": {"sha": body["tree"]}, "parents": [{"sha": p} for p in body["parents"]]}


@route("GET", r"/git/trees/(?P<sha>[0-9a-f]+)")
def get_tree(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    try:
        entries = repo.objects.read_tree(m["sha"])
    except KeyError as exc:
        raise HttpError(404, "Not Found") from exc
    tree = [
        {
            "path": e.name,
            "mode": "040000" if e.is_tree else e.mode,
            "type": "tree" if e.is_tree else "blob",
            "sha": e.sha,
        }
        for e in entries
    ]
    return 200, {"sha": m["sha"], "tree": tree, "truncated": False}


@route("POST", r"/git/trees")
def create_tree(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    files = repo.objects.flatten(body["base_tree"]) if body.get("base_tree") else {}
    for entry in body["tree"]:
        path = str(entry["path"])
        if entry.get("sha") is None:
            if path not in files:
                raise HttpError(422, f"path {path} does not exist in the base tree")
            del files[path]
            continue
        if entry["mode"] == TREE_MODE or repo.objects.get(entry["sha"], "blob") is None:
            raise HttpError(422, f"tree.sha {entry['sha']} is not a valid blob")
        files = {p: v for p, v in files.items() if not p.startswith(path + "/")}  # a file replaces a directory
        files[path] = (str(entry["mode"]), str(entry["sha"]))
    return 201, {"sha": repo.objects.build(files)}


@route("GET", r"/git/blobs/(?P<sha>[0-9a-f]+)")
def get_blob(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    data = repo.objects.get(m["sha"], "blob")
    if data is None:
        raise HttpError(404, "Not Found")
    encoded = base64.encodebytes(data).decode()  # GitHub wraps base64 at 60 characters; so does this
    return 200, {"sha": m["sha"], "size": len(data), "content": encoded, "encoding": "base64"}


@route("POST", r"/git/blobs")
def create_blob(repo: FakeRepo, m: re.Match[str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Payload]:
    raw = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else str(body["content"]).encode()
    return 201, {"sha": repo.objects.put("blob", raw)}
