"""The solve flow executed two ways, reaching the same final state: the real state machine run by
moto's Step Functions interpreter (Lambda tasks calling our handler in-process), and the local
orchestrator. Both on a real PostgreSQL, moto S3 artifacts and local sandboxes, with replay models."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import pytest
from moto import mock_aws

from solver_core.artifacts import keys
from solver_core.db.migrate import upgrade
from solver_core.models import SolveView
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.orchestrators.stepfunctions import SfnOrchestrator
from solver_core.orchestrators.tasks import TaskContext, handle
from solver_core.ports import SandboxBackend
from solver_core.sandbox.local import LocalSandboxBackend
from solver_core.services.cancel import CancelService
from solver_core.wiring import Container, build_container
from solver_core.workflow.pipeline import RunPipeline
from tests.fakes.sandboxes import WatchedSandboxes
from tests.support.aws import use_fake_credentials
from tests.support.runtime import make_repo, runtime_settings, start_solve, wait_for_command, write_replay
from tests.support.selection import PYTEST, scenario_models, scenario_repo
from tests.support.stepfunctions import StepFunctionsHarness

pytestmark = pytest.mark.contract

ORCHESTRATORS = ["stepfunctions", "local"]
ASL = Path(__file__).resolve().parents[2] / "statemachine" / "solve.asl.json"
BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5\n"
FIX = ("cat calc.py", "sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
WRONG = ("sed -i 's|def mean|def average|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
TIME_SCALE = 0.02  # retry intervals as configured, 50 times faster
BUCKET = "solver-contract"


@dataclass
class World:
    """One orchestrator over one database, artifact bucket and sandbox provider."""

    container: Container
    sandboxes: WatchedSandboxes
    orchestrator: SfnOrchestrator | LocalOrchestrator
    harness: StepFunctionsHarness | None = None
    counted: dict[str, int] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)

    def run(self, solve: SolveView) -> SolveView:
        self.start(solve)
        return self.wait(solve)

    def start(self, solve: SolveView) -> None:
        execution = self.orchestrator.start(solve.id)
        self.container.runs.set_solve_fields(solve.id, execution_ref=execution)

    def wait(self, solve: SolveView) -> SolveView:
        if isinstance(self.orchestrator, LocalOrchestrator):
            assert self.orchestrator.wait(solve.id, timeout=120)
        else:
            assert self.harness is not None
            execution = self.container.runs.solve(solve.id).execution_ref
            assert execution
            self.outcome = self.harness.wait(execution, timeout_s=120)
        return self.container.runs.solve(solve.id)

    def canceller(self, sandboxes: SandboxBackend | None = None) -> CancelService:
        """The cancel service over this world (as the API's), killing through `sandboxes` if given."""
        return CancelService(
            solves=self.container.solves, runs=self.container.runs, events=self.container.events,
            sandboxes=sandboxes or self.sandboxes, orchestrator=self.orchestrator, champion=self.container.flow(),
        )  # fmt: skip

    def invocations(self, step: str) -> int:
        if self.harness is not None:
            return sum(1 for _, event in self.harness.invocations if event.get("step") == step)
        return self.counted.get(step, 0)


@pytest.fixture(params=ORCHESTRATORS)
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_fake_credentials(monkeypatch)
    return str(request.param)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})


