"""Setup and test commands longer than a Lambda invocation: PrepareRepository's clone and setup run
detached in the sandbox and the state machine's wait-and-check loop (PrepareRepository ⟲) polls
them across invocations (VerifyPatch has the same loop; its commands are not detached yet). Under
moto each invocation gets a budget of a few seconds (`function_timeout_s`), the commands take
several times that, and the runs end with their true results. The local orchestrator runs the same
steps without an invocation limit."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from solver_core.artifacts import keys
from solver_core.orchestrators.tasks import TaskContext, handle
from solver_core.services.cancel import CancelService
from tests.contract.test_orchestration import (
    BUGGY,
    FIX,
    ORCHESTRATORS,
    TESTS,
    WRONG,
    World,
    final_state,
    make_world,
    run_state,
)
from tests.support.runtime import make_repo, start_solve, write_replay

pytestmark = pytest.mark.contract

INVOCATION_S = 3  # what each Lambda invocation gets: moto's context counts this down
COMMAND_S = 8  # every setup and test command sleeps this long: more than two whole invocations
# Each invocation keeps one second to record what it did, and the state machine checks again at once.
SHORT_INVOCATIONS = {"function_timeout_s": INVOCATION_S, "budget_margin_s": 1, "command_poll_s": 0}
SETUP = f"sleep {COMMAND_S} && echo installed > .setup-done"
# The tests see the setup's output in the verification checkout: setup ran there first.
TEST_COMMAND = f"sleep {COMMAND_S}; test -f .setup-done && python3 test_calc.py"


@pytest.fixture(params=ORCHESTRATORS)
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return str(request.param)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})


def per_run(world: World, step: str, run_id: object) -> int:
    if world.harness is None:
        return world.invocations(step)
    return sum(1 for _, e in world.harness.invocations if e.get("step") == step and e.get("run_id") == str(run_id))


def test_setup_and_tests_longer_than_an_invocation_finish_with_their_true_results(
    kind: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    with make_world(kind, tmp_path, postgres_url, **SHORT_INVOCATIONS) as world:
        models = [write_replay(tmp_path / "fix.yaml", *FIX), write_replay(tmp_path / "wrong.yaml", *WRONG)]
        solve = start_solve(
            world.container,
            repo_url=str(repo),
            models=models,
            max_parallel=2,
            setup_command=SETUP,
            test_command=TEST_COMMAND,
        )
        world.run(solve)

        assert final_state(world.container, solve.id) == {
            "status": "succeeded",
            "champion": 0,
            "runs": [run_state("succeeded", "Submitted", tests=True), run_state("succeeded", "Submitted", tests=False)],
        }
        for run in world.container.runs.solve(solve.id).runs:
            assert run.tests is not None
            assert run.tests.duration_s >= COMMAND_S  # the whole command ran, not an invocation's share
            prepare_log = world.container.artifacts.get(keys.prepare_log(solve.id, run.id)).decode()
            assert "SOLVER_PREPARED" in prepare_log
        assert world.sandboxes.live == set()
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"
            for run in solve.all_runs:  # several invocations each (the baseline's too): a start, checks, the end
                assert per_run(world, "prepare", run.id) >= 3
            # VerifyPatch (in its fresh sandbox) still runs its setup and tests inside one invocation:
            # moto does not enforce the Lambda timeout, so only its result is checked here.
        else:  # no invocation limit: each step waited for its commands in one call
            assert world.invocations("prepare") == 3  # the two runs and the baseline
            assert world.invocations("verify") == 3
        baseline = world.container.runs.solve(solve.id).baseline
        assert baseline is not None
        assert baseline.tests is not None
        assert baseline.tests.duration_s >= COMMAND_S  # the baseline's long test command ran whole too


def test_cancelling_during_a_long_setup_stops_the_command(
    kind: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    token = f"solver-test-{uuid.uuid4().hex}"
    with make_world(kind, tmp_path, postgres_url, **SHORT_INVOCATIONS) as world:
        models = [write_replay(tmp_path / "fix.yaml", *FIX)]
        solve = start_solve(world.container, repo_url=str(repo), models=models, setup_command=f"sleep 600; : {token}")
        world.start(solve)
        deadline = time.monotonic() + 60
        while not _running(token):
            assert time.monotonic() < deadline, "the setup command never started"
            time.sleep(0.1)
        cancel = CancelService(
            solves=world.container.solves, runs=world.container.runs, events=world.container.events,
            sandboxes=world.sandboxes, orchestrator=world.orchestrator, champion=world.container.flow(),
        )  # fmt: skip
        started = time.monotonic()
        assert cancel.cancel("tester", solve.id).changed
        world.wait(solve)
        assert time.monotonic() - started < 20
        assert final_state(world.container, solve.id)["runs"] == [
            run_state("cancelled", None, error="cancelled", files=None)
        ]
        deadline = time.monotonic() + 10
        while _running(token):
            assert time.monotonic() < deadline, "the cancelled setup command still runs"
            time.sleep(0.1)
        assert world.sandboxes.live == set()


def test_no_command_starts_without_time_left_to_record_it(tmp_path: Path, postgres_url: str, repo: Path) -> None:
    with make_world("local", tmp_path, postgres_url, budget_margin_s=2) as world:
        solve = start_solve(world.container, repo_url=str(repo), models=[write_replay(tmp_path / "f.yaml", *FIX)])
        run_id = solve.runs[0].id
        pipeline = world.container.pipeline(world.sandboxes)
        pipeline.steps.launch(run_id)
        event = {"step": "prepare", "solve_id": str(solve.id), "run_id": str(run_id)}

        def invocation(remaining_ms: int) -> dict[str, object]:
            context = TaskContext(pipeline, world.container.flow(), world.container.settings, lambda: remaining_ms)
            return handle(event, context)

        assert invocation(remaining_ms=1500) == {"done": False, "wait_s": 30}  # less than the 2 s margin
        assert world.container.runs.commands(run_id) is None  # nothing was started
        assert list((tmp_path / "sandboxes").glob("*/state/jobs/*")) == []
        assert invocation(remaining_ms=60_000)["done"] is True
        assert world.container.runs.get(run_id).base_commit


def _running(token: str) -> bool:
    found = subprocess.run(
        ["pgrep", "-f", f"^bash (--noprofile --norc )?-l?c [^#]*{token}"], capture_output=True, check=False
    )
    return found.returncode == 0
