"""Fault: the sandbox is killed while one of the agent's commands runs in it (e2b lost it, or the
local sandbox was killed from outside). The run fails as retryable (`SandboxGone`), is resumed in a
new sandbox from its checkpoint and its partial diff, and the solve still succeeds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from solver_core.errors import SandboxGone
from solver_core.status import RunStatus, SolveStatus
from solver_core.workflow import agent_step
from tests.faults import invariants
from tests.faults.world import FIX, NOSY_ACTIONS, SUBMIT, TEST_COMMAND, FaultWorld, fault_world

pytestmark = pytest.mark.faults


def wait_for_process(marker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not invariants.stray_processes([marker]):
        assert time.monotonic() < deadline, f"{marker!r} never started"
        time.sleep(0.02)


def kill_from_outside(world: FaultWorld, sandbox_id: str) -> None:
    if world.e2b is not None:
        world.e2b.kill_sandbox(sandbox_id)  # the provider's side: processes die, streams drop
    else:
        world.inner.kill(sandbox_id)


@pytest.mark.parametrize("backend", ["local", "e2b"])
@pytest.mark.parametrize("diffs", ["every-step", "throttled"])
def test_a_sandbox_killed_during_a_command_resumes_in_a_new_one(
    backend: str, diffs: str, tmp_path: Path, canaries: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if diffs == "every-step":
        monkeypatch.setattr(agent_step, "PARTIAL_DIFF_INTERVAL_S", 0.0)
    with fault_world(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", canaries, backend=backend) as world:
        slow = world.marker(3)
        actions = (*NOSY_ACTIONS, "cat calc.py", FIX, slow, TEST_COMMAND, SUBMIT)
        solve = world.start(models=[world.replay("work", *actions)])
        worker = world.run_in_background(solve)
        world.wait_for_step(solve, len(NOSY_ACTIONS) + 2)  # the fix is in
        wait_for_process(slow)
        sandbox_id = world.container.runs.get(solve.runs[0].id).sandbox_id
        assert sandbox_id
        kill_from_outside(world, sandbox_id)
        worker.join(90)
        assert not worker.is_alive()
        final = world.check(solve)

        assert final.status is SolveStatus.SUCCEEDED, final.error
        (run,) = final.runs
        assert (run.status, run.attempt, run.exit_status) == (RunStatus.SUCCEEDED, 1, "Submitted")
        assert run.tests is not None
        assert run.tests.passed  # the fix made before the loss is in the resumed sandbox's checkout
        events = world.container.events.read("tester", solve.id, limit=1000)
        assert any(SandboxGone.__name__ in e.message for e in events)
        # The conversation has each action once: with a diff per step the killed command is answered
        # "interrupted"; with throttled diffs the steps after the last diff are rewound and taken again.
        redact = world.container.redactor().redact
        assert invariants.trajectory_commands(world.container, run) == [redact(a) for a in actions]
        steps = invariants.step_numbers(world.container, final, run.id)
        assert steps == sorted(steps)
        assert len(set(steps)) == len(steps)  # counting goes on after the resume: no step number twice