@contextmanager
def make_world(
    kind: str, tmp: Path, database_url: str, *, fail_connects: int = 0, function_timeout_s: int = 900, **settings: Any
) -> Iterator[World]:
    """A world of `kind`: for stepfunctions, the real ASL deployed in the harness (each invocation
    given `function_timeout_s`); else the local orchestrator."""
    wired: dict[str, Any] = {}

    def tasks(event: dict[str, Any], context: Any) -> Any:
        task = TaskContext(
            wired["pipeline"], wired["container"].flow(), wired["container"].settings,
            context.get_remaining_time_in_millis,
        )  # fmt: skip
        return handle(event, task)

    with contextlib.ExitStack() as stack:
        harness = None
        if kind == "stepfunctions":
            harness = stack.enter_context(
                StepFunctionsHarness(
                    {"run-solver": tasks}, retry_time_scale=TIME_SCALE, function_timeout_s=function_timeout_s
                )
            )
        else:
            stack.enter_context(mock_aws())
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        container = build_container(
            runtime_settings(tmp, database_url, artifacts_bucket=BUCKET, aws_region="us-east-1", **settings)
        )
        stack.callback(container.close)
        upgrade(container.engine)
        sandboxes = WatchedSandboxes(
            LocalSandboxBackend(tmp / "sandboxes", isolation="none"), fail_connects=fail_connects
        )
        pipeline = container.pipeline(sandboxes)
        wired.update(container=container, pipeline=pipeline)

        if harness is not None:
            arn = harness.create_state_machine(
                ASL.read_text(), {"RunSolverFunctionArn": harness.function_arn("run-solver")}
            )
            sfn = SfnOrchestrator(boto3.client("stepfunctions", region_name="us-east-1"), arn)
            yield World(container, sandboxes, sfn, harness=harness)
            return
        world = World(container, sandboxes, LocalOrchestrator(pipeline, container.flow(), retry_time_scale=TIME_SCALE))
        count_calls(world, pipeline)
        yield world


def count_calls(world: World, pipeline: RunPipeline) -> None:
    """Count the local orchestrator's step calls, as the harness counts Lambda invocations."""
    steps: list[tuple[str, object, str]] = [("run_agent", pipeline.agent, "run")]
    steps += [(name, pipeline.steps, name) for name in ("prepare", "verify")]
    for name, owner, attribute in steps:
        call = getattr(owner, attribute)

        def counted(*args: Any, _name: str = name, _call: Callable[..., Any] = call, **kwargs: Any) -> Any:
            world.counted[_name] = world.counted.get(_name, 0) + 1
            return _call(*args, **kwargs)

        setattr(owner, attribute, counted)


def final_state(container: Container, solve_id: UUID) -> dict[str, Any]:
    solve = container.runs.solve(solve_id)
    champion = next((r.index for r in solve.runs if r.id == solve.champion_run_id), None)
    runs = [
        {
            "status": r.status.value,
            "exit": r.exit_status,
            "error": (r.error or "").split(":")[0] or None,
            "tests": None if r.tests is None else r.tests.passed,
            "files": None if r.patch_stats is None else r.patch_stats.files,
            "attempt": r.attempt,
        }
        for r in solve.runs
    ]
    return {"status": solve.status.value, "champion": champion, "runs": runs}


def run_state(
    status: str, exit: str | None, *, error: str | None = None, tests: bool | None = None, files: int | None = 1
) -> dict[str, Any]:
    return {"status": status, "exit": exit, "error": error, "tests": tests, "files": files, "attempt": 0}


