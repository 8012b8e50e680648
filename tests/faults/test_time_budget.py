"""Fault: a RunAgent invocation runs out of time in the middle of its chunk of steps.

- Its budget (the Lambda's remaining time minus the margin) ends between two steps: the Task
  handler returns `done: false` and the next invocation, in a fresh pipeline, goes on.
- The invocation is killed in the middle of a step (a Lambda timing out): the state machine retries
  RunAgent, which continues from the last checkpoint in the same sandbox; the cut-off step is
  taken again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.orchestrators.tasks import TaskContext, handle
from solver_core.status import RunStatus, SolveStatus
from solver_core.workflow.agent_step import Budget
from tests.faults import invariants
from tests.faults.world import FIX, SUBMIT, TEST_COMMAND, FaultWorld, fault_world

pytestmark = pytest.mark.faults


@pytest.fixture
def world(tmp_path: Path, canaries: list[str]) -> Iterator[FaultWorld]:
    with fault_world(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", canaries, budget_margin_s=0) as built:
        yield built


def finish(world: FaultWorld, run_id: object) -> None:
    pipeline = world.container.pipeline(world.sandboxes)  # a later invocation: a fresh pipeline
    for step in (pipeline.collect, pipeline.steps.verify, pipeline.steps.release):
        step(run_id)  # type: ignore[arg-type]
    world.container.flow().run_and_finish(world.container.runs.get(run_id).solve_id)  # type: ignore[arg-type]


def test_a_budget_that_ends_mid_chunk_stops_between_steps_and_the_next_invocation_goes_on(
    world: FaultWorld,
) -> None:
    actions = (world.marker(0.4), world.marker(0.4), world.marker(0.4), FIX, TEST_COMMAND, SUBMIT)
    solve = world.start(models=[world.replay("slow", *actions)])
    run_id = solve.runs[0].id
    world.pipeline.steps.launch(run_id)
    world.pipeline.steps.prepare(run_id)
    event = {"step": "run_agent", "solve_id": str(solve.id), "run_id": str(run_id)}
    settings = world.container.settings

    def invocation(remaining_ms: int) -> bool:
        """RunAgent as the state machine's Task calls it, in a fresh pipeline each time."""
        pipeline = world.container.pipeline(world.sandboxes)
        context = TaskContext(pipeline, world.container.flow(), settings, lambda: remaining_ms)
        return bool(handle(event, context)["done"])

    assert invocation(remaining_ms=600) is False  # 0.6 s: two 0.4 s steps start, the third does not
    first = world.container.runs.get(run_id)
    assert first.status is RunStatus.SOLVING
    assert first.steps == 2
    assert invocation(remaining_ms=60_000) is True
    finish(world, run_id)
    final = world.check(solve)

    assert final.status is SolveStatus.SUCCEEDED
    (run,) = final.runs
    assert run.steps == len(actions)
    assert invariants.step_numbers(world.container, final, run_id) == list(range(1, len(actions) + 1))
    assert invariants.trajectory_commands(world.container, run) == list(actions)


def test_an_invocation_killed_mid_step_is_retried_from_the_last_checkpoint(world: FaultWorld, tmp_path: Path) -> None:
    slow = world.marker(2)
    actions = ("cat calc.py", FIX, slow, TEST_COMMAND, SUBMIT)
    solve = world.start(models=[world.replay("killed", *actions)])
    run_id = solve.runs[0].id
    world.pipeline.steps.launch(run_id)
    world.pipeline.steps.prepare(run_id)
    # The invocation in its own process, as a Lambda runs it; SIGKILL is the Lambda timing out.
    settings = world.container.settings
    env = os.environ | {
        "SOLVER_HOME": str(settings.home),
        "SOLVER_DATABASE_URL": settings.resolved_database_url,
        "SOLVER_SANDBOX_DIR": str(tmp_path / "sandboxes"),
        "SOLVER_SANDBOX_ISOLATION": "none",
        "SOLVER_E2B_API_KEY": settings.e2b_api_key.get_secret_value() if settings.e2b_api_key else "",
    }
    command = [sys.executable, "-m", "solver_core.cli", "internal", "run-agent", str(run_id), "--max-steps", "50"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        world.wait_for_step(solve, 2)
        deadline = time.monotonic() + 30
        while not invariants.stray_processes([slow]):
            assert time.monotonic() < deadline, "the slow step never started"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert world.container.runs.get(run_id).steps == 2  # step 3 never finished, so it was never recorded

    retried = world.container.pipeline(world.sandboxes)  # the state machine's retry of RunAgent
    assert retried.agent.run(run_id, Budget()) is True
    finish(world, run_id)
    final = world.check(solve)

    assert final.status is SolveStatus.SUCCEEDED
    (run,) = final.runs
    assert (run.attempt, run.steps) == (0, len(actions))  # the same attempt, and the same sandbox
    assert invariants.trajectory_commands(world.container, run) == list(actions)
    assert invariants.step_numbers(world.container, final, run_id) == list(range(1, len(actions) + 1))
    assert json.loads(world.container.artifacts.get(run.artifacts["trajectory"]))["info"]["exit_status"] == "Submitted"
