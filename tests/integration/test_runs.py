"""One attempt end to end through the run steps, on every sandbox backend."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.agent.replay import load_replay_actions
from solver_core.artifacts import keys
from solver_core.gitdiff.images import PostImages, blob_sha
from solver_core.models import SolveView
from solver_core.orchestrators.local import run_to_end
from solver_core.ports import SandboxBackend
from solver_core.status import EventKind, RunStatus, SolveStatus
from solver_core.wiring import Container
from solver_core.workflow.agent_step import Budget
from solver_core.workflow.champion import SolveFlow
from solver_core.workflow.pipeline import RunPipeline
from tests.fakes.e2b import FakeE2BService
from tests.fakes.git_server import GitHTTPServer
from tests.support.runtime import BACKENDS, make_repo, runtime, sandbox_backend, start_solve, write_replay

pytestmark = pytest.mark.integration

BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5, mean([1, 2])\nprint('ok')\n"
FIX = "sed -i 's|//|/|' calc.py"
TOKEN = "ghp_privateToken1234567890abcdefABCDEF"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    built = runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    from solver_core.db.migrate import upgrade

    upgrade(built.engine)
    yield built
    built.close()


@pytest.fixture(params=[*BACKENDS, "docker"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SandboxBackend, FakeE2BService | None]]:
    with sandbox_backend(request.param, tmp_path) as pair:
        yield pair


def finish(container: Container, solve: SolveView) -> SolveView:
    return SolveFlow(container.runs, container.events, container.artifacts).run_and_finish(solve.id)


def test_a_replayed_fix_on_a_real_repository(
    container: Container, backend: tuple[SandboxBackend, FakeE2BService | None], repo: Path, tmp_path: Path
) -> None:
    sandboxes, service = backend
    model = write_replay(
        tmp_path / "fix.yaml", "cat calc.py", FIX, "python3 test_calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    )
    solve = start_solve(container, repo_url=str(repo), models=[model], test_command="python3 test_calc.py")
    run = run_to_end(container.pipeline(sandboxes), solve.runs[0].id)

    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.exit_status == "Submitted"
    assert run.steps == 4
    assert run.tests is not None
    assert run.tests.passed
    patch = container.artifacts.get(run.artifacts["patch"]).decode()
    assert "-    return sum(values) // len(values)" in patch
    assert "+    return sum(values) / len(values)" in patch
    assert run.patch_stats is not None
    assert (run.patch_stats.files, run.patch_stats.added) == (1, 1)
    assert "ok" in container.artifacts.get(run.artifacts["tests"]).decode()
    # CollectArtifacts stored the changed file's post-image, what a pull request is made of.
    manifest = PostImages.model_validate_json(container.artifacts.get(keys.post_images(solve.id, run.id)))
    assert (manifest.missing, [f.path for f in manifest.files]) == (None, ["calc.py"])
    image = container.artifacts.get(keys.post_image(solve.id, run.id, manifest.files[0].blob))
    assert b"return sum(values) / len(values)" in image
    assert blob_sha(image) == manifest.files[0].blob

    trajectory = json.loads(container.artifacts.get(run.artifacts["trajectory"]))
    assert trajectory["trajectory_format"] == "mini-swe-agent-1.1"
    assert trajectory["info"]["exit_status"] == "Submitted"
    saved = tmp_path / "saved.traj.json"
    saved.write_bytes(container.artifacts.get(run.artifacts["trajectory"]))
    assert [a.command for a in load_replay_actions(saved)][:2] == ["cat calc.py", FIX]  # loadable by mini's tools
    log = container.artifacts.get(run.artifacts["log"]).decode()
    assert "step 2: sed -i" in log
    assert "repository preparation" in log

    events = container.events.read("tester", solve.id, limit=1000)
    steps = [e for e in events if e.kind is EventKind.STEP]
    assert [e.data["step"] for e in steps if e.data] == [1, 2, 3, 4]
    assert steps[1].data
    assert steps[1].data["actions"][0]["command"] == FIX
    assert sandboxes.list({"run_id": str(run.id)}) == []  # released
    if service is not None:
        assert service.live_sandbox_ids() == []

    final = finish(container, solve)
    assert final.status is SolveStatus.SUCCEEDED
    assert final.champion_run_id == run.id
    assert container.artifacts.get(keys.champion_patch(solve.id)).decode() == patch


def test_a_run_that_changes_nothing_ends_without_a_patch(container: Container, repo: Path, tmp_path: Path) -> None:
    model = write_replay(tmp_path / "look.yaml", "ls", "cat calc.py")
    solve = start_solve(container, repo_url=str(repo), models=[model], test_command="python3 test_calc.py")
    with sandbox_backend("local-plain", tmp_path) as (sandboxes, _):
        run = run_to_end(container.pipeline(sandboxes), solve.runs[0].id)
    assert run.status is RunStatus.SUCCEEDED
    assert run.exit_status == "ReplayExhausted"
    assert run.patch_stats is not None
    assert run.patch_stats.files == 0
    assert run.tests is None  # nothing to verify
    final = finish(container, solve)
    assert final.status is SolveStatus.FAILED
    assert "no run produced a patch" in (final.error or "")


def test_an_agent_resumes_in_a_fresh_pipeline_from_its_checkpoint(
    container: Container, repo: Path, tmp_path: Path
) -> None:
    model = write_replay(tmp_path / "fix.yaml", "cat calc.py", FIX, "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
    solve = start_solve(container, repo_url=str(repo), models=[model])
    run_id = solve.runs[0].id
    with sandbox_backend("local-plain", tmp_path) as (sandboxes, _):
        first = container.pipeline(sandboxes)
        first.steps.launch(run_id)
        first.steps.prepare(run_id)
        assert not first.agent.run(run_id, Budget(max_steps=2))
        assert container.runs.get(run_id).steps == 2
        assert container.artifacts.exists(keys.partial_diff(solve.id, run_id))
        fresh = container.pipeline(sandboxes)  # new agent, new model, same checkpoint
        assert fresh.agent.run(run_id, Budget(max_steps=5))
        fresh.collect(run_id)
        fresh.steps.verify(run_id)
        fresh.steps.release(run_id)
    run = container.runs.get(run_id)
    assert (run.status, run.exit_status, run.steps) == (RunStatus.SUCCEEDED, "Submitted", 3)
    trajectory = json.loads(container.artifacts.get(run.artifacts["trajectory"]))
    assert [m["role"] for m in trajectory["messages"]].count("assistant") == 3


def test_a_time_budget_stops_between_steps(container: Container, repo: Path, tmp_path: Path) -> None:
    model = write_replay(
        tmp_path / "slow.yaml", "sleep 1", "sleep 1", "sleep 1", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    )
    solve = start_solve(container, repo_url=str(repo), models=[model])
    run_id = solve.runs[0].id
    with sandbox_backend("local-plain", tmp_path) as (sandboxes, _):
        pipeline = container.pipeline(sandboxes)
        pipeline.steps.launch(run_id)
        pipeline.steps.prepare(run_id)
        assert not pipeline.agent.run(run_id, Budget(deadline=time.monotonic() + 1.5))
        taken = container.runs.get(run_id).steps
        assert 1 <= taken <= 2
        assert pipeline.agent.run(run_id, Budget())
        pipeline.steps.release(run_id)
    assert container.runs.get(run_id).steps == 4


def wait_for_step(container: Container, solve: SolveView, step: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.runs.get(solve.runs[0].id).steps >= step:
            return
        time.sleep(0.05)
    raise AssertionError(f"step {step} never came")


def wait_until_running(sandboxes: SandboxBackend, sandbox_id: str, timeout: float = 30) -> None:
    """Until the slow command has started (it touches a marker first), however loaded the machine is."""
    box = sandboxes.connect(sandbox_id)
    deadline = time.monotonic() + timeout
    while "yes" not in box.run("test -e .started && echo yes || true", cwd=box.workdir, timeout=10).output:
        if time.monotonic() > deadline:
            raise AssertionError("the slow command never started")
        time.sleep(0.1)


def run_in_thread(pipeline: RunPipeline, solve: SolveView) -> threading.Thread:
    worker = threading.Thread(
        target=run_to_end,
        args=(
            pipeline,
            solve.runs[0].id,
        ),
    )
    worker.start()
    return worker


def test_a_sandbox_killed_mid_run_fails_it_as_sandbox_gone_and_keeps_the_trajectory(
    container: Container, backend: tuple[SandboxBackend, FakeE2BService | None], repo: Path, tmp_path: Path
) -> None:
    sandboxes, _ = backend
    slow = "touch .started && sleep 30"
    model = write_replay(tmp_path / "slow.yaml", "cat calc.py", slow, "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
    solve = start_solve(container, repo_url=str(repo), models=[model])
    worker = run_in_thread(container.pipeline(sandboxes), solve)
    wait_for_step(container, solve, 1)
    sandbox_id = container.runs.get(solve.runs[0].id).sandbox_id
    assert sandbox_id
    wait_until_running(sandboxes, sandbox_id)
    sandboxes.kill(sandbox_id)
    worker.join(timeout=30)
    assert not worker.is_alive()
    run = container.runs.get(solve.runs[0].id)
    assert run.status is RunStatus.FAILED
    assert run.error
    assert run.error.startswith("SandboxGone")
    assert run.retryable
    trajectory = json.loads(container.artifacts.get(run.artifacts["trajectory"]))
    commands = [a["command"] for m in trajectory["messages"] for a in (m.get("extra") or {}).get("actions", [])]
    assert commands[:2] == ["cat calc.py", slow]
    assert trajectory["messages"][-1]["role"] == "exit"  # the error is the trajectory's last word


def test_cancelling_stops_a_running_attempt(container: Container, repo: Path, tmp_path: Path) -> None:
    model = write_replay(tmp_path / "slow.yaml", "cat calc.py", "sleep 1", "sleep 1", "sleep 1", "sleep 1")
    solve = start_solve(container, repo_url=str(repo), models=[model])
    with sandbox_backend("local-plain", tmp_path) as (sandboxes, _):
        worker = run_in_thread(container.pipeline(sandboxes), solve)
        wait_for_step(container, solve, 1)
        container.runs.move_solve(solve.id, SolveStatus.CANCELLING)
        worker.join(timeout=30)
        assert sandboxes.list({"solve_id": str(solve.id)}) == []
    run = container.runs.get(solve.runs[0].id)
    assert run.status is RunStatus.CANCELLED
    assert run.steps < 5
    assert finish(container, solve).status is SolveStatus.CANCELLED


def test_a_private_repository_token_never_reaches_events_or_artifacts(tmp_path: Path, repo: Path) -> None:
    with GitHTTPServer(tmp_path / "git", token=TOKEN).start() as server:
        url = server.add_repo("org/calc", repo)
        container = runtime(tmp_path, f"sqlite:///{tmp_path / 'private.sqlite'}", git_tokens={"127.0.0.1": TOKEN})
        from solver_core.db.migrate import upgrade

        upgrade(container.engine)
        container.allowlist.add("tester", url)  # the deployment's token is used for allowlisted repositories only
        model = write_replay(tmp_path / "leak.yaml", "git config --list; env; cat .git/config", FIX, "git remote -v")
        solve = start_solve(container, repo_url=url, models=[model], test_command="python3 test_calc.py")
        with sandbox_backend("local-bwrap", tmp_path) as (sandboxes, _):
            run = run_to_end(container.pipeline(sandboxes), solve.runs[0].id)
        container.close()
    assert run.status is RunStatus.SUCCEEDED, run.error
    events = container.events.read("tester", solve.id, limit=1000)
    assert TOKEN not in json.dumps([e.model_dump(mode="json") for e in events])
    stored = [p for p in (tmp_path / "home" / "artifacts").rglob("*") if p.is_file()]
    assert any(p.name == "trajectory.json" for p in stored)
    for path in stored:
        assert TOKEN.encode() not in path.read_bytes(), path