def test_three_runs_a_fix_a_wrong_fix_and_one_that_raises(
    kind: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    with make_world(kind, tmp_path, postgres_url) as world:
        models = [
            write_replay(tmp_path / "fix.yaml", *FIX),
            write_replay(tmp_path / "wrong.yaml", *WRONG),
            f"replay:{tmp_path / 'missing.yaml'}",  # the model cannot even load: the run raises
        ]
        solve = start_solve(
            world.container, repo_url=str(repo), models=models, max_parallel=3, test_command="python3 test_calc.py"
        )
        world.run(solve)
        assert final_state(world.container, solve.id) == {
            "status": "succeeded",
            "champion": 0,
            "runs": [
                run_state("succeeded", "Submitted", tests=True),
                run_state("succeeded", "Submitted", tests=False),
                run_state("failed", "RunError", error="RunError", files=None),
            ],
        }
        assert world.sandboxes.live == set()
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"


def test_the_agent_loop_runs_over_several_chunks(kind: str, tmp_path: Path, postgres_url: str, repo: Path) -> None:
    with make_world(kind, tmp_path, postgres_url, agent_chunk_steps=1) as world:
        solve = start_solve(world.container, repo_url=str(repo), models=[write_replay(tmp_path / "fix.yaml", *FIX)])
        world.run(solve)
        assert final_state(world.container, solve.id)["runs"] == [run_state("succeeded", "Submitted")]
        assert world.invocations("run_agent") == 3  # one step per invocation; the third one submits
        assert world.container.runs.get(solve.runs[0].id).steps == 3


def test_a_transient_sandbox_error_is_retried(kind: str, tmp_path: Path, postgres_url: str, repo: Path) -> None:
    with make_world(kind, tmp_path, postgres_url, fail_connects=1) as world:
        solve = start_solve(world.container, repo_url=str(repo), models=[write_replay(tmp_path / "fix.yaml", *FIX)])
        world.run(solve)
        assert final_state(world.container, solve.id)["status"] == "succeeded"
        assert world.sandboxes.failed_connects == 1
        assert world.invocations("prepare") == 2  # the first attempt hit the injected error


def test_capacity_exceeded_then_available(kind: str, tmp_path: Path, postgres_url: str, repo: Path) -> None:
    with make_world(kind, tmp_path, postgres_url, max_live_sandboxes=1) as world:
        fix = write_replay(tmp_path / "fix.yaml", "sleep 1", *FIX)
        solve = start_solve(world.container, repo_url=str(repo), models=[fix], attempts_per_model=2, max_parallel=2)
        world.run(solve)
        state = final_state(world.container, solve.id)
        assert [r["status"] for r in state["runs"]] == ["succeeded", "succeeded"]
        assert world.sandboxes.peak_live == 1  # the cap held: the second run waited for the first
        assert world.sandboxes.created == 3  # two attempts and the baseline (which found no test command)


def test_verification_sandboxes_hold_their_runs_slot_of_the_cap(
    kind: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    """VerifyPatch swaps the agent's sandbox for a new one: two per verified run (the baseline's
    included), never two at once."""
    with make_world(kind, tmp_path, postgres_url, max_live_sandboxes=1) as world:
        fix = write_replay(tmp_path / "fix.yaml", *FIX)
        solve = start_solve(
            world.container, repo_url=str(repo), models=[fix], attempts_per_model=2, max_parallel=2,
            test_command="python3 test_calc.py",
        )  # fmt: skip
        world.run(solve)
        state = final_state(world.container, solve.id)
        assert [r["status"] for r in state["runs"]] == ["succeeded", "succeeded"]
        assert [r.tests.passed for r in world.container.runs.solve(solve.id).runs if r.tests] == [True, True]
        assert world.sandboxes.created == 6  # the baseline's too: it verifies in a fresh sandbox like the runs
        assert world.sandboxes.peak_live == 1
        assert world.sandboxes.live == set()


@pytest.mark.parametrize("kill_delay_s", [0.0, 2.0])
def test_cancel_in_the_middle_of_a_run(
    kind: str, tmp_path: Path, postgres_url: str, repo: Path, kill_delay_s: float
) -> None:
    """With a slow kill too: the execution is stopped before the sandboxes die, so it cannot go on to record the
    killed run's failure, pick a champion and finish the solve by itself."""
    with make_world(kind, tmp_path, postgres_url) as world:
        slow = write_replay(
            tmp_path / "slow.yaml", "cat calc.py", "sleep 20", "sleep 20", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
        )
        solve = start_solve(world.container, repo_url=str(repo), models=[slow])
        world.start(solve)
        deadline = time.monotonic() + 60
        while world.container.runs.get(solve.runs[0].id).steps < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # inside `sleep 20` now
        started = time.monotonic()
        cancels_kills = WatchedSandboxes(world.sandboxes)
        cancels_kills.kill_delay_s = kill_delay_s  # a provider slow to answer: the killed command fails meanwhile
        cancel = world.canceller(cancels_kills)
        outcome = cancel.cancel("tester", solve.id)
        assert outcome.changed
        world.wait(solve)
        assert time.monotonic() - started < 15  # the in-flight command failed within seconds
        assert final_state(world.container, solve.id) == {
            "status": "cancelled",
            "champion": None,
            "runs": [run_state("cancelled", None, error="cancelled", files=None)],
        }
        assert world.sandboxes.live == set()
        assert cancel.cancel("tester", solve.id).changed is False  # idempotent
        if world.harness is not None:
            assert world.outcome["status"] == "ABORTED"


def test_a_pre_existing_failure_the_baseline_picks_the_true_fix(kind: str, tmp_path: Path, postgres_url: str) -> None:
    """Every candidate's suite fails (an unrelated test fails on the base commit): the baseline, run
    alongside the attempts in its own sandbox, tells the true fix from a regression and a no-op."""
    repo = scenario_repo(tmp_path / "scenario")
    with make_world(kind, tmp_path, postgres_url) as world:
        solve = start_solve(
            world.container, repo_url=str(repo), models=scenario_models(tmp_path), max_parallel=3, test_command=PYTEST
        )
        done = world.run(solve)
        assert done.status.value == "succeeded"
        assert [r.tests.passed for r in done.runs if r.tests] == [False, False, False]
        assert done.champion_run_id == done.runs[0].id  # the true fix, though the no-op is smaller
        assert done.baseline is not None
        assert done.baseline.status.value == "succeeded"
        selection = done.selection
        assert selection is not None
        assert selection.baseline is not None
        assert selection.baseline.status == "failed"
        assert selection.baseline.per_test
        assert selection.baseline.failing_tests == [
            "test_calc::test_mean", "test_calc::test_unrelated_environment",
        ]  # fmt: skip
        assert [s.index for s in selection.runs] == [0, 2, 1]
        broken = selection.runs[2].baseline_delta
        assert broken is not None
        assert broken.broken_tests == ["test_calc::test_half"]
        assert selection.reason.startswith("run 0 (")
        assert "fixes 1 test(s) that failed on the base commit (test_calc::test_mean)" in selection.reason
        assert world.sandboxes.live == set()
        # The baseline ran alongside the attempts: it was claimed before any attempt finished.
        runs = [world.container.runs.get(r.id) for r in done.runs]
        assert done.baseline.started_at is not None
        assert all(done.baseline.started_at < r.finished_at for r in runs if r.finished_at)


def test_a_replayed_judge_breaks_a_tie_and_its_cost_counts(kind: str, tmp_path: Path, postgres_url: str) -> None:
    """Two different passing fixes of one size tie on every signal: without a judge the lower index
    wins; the selector model (a replay) picks the other, says why, and its cost is the solve's."""
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})
    plain = write_replay(tmp_path / "plain.yaml", "sed -i 's|//|/|' calc.py", FIX[-1])
    floats = write_replay(
        tmp_path / "floats.yaml", "sed -i 's|sum(values) // len(values)|float(sum(values)) / len(values)|' calc.py",
        FIX[-1],
    )  # fmt: skip
    judge_file = tmp_path / "judge.yaml"
    judge_file.write_text(
        "actions:\n  - thought: run 1 says it divides floats\n    command: 'CHOICE: 1'\n    cost: 0.02\n"
    )
    with make_world(kind, tmp_path, postgres_url) as world:
        request = {"repo_url": str(repo), "models": [plain, floats], "max_parallel": 2,
                   "test_command": "python3 test_calc.py"}  # fmt: skip
        unjudged = world.run(start_solve(world.container, **request))
        judged = world.run(start_solve(world.container, **request, selector_model=f"replay:{judge_file}"))
    assert unjudged.champion_run_id == unjudged.runs[0].id
    assert unjudged.selection is not None
    assert unjudged.selection.judge is None
    assert judged.champion_run_id == judged.runs[1].id
    selection = judged.selection
    assert selection is not None
    assert selection.judge is not None
    assert (selection.judge.choice, selection.judge.candidates) == (1, [0, 1])  # in ranking order
    assert selection.judge.reasoning == "run 1 says it divides floats CHOICE: 1"
    assert [s.judge_vote for s in selection.runs] == [True, False]
    assert "the selector model picked it" in selection.reason
    assert judged.selection_cost_usd == pytest.approx(0.02)


