"""The champion patch as a git tree on GitHub, through the git data API (trees, blobs), with no clone.

Why not `git apply` in a clone: the repository may be large or private, and a clone would need the
token on disk; the patch touches few files. So the base tree's entries for exactly the touched files
are checked against the blob ids the patch names, and each file's new bytes, the post-image stored
at CollectArtifacts (gitdiff/images.py), is checked against the patch's new id and uploaded as a
blob; one tree request on top of the base tree (deletions are entries with `sha: null`) yields the
new tree.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver_core.errors import PatchNotApplicable
from solver_core.gitdiff.images import blob_sha, rewrites, same_blob
from solver_core.gitdiff.parse import FilePatch
from solver_core.github_urls import RepoRef
from solver_core.publish.client import GitHubClient

FILE_MODES = frozenset({"100644", "100755", "120000"})


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str
    sha: str


class TreeIndex:
    """Path lookups in one tree, a directory listing at a time: a recursive listing of a big
    repository comes back truncated, and a patch touches few directories."""

    def __init__(self, gh: GitHubClient, repo: RepoRef, root: str) -> None:
        self._gh, self._repo, self._root = gh, repo, root
        self._listings: dict[str, dict[str, TreeEntry]] = {}
        self._gone: set[str] = set()

    def entry(self, path: str) -> TreeEntry | None:
        if path in self._gone:
            return None
        *directories, name = path.split("/")
        tree = self._root
        for directory in directories:
            found = self._listing(tree).get(directory)
            if found is None or found.type != "tree":
                return None
            tree = found.sha
        return self._listing(tree).get(name)

    def forget(self, path: str) -> None:
        """The patch deleted `path`: a later change in it may create the path anew (a file that
        became a symlink is a deletion and a creation in git's diff)."""
        self._gone.add(path)

    def _listing(self, tree: str) -> dict[str, TreeEntry]:
        if tree not in self._listings:
            answer = self._gh.get(f"{self._repo.api_path}/git/trees/{tree}")
            if answer.get("truncated"):
                raise PatchNotApplicable(f"tree {tree} is too large for GitHub to list")
            self._listings[tree] = {e["path"]: TreeEntry(e["mode"], e["type"], e["sha"]) for e in answer["tree"]}
        return self._listings[tree]


def create_blob(gh: GitHubClient, repo: RepoRef, data: bytes) -> str:
    body = {"content": base64.b64encode(data).decode(), "encoding": "base64"}
    sha = str(gh.post(f"{repo.api_path}/git/blobs", body)["sha"])
    if sha != blob_sha(data):
        raise PatchNotApplicable(f"GitHub stored a blob as {sha}, expected {blob_sha(data)}")
    return sha


def tree_entries(
    gh: GitHubClient, repo: RepoRef, index: TreeIndex, change: FilePatch, images: Mapping[str, bytes]
) -> list[dict[str, Any]]:
    """The tree entries that make one file's change on top of the base tree."""
    old = _old_entry(index, change)
    entries: list[dict[str, Any]] = []
    moved = change.old_path is not None and change.old_path != change.new_path and not change.is_copy
    if old is not None and change.old_path is not None and (change.new_path is None or moved):
        entries.append({"path": change.old_path, "mode": old.mode, "type": "blob", "sha": None})
        index.forget(change.old_path)
    if change.new_path is not None:
        if change.old_path is None and index.entry(change.new_path) is not None:
            raise PatchNotApplicable(f"{change.new_path}: the patch adds it, but it already exists on the base")
        mode = change.new_mode or (old.mode if old else "100644")
        if mode not in FILE_MODES:
            raise PatchNotApplicable(f"{change.new_path}: mode {mode} (submodules and the like) is not published")
        entries.append(
            {"path": change.new_path, "mode": mode, "type": "blob", "sha": _new_blob(gh, repo, old, change, images)}
        )
    return entries


def _old_entry(index: TreeIndex, change: FilePatch) -> TreeEntry | None:
    if change.old_path is None:
        return None
    old = index.entry(change.old_path)
    if old is None or old.type != "blob":
        raise PatchNotApplicable(f"{change.old_path}: not a file on the base the patch was made from")
    if not same_blob(change.old_sha, old.sha):
        raise PatchNotApplicable(f"{change.old_path}: the base has {old.sha[:12]}, the patch expects {change.old_sha}")
    return old


def _new_blob(
    gh: GitHubClient, repo: RepoRef, old: TreeEntry | None, change: FilePatch, images: Mapping[str, bytes]
) -> str:
    if old is not None and not rewrites(change):  # a mode change: the same bytes
        if not same_blob(change.new_sha, old.sha):
            raise PatchNotApplicable(f"{change.new_path}: unchanged bytes, yet the patch names blob {change.new_sha}")
        return old.sha
    if change.binary_without_data:
        raise PatchNotApplicable(f"{change.new_path}: binary change without data (the patch needs --binary)")
    named = (change.new_sha or "").lower()
    data = images.get(named)
    if data is None:
        raise PatchNotApplicable(
            f"{change.new_path}: its new contents (blob {named[:12]}) were not stored with the run"
        )
    if blob_sha(data) != named:  # a full id (--full-index): the stored bytes are exactly the patch's
        raise PatchNotApplicable(f"{change.new_path}: the stored contents are not the patch's blob {named[:12]}")
    return create_blob(gh, repo, data)
