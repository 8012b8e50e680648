"""The deployment's credentials serve only their owners: per-owner allowlists (the table, the
`solver owners` command), private clones, publishing, workflow changes; and the per-owner limits
(fair share of the sandbox cap, daily cost budget). On both databases."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import update

from solver_core.api import build_app
from solver_core.db.schema import RunRow, SolveRow, utcnow
from solver_core.errors import TooManyRequests, ValidationFailed
from solver_core.models import SolveRequest
from solver_core.orchestrators.local import LocalOrchestrator, run_to_end
from solver_core.rules import RequestPolicy
from solver_core.sandbox.local import LocalSandboxBackend
from solver_core.services.solves import CostBudget
from solver_core.status import RunStatus, SolveStatus
from solver_core.wiring import Container
from tests.fakes.git_server import GitHTTPServer
from tests.fakes.github import FakeGitHub
from tests.integration.test_publish_auth import rsa_pair
from tests.support.api import ALICE, LambdaContextStub, api_world, rest_event, solve_body
from tests.support.api_scenarios import finish_solve
from tests.support.publishing import ISSUE_URL, REPO, TOKEN, calculator_on_github
from tests.support.runtime import make_repo, runtime, start_solve, write_replay

pytestmark = pytest.mark.integration

GIT_TOKEN = "ghp_tenantToken1234567890abcdefABCDEF"
FIX = ("sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")


@pytest.fixture
def container(tmp_path: Path, database_url: str) -> Iterator[Container]:
    built = runtime(tmp_path, database_url)
    yield built
    built.close()


def test_allowlist_entries_cover_organisations_and_repositories(container: Container) -> None:
    allowlist = container.allowlist
    assert allowlist.add("alice", "Org").target == "github.com/org"
    allowlist.add("alice", "https://github.com/org/infra.git", allow_workflows=True)
    allowlist.add("alice", "gitlab.com/group/sub")

    assert allowlist.grant("alice", "https://github.com/ORG/App.git").target == "github.com/org"  # type: ignore[union-attr]
    infra = allowlist.grant("alice", "https://github.com/org/infra")
    assert infra is not None
    assert infra.allow_workflows
    assert allowlist.grant("alice", "https://gitlab.com/group/sub/deeper/project") is not None
    assert allowlist.grant("alice", "https://github.com/orgx/app") is None  # a prefix is not a segment
    assert allowlist.grant("alice", "https://gitlab.com/org/app") is None  # another host
    assert allowlist.grant("bob", "https://github.com/org/app") is None  # another owner
    assert allowlist.grant("alice", "/home/alice/org/app") is None  # a local path names no repository

    allowlist.add("alice", "org", allow_workflows=True)  # adding again sets the flag
    assert [(g.target, g.allow_workflows) for g in allowlist.entries("alice")] == [
        ("github.com/org", True), ("github.com/org/infra", True), ("gitlab.com/group/sub", False),
    ]  # fmt: skip
    assert allowlist.remove("alice", "github.com/ORG") is True
    assert allowlist.remove("alice", "org") is False
    with pytest.raises(ValidationFailed, match="not an allowlist target"):
        allowlist.add("alice", "org/../other")


def test_the_owners_command_lists_adds_and_removes(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")}
    env |= {"SOLVER_DATABASE_URL": database_url, "SOLVER_HOME": str(tmp_path / "home")}

    def solver(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "solver_core.cli", "owners", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    added = solver("add", "arn:aws:sts::123456789012:assumed-role/Team", "org/calc", "--allow-workflows")
    assert added.returncode == 0, added.stderr
    listed = solver("list", "--json")
    assert '"target": "github.com/org/calc"' in listed.stdout
    assert '"allow_workflows": true' in listed.stdout
    assert solver("add", "someone", "not a target").returncode == 2
    assert solver("remove", "arn:aws:sts::123456789012:assumed-role/Team", "org/calc").returncode == 0
    assert solver("remove", "arn:aws:sts::123456789012:assumed-role/Team", "org/calc").returncode == 1
    assert "no allowlist entries" in solver("list").stderr


def test_a_private_clone_uses_the_token_only_for_an_allowlisted_owner(tmp_path: Path, database_url: str) -> None:
    repo = make_repo(tmp_path / "calc", {"calc.py": "x = 1 // 2\n"})
    with GitHTTPServer(tmp_path / "git", token=GIT_TOKEN).start() as server:
        url = server.add_repo("org/calc", repo)
        container = runtime(tmp_path, database_url, git_tokens={"127.0.0.1": GIT_TOKEN})
        pipeline = container.pipeline(LocalSandboxBackend(tmp_path / "sandboxes", isolation="none"))
        model = write_replay(tmp_path / "r.yaml", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")

        refused = start_solve(container, repo_url=url, models=[model])
        run = run_to_end(pipeline, refused.runs[0].id)
        assert run.status is RunStatus.FAILED
        assert "not on the owner's allowlist" in (run.error or "")
        assert server.auth_headers_seen == []  # the token was never offered for this owner's solve

        container.allowlist.add("tester", url)
        allowed = start_solve(container, repo_url=url, models=[model])
        run = run_to_end(pipeline, allowed.runs[0].id)
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert server.auth_headers_seen  # now the clone authenticated
        container.close()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub().serve() as served:
        yield served


def _publishing_world(tmp_path: Path, database_url: str, **settings: Any) -> tuple[Container, LocalOrchestrator]:
    values: dict[str, Any] = {"publish_attempts": 2} | settings
    container = runtime(tmp_path, database_url, **values)
    pipeline = container.pipeline(LocalSandboxBackend(tmp_path / "sandboxes", isolation="none"))
    return container, LocalOrchestrator(pipeline, container.flow(), retry_time_scale=0.01)


def test_publishing_outside_the_allowlist_never_touches_github(
    tmp_path: Path, database_url: str, fake: FakeGitHub
) -> None:
    repo = calculator_on_github(tmp_path, fake)
    private, public = rsa_pair()
    fake.add_app(4242, public, installation_id=77, repos={REPO})
    container, orchestrator = _publishing_world(
        tmp_path, database_url, github_api_url=fake.url, github_app_id=4242, github_app_private_key=private
    )
    solve = start_solve(
        container, repo_url=str(repo), models=[write_replay(tmp_path / "fix.yaml", *FIX)],
        test_command="python3 test_calc.py", issue={"title": "mean() drops", "url": ISSUE_URL},
        publish={"comment": True, "pull_request": True},
    )  # fmt: skip
    done = orchestrator.execute(solve.id)
    assert done.status is SolveStatus.SUCCEEDED
    assert done.publication is not None
    assert len(done.publication.errors) == 2
    assert all("not on its allowlist" in e for e in done.publication.errors)
    assert fake.requests == []  # not even the App's installation lookup

    container.allowlist.add("tester", "org/calc")
    published = container.flow().publish(solve.id)
    assert published is not None
    assert published.errors == []
    assert fake.calls("GET", r"/repos/org/calc/installation$") == 1
    (comment,) = fake.repos[REPO].comments[12]
    # An issue thread can be public: no artifact links, only how to fetch them with credentials.
    assert "trajectory.json" not in comment["body"]
    assert "log.txt" not in comment["body"]
    assert f"`solver status {solve.id}`" in comment["body"]
    container.close()


def test_a_pull_request_changing_workflows_needs_the_entrys_permission(
    tmp_path: Path, database_url: str, fake: FakeGitHub
) -> None:
    repo = calculator_on_github(tmp_path, fake)
    workflow = "mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml"
    container, orchestrator = _publishing_world(tmp_path, database_url, github_api_url=fake.url, github_token=TOKEN)
    container.allowlist.add("tester", "org/calc")
    solve = start_solve(
        container, repo_url=str(repo), models=[write_replay(tmp_path / "wf.yaml", workflow, *FIX)],
        test_command="python3 test_calc.py", issue={"title": "mean() drops", "url": ISSUE_URL},
        publish={"pull_request": True},
    )  # fmt: skip
    done = orchestrator.execute(solve.id)
    assert done.status is SolveStatus.SUCCEEDED
    assert done.publication is not None
    (error,) = done.publication.errors
    assert "changes GitHub Actions workflows (.github/workflows/ci.yml)" in error
    assert fake.repos[REPO].pulls == {}

    container.allowlist.add("tester", "org/calc", allow_workflows=True)
    published = container.flow().publish(solve.id)
    assert published is not None
    assert published.errors == []
    assert published.pull_request is not None
    container.close()


def test_one_owner_cannot_hold_every_sandbox_slot(tmp_path: Path, database_url: str) -> None:
    container = runtime(tmp_path, database_url, max_live_sandboxes=4, owner_sandbox_share=0.5)
    policy = RequestPolicy.from_settings(container.settings)
    runs = container.runs
    share = container.settings.max_live_sandboxes_per_owner
    assert share == 2

    def solve_of(owner: str, count: int) -> list[Any]:
        request = SolveRequest.model_validate(
            {"repo_url": str(tmp_path), "issue": {"title": "t"}, "models": ["replay:/x"], "attempts_per_model": count},
            context=policy,
        )
        return container.solves.start(owner, request).solve.runs

    (tmp_path / ".git").mkdir(exist_ok=True)
    greedy, other = solve_of("greedy", 4), solve_of("other", 1)
    claimed = [runs.claim_sandbox_slot(r.id, 4, share) for r in greedy]
    assert claimed == [True, True, False, False]  # the owner's share, not the whole cap
    assert runs.claim_sandbox_slot(other[0].id, 4, share) is True  # another owner still gets a slot
    container.close()


def test_concurrent_launches_of_one_owner_never_exceed_its_share(tmp_path: Path, database_url: str) -> None:
    container = runtime(tmp_path, database_url, max_live_sandboxes=10, owner_sandbox_share=0.3, db_pool_size=12)
    (tmp_path / ".git").mkdir(exist_ok=True)
    request = SolveRequest.model_validate(
        {"repo_url": str(tmp_path), "issue": {"title": "t"}, "models": ["replay:/x"], "attempts_per_model": 8},
        context=RequestPolicy.from_settings(container.settings),
    )
    runs = container.solves.start("greedy", request).solve.runs
    start = threading.Barrier(len(runs))

    def claim(run_id: Any) -> bool:
        start.wait()
        return container.runs.claim_sandbox_slot(run_id, 10, container.settings.max_live_sandboxes_per_owner)

    with ThreadPoolExecutor(len(runs)) as pool:
        claimed = list(pool.map(claim, [r.id for r in runs]))
    assert claimed.count(True) == 3  # counted and claimed under the global cap's lock: no overshoot
    container.close()


def test_the_daily_cost_budget_refuses_new_solves_until_the_window_moves(tmp_path: Path, database_url: str) -> None:
    container = runtime(tmp_path, database_url)
    (tmp_path / ".git").mkdir(exist_ok=True)
    policy = RequestPolicy.from_settings(container.settings)
    request = SolveRequest.model_validate(
        {"repo_url": str(tmp_path), "issue": {"title": "t"}, "models": ["replay:/x"]}, context=policy
    )
    budget = CostBudget(daily_usd=5.0)
    first = container.solves.start("alice", request, budget=budget).solve
    second = container.solves.start("alice", request, budget=budget).solve
    with container.sessions.begin() as session:  # what the runs spent so far
        session.execute(update(RunRow).where(RunRow.solve_id == first.id).values(cost_usd=3.0))
        session.execute(update(RunRow).where(RunRow.solve_id == second.id).values(cost_usd=2.5))
        session.execute(
            update(SolveRow).where(SolveRow.id == first.id).values(created_at=utcnow() - timedelta(hours=20))
        )

    with pytest.raises(TooManyRequests, match=r"daily cost budget of \$5.00 is spent \(\$5.50") as refused:
        container.solves.start("alice", request, budget=budget)
    # Free again once the first solve's $3 leaves the 24-hour window: in about 4 hours.
    assert 4 * 3600 - 60 <= refused.value.retry_after_s <= 4 * 3600
    container.solves.start("bob", request, budget=budget)  # another owner has its own budget

    with container.sessions.begin() as session:
        session.execute(
            update(SolveRow).where(SolveRow.id == first.id).values(created_at=utcnow() - timedelta(hours=25))
        )
    container.solves.start("alice", request, budget=budget)  # $2.50 in the window now
    container.close()


def test_publishing_again_after_the_repository_left_the_allowlist_is_a_403(tmp_path: Path, database_url: str) -> None:
    """POST /solves/{id}/publish checks the allowlist as POST /solves does: a refusal is the answer,
    not a 202 followed by an error in `publication`."""
    published: list[Any] = []
    with api_world(database_url, tmp_path / "home") as world:
        deps = dataclasses.replace(world.deps, publish=published.append)
        app = build_app(deps=lambda: deps)

        def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            answer = app.resolve(rest_event("POST", path, body=body, owner=ALICE), LambdaContextStub())  # type: ignore[arg-type]
            return int(answer["statusCode"]), json.loads(answer["body"])

        deps.allowlist.add(ALICE, "org")
        body = solve_body(
            repo_url="https://github.com/org/calc", issue={"title": "mean", "url": "https://github.com/org/calc/issues/12"},
            publish={"comment": True},
        )  # fmt: skip
        status, created = post("/solves", body)
        assert status == 202, created
        finish_solve(world, UUID(created["id"]))
        deps.allowlist.remove(ALICE, "org")
        status, refused = post(f"/solves/{created['id']}/publish", {})
        assert status == 403, refused
        assert refused["error"]["code"] == "not_on_allowlist"
        assert published == []
        deps.allowlist.add(ALICE, "org/calc")
        status, _ = post(f"/solves/{created['id']}/publish", {})
        assert status == 202
        assert [str(s) for s in published] == [created["id"]]