SCRIPT = (
    "printf 'import sys\\nfrom calc import mean\\nsys.exit(0 if mean([1, 2]) == 1.5 else 1)\\n' > reproduce_issue.py"
)


def test_a_suite_that_misses_the_bug_reproduction_scripts_pick_the_true_fix(
    kind: str, tmp_path: Path, postgres_url: str, repo: Path
) -> None:
    """The test command passes whatever the patch (it never calls mean), so a no-op that only adds a comment
    would win on size. With `reproduce`, each attempt also writes a script; both scripts fail on the base
    commit (validated), the true fix passes them and the no-op does not: the true fix is chosen, the scripts
    stay out of the patches, and each check ran in a fresh sandbox that is gone."""
    noop = write_replay(tmp_path / "noop.yaml", SCRIPT, "echo '# the mean of the values' >> calc.py", SUBMIT)
    fix = write_replay(tmp_path / "fix.yaml", SCRIPT, "sed -i 's|//|/|' calc.py", SUBMIT)
    with make_world(kind, tmp_path, postgres_url) as world:
        solve = start_solve(
            world.container, repo_url=str(repo), models=[noop, fix], max_parallel=2,
            test_command="python3 -c 'import calc'", reproduce=True, reproduce_command="python3 reproduce_issue.py",
        )  # fmt: skip
        done = world.run(solve)
        assert done.status.value == "succeeded", done.error
        assert [r.tests.passed for r in done.runs if r.tests] == [True, True]
        assert done.champion_run_id == done.runs[1].id
        selection = done.selection
        assert selection is not None
        assert selection.reproduction is not None
        assert (selection.reproduction.status, selection.reproduction.scripts, selection.reproduction.validated) == (
            "checked", 2, 2,
        )  # fmt: skip
        assert [(s.index, s.reproduce_passed) for s in selection.runs] == [(1, 2), (0, 0)]
        assert "reproduction script" in selection.reason
        assert [(c.status.value, c.reproduction.target_run_id if c.reproduction else "-") for c in done.checks] == [
            ("succeeded", None), ("succeeded", done.runs[0].id), ("succeeded", done.runs[1].id),
        ]  # fmt: skip
        for run in done.runs:
            assert run.reproduce_script
            patch = world.container.artifacts.get(keys.patch(done.id, run.id)).decode()
            assert "reproduce_issue.py" not in patch
            assert "calc.py" in patch
        assert world.sandboxes.live == set()
        if world.harness is not None:
            assert world.outcome["status"] == "SUCCEEDED"


