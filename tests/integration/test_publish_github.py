"""GitHubPublisher against the loopback fake GitHub: the comment and the draft pull request are
created, then updated in place; every kind of file change lands as git itself would build it; a
base branch that moved, an unknown base commit, and the failure modes (permission denied, rate
limits, server errors)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from solver_core.errors import (
    GitHubPermissionDenied,
    GitHubRateLimited,
    GitHubUnavailable,
    PatchNotApplicable,
    PublishError,
)
from solver_core.models import PublishedPull
from solver_core.publish.render import MAX_COMMENT_CHARS
from tests.fakes.github import FakeGitHub
from tests.support.publishing import (
    API_URL,
    REPO,
    Champion,
    Reports,
    every_kind_of_change,
    publisher,
    seeded,
    stage,
)
from tests.support.runtime import commit_files, git, make_repo

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub().serve() as served:
        yield served


@pytest.fixture
def champion(tmp_path: Path, fake: FakeGitHub) -> Champion:
    made = every_kind_of_change(tmp_path / "calc")
    seeded(fake, made)
    return made


def commit_of(fake: FakeGitHub, pull: PublishedPull) -> tuple[str, list[str], str]:
    found = fake.repos[REPO].commit_or_404(pull.head_sha)
    return found.tree, found.parents, found.message


def test_a_draft_pull_request_of_exactly_the_patch_and_a_comment(fake: FakeGitHub, champion: Champion) -> None:
    sleeps: list[float] = []
    reports = Reports()
    report = reports.report(champion)
    pull = publisher(fake, sleeps).pull_request(report, None)

    tree, parents, message = commit_of(fake, pull)
    assert tree == champion.tree  # the very tree `git write-tree` makes of the staged changes
    assert parents == [champion.base]
    assert f"Solver-Solve: {reports.solve_id}" in message
    assert (pull.branch, pull.base, pull.draft, pull.parent_sha) == (
        f"solver/{str(reports.solve_id)[:8]}",
        "main",
        True,
        champion.base,
    )
    stored = fake.repos[REPO].pulls[pull.number]
    assert stored["title"] == "Solver: mean() drops the fraction"
    assert report.marker in stored["body"]
    assert "https://github.com/org/calc/issues/12" in stored["body"]
    assert "- renamed `docs/old name.md` → `docs/new name.md`" in stored["body"]
    assert "- deleted `obsolete.txt`" in stored["body"]
    assert "- added `icon.bin`" in stored["body"]
    assert "- modified `run.sh` (mode 100644 → 100755)" in stored["body"]

    comment = publisher(fake, sleeps).comment(report, None, pull)
    (posted,) = fake.repos[REPO].comments[12]
    assert posted["id"] == comment.id
    assert posted["html_url"] == comment.url
    body = posted["body"]
    assert body.startswith(report.marker)
    assert f"Draft pull request: [#{pull.number}]({pull.url})" in body
    assert "| 0 🏆 | `replay:/tmp/fix.yaml` | finished (Submitted) | passed | - | 3 | $0.0000 |" in body
    assert f"`GET {API_URL}/solves/{report.solve.id}` and `GET {API_URL}/solves/{report.solve.id}/patch`" in body
    assert "X-Amz-" not in body  # no presigned link, even with an API URL
    assert "Signature" not in body
    assert "<details><summary>Champion diff" in body
    assert "-    return sum(values) // len(values)" in body
    assert "(binary file: contents omitted)" in body
    assert "GIT binary patch" not in body
    assert sleeps == []


def test_every_kind_of_change_lands_with_its_bytes_and_modes(fake: FakeGitHub, champion: Champion) -> None:
    pull = publisher(fake, []).pull_request(Reports().report(champion), None)
    files = fake.files(REPO, pull.head_sha)
    for path in ("calc.py", "CHANGELOG.md", "icon.bin", "logo.png", "docs/new name.md"):
        assert files[path] == (champion.path / path).read_bytes(), path
    assert "obsolete.txt" not in files
    assert "docs/old name.md" not in files
    modes = {path: mode for path, (mode, _) in fake.repos[REPO].objects.flatten(commit_of(fake, pull)[0]).items()}
    assert modes["run.sh"] == "100755"
    assert (modes["settings.ini"], files["settings.ini"]) == ("120000", b"other.txt")


def test_publishing_again_updates_the_same_comment_and_pull_request(fake: FakeGitHub, champion: Champion) -> None:
    reports = Reports()
    first_pull = publisher(fake, []).pull_request(reports.report(champion), None)
    first_comment = publisher(fake, []).comment(reports.report(champion), None, first_pull)
    commits = fake.calls("POST", r"/git/commits$")

    again = publisher(fake, []).pull_request(reports.report(champion), first_pull)
    assert again == first_pull
    assert fake.calls("POST", r"/git/commits$") == commits  # the same patch moves nothing
    assert publisher(fake, []).comment(reports.report(champion), first_comment, again) == first_comment

    (champion.path / "calc.py").write_text("def mean(values):\n    return sum(values) / max(len(values), 1)\n")
    changed = stage(champion.path, champion.base)
    # The record was lost (say the step died after GitHub answered): both are found again.
    updated = publisher(fake, []).pull_request(reports.report(changed), None)
    assert updated.number == first_pull.number
    assert updated.head_sha != first_pull.head_sha
    assert commit_of(fake, updated)[:2] == (changed.tree, [champion.base])
    assert publisher(fake, []).comment(reports.report(changed), None, updated).id == first_comment.id
    assert len(fake.repos[REPO].comments[12]) == 1
    assert len(fake.repos[REPO].pulls) == 1
    assert "max(len(values), 1)" in fake.repos[REPO].comments[12][0]["body"]


def test_a_deleted_comment_is_posted_again(fake: FakeGitHub, champion: Champion) -> None:
    report = Reports().report(champion)
    first = publisher(fake, []).comment(report, None, None)
    fake.repos[REPO].comments[12].clear()
    second = publisher(fake, []).comment(report, first, None)
    assert second.id != first.id
    assert [c["id"] for c in fake.repos[REPO].comments[12]] == [second.id]


def test_the_base_branch_moved_on(fake: FakeGitHub, champion: Champion) -> None:
    """The commit's parent stays the run's base, so the pull request shows exactly the patch."""
    repo = fake.repos[REPO]
    files = repo.objects.flatten(repo.commit_or_404(champion.base).tree)
    files["calc.py"] = ("100644", repo.objects.put("blob", b"def mean(values):\n    return 0\n"))
    moved = repo.objects.write_commit(repo.objects.build(files), [champion.base], "someone else", "X <x@y> 1 +0000")
    repo.refs["main"] = moved

    pull = publisher(fake, []).pull_request(Reports().report(champion), None)
    assert commit_of(fake, pull)[:2] == (champion.tree, [champion.base])
    assert (pull.base, repo.refs["main"]) == ("main", moved)  # the base branch itself is untouched
    assert "the commit the run started from" in repo.pulls[pull.number]["body"]


def test_an_unknown_base_commit_falls_back_to_the_branch_head(tmp_path: Path, fake: FakeGitHub) -> None:
    """A run on a local copy whose commits GitHub never saw: the patch goes on the branch head, which
    is safe only because every touched file there is byte-for-byte the patch's preimage."""
    buggy = "def mean(values):\n    return sum(values) // len(values)\n"
    github_side = make_repo(tmp_path / "github", {"calc.py": buggy, "other.txt": "a\n"}, message="GitHub's history")
    fake.add_repo("org", "calc", source=github_side).issues[12] = "mean"
    fake.add_token("ghp_publisher_test_token")
    local = make_repo(tmp_path / "local", {"calc.py": (github_side / "calc.py").read_text(), "other.txt": "b\n"})
    base = git(local, "rev-parse", "HEAD")
    (local / "calc.py").write_text("def mean(values):\n    return sum(values) / len(values)\n")
    champion = stage(local, base)

    pull = publisher(fake, []).pull_request(Reports().report(champion), None)
    head = fake.repos[REPO].refs["main"]
    assert commit_of(fake, pull)[1] == [head]
    assert fake.files(REPO, pull.head_sha) == {"calc.py": (local / "calc.py").read_bytes(), "other.txt": b"a\n"}
    assert "which this repository does not have" in fake.repos[REPO].pulls[pull.number]["body"]

    commit_files(github_side, {"calc.py": "changed on GitHub\n"}, "diverge")
    fake.add_repo("org", "calc", source=github_side)
    with pytest.raises(PatchNotApplicable, match=r"calc\.py: the base has"):
        publisher(fake, []).pull_request(Reports().report(champion), None)


