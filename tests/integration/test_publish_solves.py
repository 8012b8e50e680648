"""Publishing as part of a solve: the local orchestrator runs a replayed fix on a local repository
whose commits the fake GitHub also has (the same ids, so the run's base commit is GitHub's), then
PublishResults comments on the issue and opens the draft pull request. Running it again updates
both; every failure mode leaves the solve's result as it was, and publishing later works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from solver_core.artifacts import keys
from solver_core.models import SolveView
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.sandbox.local import LocalSandboxBackend
from solver_core.status import EventKind, SolveStatus
from solver_core.wiring import Container
from tests.fakes.github import FakeGitHub
from tests.support.publishing import CALC_BUGGY, ISSUE_URL, REPO, TOKEN, calculator_on_github
from tests.support.runtime import runtime, start_solve, write_replay

pytestmark = pytest.mark.integration

FIX = ("sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
PUBLISH = {"comment": True, "pull_request": True}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub().serve() as served:
        yield served


@pytest.fixture
def repo(tmp_path: Path, fake: FakeGitHub) -> Path:
    return calculator_on_github(tmp_path, fake)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    shutil.copy(sqlite_template, tmp_path / "solver.db")
    return f"sqlite:///{tmp_path / 'solver.db'}"


def world(tmp_path: Path, database_url: str, fake: FakeGitHub, **settings: Any) -> tuple[Container, LocalOrchestrator]:
    values: dict[str, Any] = {"github_api_url": fake.url, "github_token": TOKEN, "publish_attempts": 2}
    container = runtime(tmp_path, database_url, **(values | settings))
    container.allowlist.add("tester", "org/calc")  # publishing goes only where the owner may
    pipeline = container.pipeline(LocalSandboxBackend(tmp_path / "sandboxes", isolation="none"))
    return container, LocalOrchestrator(pipeline, container.flow(), retry_time_scale=0.01)


def solve_with_publish(container: Container, repo: Path, tmp_path: Path) -> SolveView:
    return start_solve(
        container, repo_url=str(repo), models=[write_replay(tmp_path / "fix.yaml", *FIX)],
        test_command="python3 test_calc.py", issue={"title": "mean() drops the fraction", "url": ISSUE_URL},
        publish=PUBLISH,
    )  # fmt: skip


def result_of(container: Container, solve: SolveView) -> tuple[Any, ...]:
    """What publishing must never change: the status, the champion and its patch, the runs."""
    now = container.runs.solve(solve.id)
    patch = container.artifacts.get(keys.champion_patch(solve.id)) if now.champion_run_id else None
    return now.status, now.champion_run_id, patch, [(r.status, r.tests) for r in now.runs]


def errors(container: Container, solve: SolveView) -> list[str]:
    return [e.message for e in container.events.read("tester", solve.id, limit=500) if e.kind is EventKind.ERROR]


def test_a_solve_publishes_its_comment_and_pull_request_and_again_updates_them(
    tmp_path: Path, database_url: str, fake: FakeGitHub, repo: Path
) -> None:
    container, orchestrator = world(tmp_path, database_url, fake)
    solve = solve_with_publish(container, repo, tmp_path)
    done = orchestrator.execute(solve.id)

    assert done.status is SolveStatus.SUCCEEDED
    assert done.publication is not None
    assert done.publication.errors == []
    assert done.publication.comment
    assert done.publication.pull_request
    pull = fake.repos[REPO].pulls[done.publication.pull_request.number]
    (comment,) = fake.repos[REPO].comments[12]
    assert (pull["draft"], pull["base"]["ref"], comment["id"]) == (True, "main", done.publication.comment.id)
    head = fake.repos[REPO].commit_or_404(done.publication.pull_request.head_sha)
    assert head.parents == [done.runs[0].base_commit] == [fake.repos[REPO].refs["main"]]
    assert fake.files(REPO, head.sha)["calc.py"] == CALC_BUGGY.replace("//", "/").encode()
    assert f"Draft pull request: [#{pull['number']}]" in comment["body"]
    events = container.events.read("tester", solve.id, limit=500)
    assert any(e.message.startswith("published: comment https://github.com/org/calc/issues/12#") for e in events)

    again = orchestrator.execute(solve.id)  # running it again: the same comment and pull request, updated
    assert again.status is SolveStatus.SUCCEEDED
    assert again.publication is not None
    assert again.publication.published_at != done.publication.published_at
    assert (again.publication.comment, again.publication.pull_request) == (
        done.publication.comment, done.publication.pull_request,
    )  # fmt: skip
    assert len(fake.repos[REPO].comments[12]) == 1
    assert len(fake.repos[REPO].pulls) == 1
    assert errors(container, solve) == []
    container.close()


@pytest.mark.parametrize("failure", ["permission denied", "rate limited", "server error", "no credentials"])
def test_no_publishing_failure_touches_the_solves_result(
    failure: str, tmp_path: Path, sqlite_url: str, fake: FakeGitHub, repo: Path
) -> None:
    settings: dict[str, Any] = {}
    if failure == "permission denied":
        fake.add_token("read-only", write=False)
        settings["github_token"] = "read-only"
    elif failure == "rate limited":
        fake.fail("POST", "", 429, headers={"Retry-After": "3600"}, message="slow down", times=2)
    elif failure == "server error":
        fake.fail("GET", "", 502, times=4)
    else:
        settings["github_token"] = None
    container, orchestrator = world(tmp_path, sqlite_url, fake, **settings)
    solve = solve_with_publish(container, repo, tmp_path)
    done = orchestrator.execute(solve.id)

    status, champion, patch, runs = result_of(container, solve)
    assert status is SolveStatus.SUCCEEDED
    assert champion is not None
    assert patch
    assert runs[0][1].passed
    assert done.publication is not None
    assert done.publication.errors
    assert errors(container, solve), "each failure is an error event on the solve"
    assert fake.repos[REPO].pulls == {}
    assert fake.repos[REPO].comments.get(12, []) == []

    fake.failures.clear()
    fixed, _ = world(tmp_path, sqlite_url, fake)
    published = fixed.flow().publish(solve.id)  # publishing later, once the cause is gone
    assert published is not None
    assert published.errors == []
    assert published.pull_request is not None
    assert result_of(fixed, solve) == (status, champion, patch, runs)
    container.close()
    fixed.close()


def test_retry_after_is_honoured_within_a_solve(tmp_path: Path, sqlite_url: str, fake: FakeGitHub, repo: Path) -> None:
    fake.fail("POST", r"/issues/12/comments$", 429, headers={"Retry-After": "1"}, message="slow down")
    container, orchestrator = world(tmp_path, sqlite_url, fake)
    done = orchestrator.execute(solve_with_publish(container, repo, tmp_path).id)
    assert done.publication is not None
    assert done.publication.errors == []
    assert done.publication.comment
    assert fake.calls("POST", r"/issues/12/comments$") == 2
    container.close()


def test_a_failed_solve_gets_a_comment_and_no_pull_request(
    tmp_path: Path, sqlite_url: str, fake: FakeGitHub, repo: Path
) -> None:
    container, orchestrator = world(tmp_path, sqlite_url, fake)
    nothing = write_replay(tmp_path / "nothing.yaml", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
    solve = start_solve(container, repo_url=str(repo), models=[nothing], publish=PUBLISH,
                        issue={"title": "mean() drops the fraction", "url": ISSUE_URL})  # fmt: skip
    done = orchestrator.execute(solve.id)
    assert done.status is SolveStatus.FAILED
    assert done.publication is not None
    assert done.publication.pull_request is None
    assert done.publication.comment
    assert "### Solver: no patch for this issue (failed)" in fake.repos[REPO].comments[12][0]["body"]
    assert fake.repos[REPO].pulls == {}
    container.close()


def test_the_command_line_publishes_and_publishes_again(tmp_path: Path, fake: FakeGitHub, repo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")} | {
        "SOLVER_HOME": str(tmp_path / "home"), "SOLVER_SANDBOX_DIR": str(tmp_path / "sandboxes"),
        "SOLVER_SANDBOX_ISOLATION": "none", "SOLVER_GITHUB_API_URL": fake.url, "SOLVER_GITHUB_TOKEN": TOKEN,
        "SOLVER_ALLOWED_HTTP_HOSTS": "127.0.0.1",
    }  # fmt: skip
    cli = [sys.executable, "-m", "solver_core.cli"]
    solve = subprocess.run(
        [*cli, "solve", str(repo), "--model", write_replay(tmp_path / "fix.yaml", *FIX), "--issue", "mean() drops",
         "--issue-url", ISSUE_URL, "--publish-comment", "--publish-pr", "--branch-prefix", "bot/", "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert solve.returncode == 0, solve.stderr
    import json

    out = json.loads(solve.stdout)
    assert out["publish"] == {"comment": True, "pull_request": True, "branch_prefix": "bot/"}
    assert out["publication"]["pull_request"]["branch"] == f"bot/{out['id'][:8]}"
    again = subprocess.run(
        [*cli, "publish", out["id"]], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "draft pull request: https://github.com/org/calc/pull/" in again.stderr
    assert len(fake.repos[REPO].comments[12]) == 1
    assert len(fake.repos[REPO].pulls) == 1
