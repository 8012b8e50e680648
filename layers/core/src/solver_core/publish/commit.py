"""The commit a pull request is made of: the champion patch on top of the commit its run started from.

The parent is the run's recorded base commit, not the branch's current head: the pull request then
shows exactly the patch even when the branch moved on meanwhile (GitHub computes the merge). When
GitHub does not know that commit (a run on a local copy whose history was never pushed, say), the
head of the base branch is used instead; that is safe because every touched file's base entry is
checked against the blob id the patch names, so the patch lands there exactly or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from solver_core.errors import GitHubError, GitHubNotFound, PatchNotApplicable, PublishError
from solver_core.gitdiff.parse import FilePatch
from solver_core.github_urls import RepoRef
from solver_core.publish.client import GitHubClient
from solver_core.publish.git_data import TreeIndex, tree_entries

_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")


@dataclass(frozen=True)
class Base:
    branch: str  # the pull request's base branch
    parent: str  # the commit the patch goes on
    tree: str  # the parent's tree
    recorded: str | None  # the run's base commit when GitHub did not know it (parent is the branch head)


def branch_path(repo: RepoRef, branch: str) -> str:
    return f"{repo.api_path}/git/ref/heads/{quote(branch, safe='/')}"


def branch_head(gh: GitHubClient, repo: RepoRef, branch: str) -> str | None:
    try:
        return str(gh.get(branch_path(repo, branch))["object"]["sha"])
    except GitHubNotFound:
        return None


def base_branch(gh: GitHubClient, repo: RepoRef, ref: str | None) -> str:
    """The solve's ref when it is a branch on GitHub; otherwise (a tag, a sha, none) the default branch."""
    if ref and not _HEX.match(ref) and branch_head(gh, repo, ref.removeprefix("refs/heads/")) is not None:
        return ref.removeprefix("refs/heads/")
    return str(gh.get(repo.api_path)["default_branch"])


def resolve_base(gh: GitHubClient, repo: RepoRef, ref: str | None, base_commit: str | None) -> Base:
    branch = base_branch(gh, repo, ref)
    if base_commit:
        try:
            commit = gh.get(f"{repo.api_path}/git/commits/{base_commit}")
            return Base(branch, str(commit["sha"]), str(commit["tree"]["sha"]), None)
        except GitHubError as exc:
            if exc.http_status not in {404, 422}:
                raise
    head = branch_head(gh, repo, branch)
    if head is None:
        raise PatchNotApplicable(f"base branch {branch} does not exist on {repo.full_name}")
    commit = gh.get(f"{repo.api_path}/git/commits/{head}")
    return Base(branch, head, str(commit["tree"]["sha"]), base_commit)


def patch_tree(
    gh: GitHubClient, repo: RepoRef, base: Base, changes: list[FilePatch], images: Mapping[str, bytes]
) -> str:
    """The base tree with the changes applied (one request for the tree; blobs as needed)."""
    if not changes:
        raise PatchNotApplicable("the champion patch changes nothing")
    index = TreeIndex(gh, repo, base.tree)
    # One entry per path, the last change winning: a deletion followed by a creation is a replacement.
    entries = {entry["path"]: entry for change in changes for entry in tree_entries(gh, repo, index, change, images)}
    body = {"base_tree": base.tree, "tree": list(entries.values())}
    return str(gh.post(f"{repo.api_path}/git/trees", body)["sha"])


def commit_for(gh: GitHubClient, repo: RepoRef, base: Base, tree: str, *, message: str, current: str | None) -> str:
    """A commit of `tree` on the base; the branch's current commit when it already is exactly that
    (re-publishing the same patch moves nothing). A branch whose head is not this solve's (its
    message lacks the solve's trailer, the message's last line) is never overwritten."""
    if current is not None:
        head = gh.get(f"{repo.api_path}/git/commits/{current}")
        trailer = message.rstrip().rsplit("\n", 1)[-1]
        if trailer not in str(head.get("message", "")):
            raise PublishError(f"the branch exists and its head {current[:12]} is not this solve's; not overwritten")
        if head["tree"]["sha"] == tree and [p["sha"] for p in head["parents"]] == [base.parent]:
            return current
    body = {"message": message, "tree": tree, "parents": [base.parent]}
    return str(gh.post(f"{repo.api_path}/git/commits", body)["sha"])


def point_branch(gh: GitHubClient, repo: RepoRef, branch: str, sha: str, current: str | None) -> None:
    """Create the branch, or move it (forced: a re-published patch is a new commit on the same parent)."""
    if current == sha:
        return
    if current is None:
        gh.post(f"{repo.api_path}/git/refs", {"ref": f"refs/heads/{branch}", "sha": sha})
        return
    gh.patch(f"{repo.api_path}/git/refs/heads/{quote(branch, safe='/')}", {"sha": sha, "force": True})