def test_a_branch_that_is_not_the_solves_is_never_overwritten(fake: FakeGitHub, champion: Champion) -> None:
    reports = Reports()
    fake.repos[REPO].refs[f"solver/{str(reports.solve_id)[:8]}"] = champion.base
    with pytest.raises(PublishError, match="not this solve's; not overwritten"):
        publisher(fake, []).pull_request(reports.report(champion), None)
    assert fake.repos[REPO].pulls == {}


def test_permission_denied_is_reported_at_once(fake: FakeGitHub, champion: Champion) -> None:
    fake.add_token("read-only", write=False)
    sleeps: list[float] = []
    with pytest.raises(GitHubPermissionDenied, match="403 Resource not accessible"):
        publisher(fake, sleeps, token="read-only").comment(Reports().report(champion), None, None)
    assert fake.calls("POST", r"/comments$") == 1
    assert sleeps == []
    with pytest.raises(GitHubPermissionDenied, match="401 Bad credentials"):
        publisher(fake, sleeps, token="nobody").comment(Reports().report(champion), None, None)


def test_retry_after_is_honoured(fake: FakeGitHub, champion: Champion) -> None:
    fake.fail("POST", r"/issues/12/comments$", 429, headers={"Retry-After": "3"}, message="slow down", times=2)
    sleeps: list[float] = []
    comment = publisher(fake, sleeps).comment(Reports().report(champion), None, None)
    assert sleeps == [3.0, 3.0]
    assert [c["id"] for c in fake.repos[REPO].comments[12]] == [comment.id]