def test_cancel_while_a_reproduction_script_runs(kind: str, tmp_path: Path, postgres_url: str, repo: Path) -> None:
    """The checks are runs like any other: a cancel while one's script runs stops it, every run ends
    cancelled or finished, and no sandbox is left."""
    token = f"solver-test-{uuid.uuid4().hex}"
    fix = write_replay(tmp_path / "fix.yaml", SCRIPT, "sed -i 's|//|/|' calc.py", SUBMIT)
    with make_world(kind, tmp_path, postgres_url) as world:
        solve = start_solve(
            world.container, repo_url=str(repo), models=[fix], reproduce=True,
            reproduce_command=f"sleep 60; : {token}; python3 reproduce_issue.py",
        )  # fmt: skip
        world.start(solve)
        wait_for_command(token, timeout_s=90, what="the reproduction script")
        cancel = world.canceller()
        started = time.monotonic()
        assert cancel.cancel("tester", solve.id).changed
        done = world.wait(solve)
        assert time.monotonic() - started < 20
        assert done.status.value == "cancelled"
        assert done.checks
        assert all(r.status.value in {"cancelled", "succeeded"} for r in done.all_runs)
        assert world.sandboxes.live == set()
        wait_for_command(token, running=False, timeout_s=10, what="the cancelled script")
