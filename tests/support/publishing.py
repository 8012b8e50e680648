"""Builders for publishing tests: a local repository with a champion patch, the same repository on
the fake GitHub, and the report the publisher works from."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from solver_core.gitdiff.images import needed_blobs
from solver_core.gitdiff.parse import parse_patch
from solver_core.models import IssueSpec, Limits, PatchStats, PublishOptions, RunView, SolveView, TestResult
from solver_core.publish.auth import StaticToken
from solver_core.publish.client import RetryPolicy
from solver_core.publish.github import GitHubPublisher
from solver_core.publish.report import SolveReport
from solver_core.sandbox.repository import patch_stats
from solver_core.status import RunStatus, SolveStatus
from tests.fakes.github import FakeGitHub
from tests.support.runtime import git, make_repo

TOKEN = "ghp_publisher_test_token"
API_URL = "https://solver.example/prod"
REPO = "org/calc"
ISSUE_URL = f"https://github.com/{REPO}/issues/12"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
BASE_FILES: dict[str, str | bytes] = {
    "calc.py": "def mean(values):\n    return sum(values) // len(values)\n",
    "test_calc.py": "from calc import mean\nassert mean([1, 2]) == 1.5\n",
    "docs/old name.md": "# Notes\n" + "line\n" * 30,
    "obsolete.txt": "remove me\n",
    "logo.png": PNG,
    "run.sh": "echo run\n",
    "other.txt": "untouched\n",
    "settings.ini": "[a]\n",
}


@dataclass
class Champion:
    """A local repository at its base commit with the champion's changes staged, and their patch."""

    path: Path
    base: str
    patch: bytes
    tree: str  # what `git write-tree` makes of the staged changes: the tree GitHub must end up with
    images: dict[str, bytes] = field(default_factory=dict)  # the post-images, as CollectArtifacts stores them


def every_kind_of_change(path: Path) -> Champion:
    """Modified, added (text and binary), deleted, renamed-and-edited, binary-edited, mode-changed,
    and a file replaced by a symlink."""
    make_repo(path, BASE_FILES)
    base = git(path, "rev-parse", "HEAD")
    (path / "calc.py").write_text("def mean(values):\n    return sum(values) / len(values)\n")
    (path / "CHANGELOG.md").write_text("- mean() keeps the fraction\n")
    (path / "icon.bin").write_bytes(bytes(range(255, -1, -1)) * 3)
    (path / "obsolete.txt").unlink()
    (path / "docs" / "old name.md").rename(path / "docs" / "new name.md")
    with (path / "docs" / "new name.md").open("a") as notes:
        notes.write("added\n")
    (path / "logo.png").write_bytes(PNG[:1000] + b"edited" + PNG[1006:])
    (path / "run.sh").chmod((path / "run.sh").stat().st_mode | stat.S_IXUSR)
    (path / "settings.ini").unlink()
    (path / "settings.ini").symlink_to("other.txt")  # a type change: a deletion and a creation in the diff
    return stage(path, base)


def stage(path: Path, base: str) -> Champion:
    git(path, "add", "-A")
    patch = git_bytes(path, "diff", "--cached", "--binary", "--full-index", base)
    return Champion(path, base, patch, git(path, "write-tree"), post_images(path, patch))


def post_images(path: Path, patch: bytes) -> dict[str, bytes]:
    """What CollectArtifacts stores: each new blob the patch names, read from git's object database."""
    return {blob: git_bytes(path, "cat-file", "blob", blob) for blob in needed_blobs(parse_patch(patch))}


def git_bytes(repo: Path, *args: str) -> bytes:
    import subprocess

    from tests.support.runtime import GIT_ENV

    return subprocess.run(["git", *args], cwd=repo, env=os.environ | GIT_ENV, capture_output=True, check=True).stdout


def seeded(fake: FakeGitHub, champion: Champion, full_name: str = REPO) -> None:
    """The fake repository holds the local one's commits (the same ids), an issue #12, and a token."""
    owner, name = full_name.split("/")
    fake.add_repo(owner, name, source=champion.path).issues[12] = "mean() drops the fraction"
    fake.add_token(TOKEN)


@dataclass
class Reports:
    """Views of a finished solve with one champion run, as PublishService would build them."""

    solve_id: UUID = field(default_factory=uuid4)
    run_id: UUID = field(default_factory=uuid4)

    def report(self, champion: Champion, *, options: PublishOptions | None = None, ref: str | None = "main",
               base_commit: str | None = None) -> SolveReport:  # fmt: skip
        counted = patch_stats(champion.patch)
        stats = PatchStats(files=counted.files, added=counted.added, removed=counted.removed)
        run = run_view(self.solve_id, self.run_id, base_commit or champion.base, stats)
        solve = solve_view(self.solve_id, [run], options or PublishOptions(comment=True, pull_request=True), ref)
        return SolveReport(solve, run, champion.patch, api_url=API_URL, images=champion.images)


def run_view(solve_id: UUID, run_id: UUID, base_commit: str, stats: PatchStats) -> RunView:
    now = datetime.now(UTC)
    return RunView(
        id=run_id, solve_id=solve_id, index=0, model="replay:/tmp/fix.yaml", agent_config="default",
        status=RunStatus.SUCCEEDED, exit_status="Submitted", attempt=0, retryable=False, sandbox_id=None,
        base_commit=base_commit, steps=3, cost_usd=0.0, tokens=0, patch_stats=stats,
        tests=TestResult(command="python3 test_calc.py", exit_code=0, passed=True, duration_s=0.1),
        error=None, artifacts={}, heartbeat_at=None, created_at=now, started_at=now, finished_at=now,
    )  # fmt: skip


def solve_view(solve_id: UUID, runs: list[RunView], options: PublishOptions, ref: str | None) -> SolveView:
    now = datetime.now(UTC)
    return SolveView(
        id=solve_id, owner="tester", status=SolveStatus.SUCCEEDED, repo_url="/somewhere/calc", ref=ref,
        issue=IssueSpec(title="mean() drops the fraction", body="", url=ISSUE_URL), models=[runs[0].model],
        attempts_per_model=1, max_parallel=1, agent_config=None, limits=Limits(), setup_command=None,
        test_command="python3 test_calc.py", callback_url=None, external_ref=None, execution_ref=None,
        champion_run_id=runs[0].id, error=None, created_at=now, updated_at=now, started_at=now,
        finished_at=now, runs=runs, publish=options,
    )  # fmt: skip


def publisher(
    fake: FakeGitHub, sleeps: list[float], *, token: str = TOKEN, max_wait_s: float = 10.0
) -> GitHubPublisher:
    retry = RetryPolicy(attempts=4, max_wait_s=max_wait_s, backoff_s=1.0)
    return GitHubPublisher(fake.url, StaticToken(token), policy=retry, sleep=sleeps.append)


CALC_BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
CALC_TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5\n"


def calculator_on_github(tmp_path: Path, fake: FakeGitHub) -> Path:
    """A local repository with a bug, the same repository on the fake GitHub (issue #12), and a token."""
    path = make_repo(tmp_path / "calc", {"calc.py": CALC_BUGGY, "test_calc.py": CALC_TESTS})
    fake.add_repo("org", "calc", source=path).issues[12] = "mean() drops the fraction"
    fake.add_token(TOKEN)
    return path