def test_a_primary_rate_limit_waits_for_its_reset(fake: FakeGitHub, champion: Champion) -> None:
    reset = str(int(time.time()) + 4)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    fake.fail("GET", r"/issues/12/comments$", 403, headers=headers, message="API rate limit exceeded")
    sleeps: list[float] = []
    publisher(fake, sleeps).comment(Reports().report(champion), None, None)
    assert len(sleeps) == 1
    assert 3.0 <= sleeps[0] <= 6.0


def test_a_rate_limit_longer_than_the_bound_is_not_waited_for(fake: FakeGitHub, champion: Champion) -> None:
    fake.fail("POST", r"/git/blobs$", 403, headers={"Retry-After": "3600"}, message="secondary rate limit")
    sleeps: list[float] = []
    with pytest.raises(GitHubRateLimited, match="retry in 3600s") as caught:
        publisher(fake, sleeps).pull_request(Reports().report(champion), None)
    assert caught.value.retryable
    assert sleeps == []


def test_server_errors_are_retried_with_backoff_then_reported(fake: FakeGitHub, champion: Champion) -> None:
    fake.fail("PATCH", r"/pulls/\d+$", 502, times=2)
    sleeps: list[float] = []
    reports = Reports()
    first = publisher(fake, sleeps).pull_request(reports.report(champion), None)
    publisher(fake, sleeps).pull_request(reports.report(champion), first)
    assert sleeps == [1.0, 2.0]
    fake.fail("GET", r"/git/ref/heads/main$", 503, times=10)
    with pytest.raises(GitHubUnavailable, match="503"):
        publisher(fake, sleeps).pull_request(reports.report(champion), None)
    assert sleeps == [1.0, 2.0, 1.0, 2.0, 4.0]


def test_repositories_without_draft_pull_requests_get_an_ordinary_one(fake: FakeGitHub, champion: Champion) -> None:
    fake.fail("POST", r"/pulls$", 422, message="Draft pull requests are not supported in this repository.")
    pull = publisher(fake, []).pull_request(Reports().report(champion), None)
    assert pull.draft is False
    assert fake.repos[REPO].pulls[pull.number]["head"]["ref"] == pull.branch


def test_a_huge_diff_is_truncated_in_the_comment(tmp_path: Path, fake: FakeGitHub) -> None:
    path = make_repo(tmp_path / "big", {"a.txt": "a\n"})
    base = git(path, "rev-parse", "HEAD")
    (path / "big.txt").write_text("".join(f"line {i} of a generated file\n" for i in range(20_000)))
    champion = stage(path, base)
    seeded(fake, champion)
    publisher(fake, []).comment(Reports().report(champion), None, None)
    body = fake.repos[REPO].comments[12][0]["body"]
    assert len(body) <= MAX_COMMENT_CHARS
    assert "Diff truncated" in body
    assert f"The full patch: `GET {API_URL}/solves/" in body
    assert body.rstrip().endswith(" run(s)</sub>")


def test_stored_contents_that_are_not_the_patchs_are_never_published(fake: FakeGitHub, champion: Champion) -> None:
    """A post-image is published only if its bytes hash to the blob id the patch names (the sandbox
    that stored it ran the agent's code)."""
    blob = next(iter(champion.images))
    forged = replace(champion, images={**champion.images, blob: b"print('not the patch')\n"})
    refs_before = dict(fake.repos[REPO].refs)
    with pytest.raises(PatchNotApplicable, match="not the patch's blob"):
        publisher(fake, []).pull_request(Reports().report(forged), None)
    assert fake.repos[REPO].refs == refs_before  # no branch was made or moved
    assert fake.repos[REPO].pulls == {}


def test_without_stored_contents_there_is_no_pull_request(fake: FakeGitHub, champion: Champion) -> None:
    partial = replace(champion, images=dict(list(champion.images.items())[1:]))
    with pytest.raises(PatchNotApplicable, match="were not stored with the run"):
        publisher(fake, []).pull_request(Reports().report(partial), None)
    report = replace(Reports().report(champion), images={}, images_missing="the changed files are larger than 5 bytes")
    with pytest.raises(PatchNotApplicable, match="no pull request: the changed files are larger"):
        publisher(fake, []).pull_request(report, None)
