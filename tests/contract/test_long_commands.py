"""Setup and test commands longer than a Lambda invocation: PrepareRepository's clone and setup and
VerifyPatch's clone, setup and tests run detached in the sandbox, and the state machine's
wait-and-check loops (PrepareRepository ⟲, VerifyPatch ⟲) poll them across invocations. Under moto
each invocation gets a budget of a few seconds (`function_timeout_s`), the commands take several
times that, and the runs end with their true results, in both verification modes. The local
orchestrator runs the same steps without an invocation limit."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import tests.contract.test_orchestration as orchestration
from solver_core.artifacts import keys
from solver_core.errors import SandboxUnavailable
from solver_core.orchestrators.tasks import TaskContext, handle
from solver_core.ports import Sandbox, SandboxBackend
from solver_core.sandbox.base import TIMEOUT_EXIT_CODE, SandboxSpec
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
from tests.fakes.sandboxes import WatchedSandboxes
from tests.support.aws import use_fake_credentials
from tests.support.runtime import make_repo, start_solve, wait_for_command, write_replay

pytestmark = pytest.mark.contract

INVOCATION_S = 3  # what each Lambda invocation gets: moto's context counts this down
COMMAND_S = 8  # every setup and test command sleeps this long: more than two whole invocations
# Each invocation keeps one second to record what it did, and the state machine checks again at once.
SHORT_INVOCATIONS = {"function_timeout_s": INVOCATION_S, "budget_margin_s": 1, "command_poll_s": 0}
SETUP = f"sleep {COMMAND_S} && echo installed > .setup-done"
# The tests see the setup's output in the verification checkout: setup ran there first.
TEST_COMMAND = f"sleep {COMMAND_S}; test -f .setup-done && python3 test_calc.py"
# moto does not stop a Lambda at its timeout, so the test measures each invocation: none may run
# past its budget (this much slack for a loaded machine's scheduling).
OVERRUN_SLACK_S = 0.5


@pytest.fixture(params=ORCHESTRATORS)
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_fake_credentials(monkeypatch)
    return str(request.param)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """(step, seconds) of every handler call the worlds make."""
    calls: list[tuple[str, float]] = []

    def measured(event: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        began = time.monotonic()
        try:
            return handle(event, context)
        finally:
            calls.append((str(event.get("step")), time.monotonic() - began))

    monkeypatch.setattr(orchestration, "handle", measured)
    return calls


def per_run(world: World, step: str, run_id: object) -> int:
    if world.harness is None:
        return world.invocations(step)
    return sum(1 for _, e in world.harness.invocations if e.get("step") == step and e.get("run_id") == str(run_id))


def test_reproduction_checks_longer_than_an_invocation_finish_with_their_true_results(
    kind: str, tmp_path: Path, *, postgres_url: str, repo: Path, timed: list[tuple[str, float]]
) -> None:
    """Each check's setup and each script (8 s) outlast an invocation (3 s): they run detached and
    are checked on across invocations, and the ranking gets their true exit codes."""
    script = "printf 'import sys\\nfrom calc import mean\\nsys.exit(0 if mean([1, 2]) == 1.5 else 1)\\n' > repro.py"
    with make_world(kind, tmp_path, postgres_url, **SHORT_INVOCATIONS) as world:
        models = [write_replay(tmp_path / "fix.yaml", script, *FIX), write_replay(tmp_path / "wrong.yaml", *WRONG)]
        solve = start_solve(
            world.container, repo_url=str(repo), models=models, max_parallel=2, setup_command=SETUP,
            detect_tests=False, reproduce=True, reproduce_path="repro.py",
            reproduce_command=f"sleep {COMMAND_S}; python3 repro.py",
        )  # fmt: skip
        done = world.run(solve)
        assert done.status.value == "succeeded"
        assert done.champion_run_id == done.runs[0].id
        assert done.selection is not None
        assert done.selection.reproduction is not None
        assert done.selection.reproduction.validated == 1
        assert [(s.index, s.reproduce_passed) for s in done.selection.runs] == [(0, 1), (1, 0)]
        assert len(done.checks) == 3
        assert world.sandboxes.live == set()
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"
            for check in done.checks:  # clone, setup (8 s) and the script (8 s), across invocations
                assert per_run(world, "verify", check.id) >= 2 * COMMAND_S // INVOCATION_S
            overruns = [(step, round(s, 2)) for step, s in timed if s > INVOCATION_S + OVERRUN_SLACK_S]
            assert overruns == [], "an invocation ran past its budget"


@pytest.mark.parametrize("verify_in", ["fresh_sandbox", "same_sandbox"])
def test_setup_and_tests_longer_than_an_invocation_finish_with_their_true_results(
    kind: str, verify_in: str, tmp_path: Path, *, postgres_url: str, repo: Path, timed: list[tuple[str, float]]
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
            verify_in=verify_in,
        )
        world.run(solve)

        assert final_state(world.container, solve.id) == {
            "status": "succeeded",
            "champion": 0,
            "runs": [run_state("succeeded", "Submitted", tests=True), run_state("succeeded", "Submitted", tests=False)],
        }
        fixed, wrong = world.container.runs.solve(solve.id).runs
        for run in (fixed, wrong):
            assert run.tests is not None
            assert run.tests.duration_s >= COMMAND_S  # the whole command ran, not an invocation's share
            prepare_log = world.container.artifacts.get(keys.prepare_log(solve.id, run.id)).decode()
            assert "SOLVER_PREPARED" in prepare_log
        assert fixed.tests is not None
        assert wrong.tests is not None
        # The verdicts are the test command's own: a pass, and a failure that is the tests' (the wrong
        # fix renamed the function), not a deadline or a lost check.
        assert fixed.tests.exit_code == 0
        assert wrong.tests.exit_code not in {0, TIMEOUT_EXIT_CODE, 137}
        assert wrong.tests.output_key is not None
        wrong_output = world.container.artifacts.get(wrong.tests.output_key).decode()
        assert "cannot import name 'mean'" in wrong_output
        assert world.sandboxes.live == set()
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"
            for run in solve.all_runs:  # several invocations each (the baseline's too): a start, checks, the end
                assert per_run(world, "prepare", run.id) >= 3
                # the verification's clone, setup (8 s) and tests (8 s), checked on across invocations
                assert per_run(world, "verify", run.id) >= 2 * COMMAND_S // INVOCATION_S
            overruns = [(step, round(s, 2)) for step, s in timed if s > INVOCATION_S + OVERRUN_SLACK_S]
            assert overruns == [], "an invocation ran past its budget"
        else:  # no invocation limit: each step waited for its commands in one call
            assert world.invocations("prepare") == 3  # the two runs and the baseline
            assert world.invocations("verify") == 3
        baseline = world.container.runs.solve(solve.id).baseline
        assert baseline is not None
        assert baseline.tests is not None
        assert baseline.tests.duration_s >= COMMAND_S  # the baseline's long test command ran whole too


class FlakyVerificationSandboxes(WatchedSandboxes):
    """Every other connection to a verification sandbox fails as an unreachable provider would: the
    invocation that meant to check on a command dies, and the state machine retries it."""

    def __init__(self, inner: SandboxBackend, **kwargs: Any) -> None:
        super().__init__(inner, **kwargs)
        self.verification: set[str] = set()
        self.refused = 0
        self._connects = 0

    def create(self, spec: SandboxSpec) -> Sandbox:
        box = super().create(spec)
        if spec.metadata.get("purpose") == "verify":
            self.verification.add(box.id)
        return box

    def connect(self, sandbox_id: str) -> Sandbox:
        if sandbox_id in self.verification:
            self._connects += 1
            if self._connects % 2:
                self.refused += 1
                raise SandboxUnavailable("injected: the provider did not answer")
        return super().connect(sandbox_id)


def test_checks_that_fail_are_retried_and_the_verdicts_stay_true(
    tmp_path: Path, postgres_url: str, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_credentials(monkeypatch)
    monkeypatch.setattr(orchestration, "WatchedSandboxes", FlakyVerificationSandboxes)
    ran = tmp_path / "test-runs"  # the local sandbox without isolation can append here
    command = f"echo run >> {ran}; {TEST_COMMAND}"
    with make_world("stepfunctions", tmp_path, postgres_url, **SHORT_INVOCATIONS) as world:
        models = [write_replay(tmp_path / "fix.yaml", *FIX), write_replay(tmp_path / "wrong.yaml", *WRONG)]
        solve = start_solve(
            world.container, repo_url=str(repo), models=models, max_parallel=2, setup_command=SETUP,
            test_command=command,
        )  # fmt: skip
        world.run(solve)
        assert isinstance(world.sandboxes, FlakyVerificationSandboxes)
        assert world.sandboxes.refused >= 6  # several checks per verification were lost
        assert final_state(world.container, solve.id) == {
            "status": "succeeded",
            "champion": 0,
            "runs": [run_state("succeeded", "Submitted", tests=True), run_state("succeeded", "Submitted", tests=False)],
        }
        baseline = world.container.runs.solve(solve.id).baseline
        assert baseline is not None
        # Each verification's tests ran once, whole: a lost check neither restarted them nor decided.
        assert ran.read_text().split() == ["run"] * len(world.container.runs.solve(solve.id).all_runs)
        for run in world.container.runs.solve(solve.id).all_runs:
            assert run.tests is not None
            assert run.tests.duration_s >= COMMAND_S
        assert world.sandboxes.live == set()


@pytest.mark.parametrize("phase", ["prepare's setup", "verification's tests", "same-sandbox verification's tests"])
def test_cancelling_during_a_long_command_stops_it(
    kind: str, phase: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    token = f"solver-test-{uuid.uuid4().hex}"
    long = f"sleep 600; : {token}"
    request: dict[str, Any] = {"setup_command": long} if phase.startswith("prepare") else {"test_command": long}
    if phase.startswith("same-sandbox"):
        request["verify_in"] = "same_sandbox"
    with make_world(kind, tmp_path, postgres_url, **SHORT_INVOCATIONS) as world:
        models = [write_replay(tmp_path / "fix.yaml", *FIX)]
        solve = start_solve(world.container, repo_url=str(repo), models=models, **request)
        world.start(solve)
        wait_for_command(token, what=f"the {phase} command")
        cancel = world.canceller()
        started = time.monotonic()
        assert cancel.cancel("tester", solve.id).changed
        world.wait(solve)
        assert time.monotonic() - started < 20
        files = None if phase.startswith("prepare") else 1
        exit_status = None if phase.startswith("prepare") else "Submitted"
        assert final_state(world.container, solve.id)["runs"] == [
            run_state("cancelled", exit_status, error="cancelled", files=files)
        ]
        assert world.container.runs.solve(solve.id).runs[0].tests is None  # a stopped command is no verdict
        wait_for_command(token, running=False, timeout_s=10, what=f"the cancelled {phase} command")
        assert world.sandboxes.live == set()


@pytest.mark.parametrize("verify_in", ["fresh_sandbox", "same_sandbox"])
def test_no_command_starts_without_time_left_to_record_it(
    verify_in: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    with make_world("local", tmp_path, postgres_url, budget_margin_s=2) as world:
        models = [write_replay(tmp_path / "f.yaml", *FIX)]
        solve = start_solve(
            world.container, repo_url=str(repo), models=models, test_command="python3 test_calc.py", verify_in=verify_in
        )
        run_id = solve.runs[0].id
        pipeline = world.container.pipeline(world.sandboxes)
        agent_sandbox = pipeline.steps.launch(run_id)

        def invocation(step: str, remaining_ms: int) -> dict[str, Any]:
            context = TaskContext(pipeline, world.container.flow(), world.container.settings, lambda: remaining_ms)
            return handle({"step": step, "solve_id": str(solve.id), "run_id": str(run_id)}, context)

        def jobs() -> list[Path]:
            return list((tmp_path / "sandboxes").glob("*/state/jobs/*"))

        assert invocation("prepare", remaining_ms=1500) == {"done": False, "wait_s": 30}  # less than the 2 s margin
        assert world.container.runs.commands(run_id) is None  # nothing was started
        assert jobs() == []
        assert invocation("prepare", remaining_ms=60_000)["done"] is True
        assert world.container.runs.get(run_id).base_commit
        while not invocation("run_agent", remaining_ms=60_000)["done"]:
            pass
        assert invocation("collect", remaining_ms=60_000) == {"has_patch": True}
        started = len(jobs())

        assert invocation("verify", remaining_ms=1500) == {"done": False, "wait_s": 30}
        assert world.container.runs.commands(run_id) is None
        assert len(jobs()) == started
        assert world.container.runs.get(run_id).sandbox_id == agent_sandbox  # no verification sandbox either
        assert invocation("verify", remaining_ms=60_000) == {
            "done": True, "passed": True, "status": "succeeded", "cost_usd": 0.0,
        }  # fmt: skip
