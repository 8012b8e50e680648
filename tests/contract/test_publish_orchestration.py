"""PublishResults in both orchestrations: the real ASL under moto's Step Functions interpreter (FinishSolve
→ ShouldPublish → PublishResults) and the local orchestrator, against the loopback fake GitHub.
Publishing happens only when asked for, and whatever goes wrong in it, the execution still succeeds
and the solve keeps its result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from solver_core.status import EventKind, SolveStatus
from solver_core.workflow.champion import SolveFlow
from tests.contract.test_orchestration import FIX, World, final_state, make_world
from tests.fakes.github import FakeGitHub
from tests.support.aws import use_fake_credentials
from tests.support.publishing import ISSUE_URL, REPO, TOKEN, calculator_on_github
from tests.support.runtime import start_solve, write_replay

pytestmark = pytest.mark.contract


@pytest.fixture(params=["stepfunctions", "local"])
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_fake_credentials(monkeypatch)
    return str(request.param)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub().serve() as served:
        yield served


@pytest.fixture
def repo(tmp_path: Path, fake: FakeGitHub) -> Path:
    path = calculator_on_github(tmp_path, fake)
    fake.add_token("read-only", write=False)
    return path


def solve(world: World, repo: Path, tmp_path: Path, **request: Any) -> Any:
    fix = write_replay(tmp_path / "fix.yaml", *FIX)
    issue = {"title": "mean() drops the fraction", "url": ISSUE_URL}
    world.container.allowlist.add("tester", "org/calc")  # publishing goes only where the owner may
    return start_solve(world.container, repo_url=str(repo), models=[fix], test_command="python3 test_calc.py",
                       issue=issue, **request)  # fmt: skip


def publishes(world: World) -> int:
    if world.harness is not None:
        return world.invocations("publish")
    return 0


def test_publish_runs_after_finish_only_when_asked(
    kind: str, tmp_path: Path, postgres_url: str, fake: FakeGitHub, repo: Path
) -> None:
    with make_world(kind, tmp_path, postgres_url, github_api_url=fake.url, github_token=TOKEN) as world:
        plain = world.run(solve(world, repo, tmp_path))
        assert plain.status is SolveStatus.SUCCEEDED
        assert plain.publication is None
        assert publishes(world) == 0
        assert fake.repos[REPO].pulls == {}

        done = world.run(solve(world, repo, tmp_path, publish={"comment": True, "pull_request": True}))
        assert final_state(world.container, done.id)["status"] == "succeeded"
        assert done.publication is not None
        assert done.publication.errors == []
        assert done.publication.pull_request is not None
        assert done.publication.comment is not None
        assert len(fake.repos[REPO].pulls) == 1
        assert len(fake.repos[REPO].comments[12]) == 1
        if world.harness is not None:
            assert publishes(world) == 1
            assert world.outcome["status"] == "SUCCEEDED"


def test_a_publishing_error_is_recorded_and_the_execution_still_succeeds(
    kind: str, tmp_path: Path, postgres_url: str, fake: FakeGitHub, repo: Path
) -> None:
    with make_world(kind, tmp_path, postgres_url, github_api_url=fake.url, github_token="read-only") as world:
        done = world.run(solve(world, repo, tmp_path, publish={"pull_request": True}))
        assert final_state(world.container, done.id)["status"] == "succeeded"
        assert done.champion_run_id is not None
        assert done.publication is not None
        assert "403" in done.publication.errors[0]
        events = world.container.events.read("tester", done.id, limit=500)
        assert [e.data["target"] for e in events if e.kind is EventKind.ERROR and e.data] == ["pull request"]
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"


@pytest.fixture
def crashing_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: SolveFlow, solve_id: Any) -> None:
        raise RuntimeError("the publish step died")

    monkeypatch.setattr(SolveFlow, "publish", crash)


@pytest.mark.usefixtures("crashing_publish")
def test_a_crashing_publish_step_still_ends_the_execution_successfully(
    kind: str, tmp_path: Path, postgres_url: str, fake: FakeGitHub, repo: Path
) -> None:
    with make_world(kind, tmp_path, postgres_url, github_api_url=fake.url, github_token=TOKEN) as world:
        done = world.run(solve(world, repo, tmp_path, publish={"comment": True}))
        assert final_state(world.container, done.id)["status"] == "succeeded"
        assert done.champion_run_id is not None
        assert fake.repos[REPO].comments == {}
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"  # PublishResults' catch-all went to SolveDone
            assert publishes(world) == 1
