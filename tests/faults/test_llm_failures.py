"""Faults of the LLM provider, through the real LitellmModel against the loopback OpenAI-compatible
fake: a storm of 429s in the middle of a run (more than mini-swe-agent's own retries absorb: the
run fails as retryable and is resumed), and 500s that never stop (every attempt is used up and
the solve fails, with everything it did kept)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minisweagent.models import litellm_model
from minisweagent.models.utils.retry import retry as minisweagent_retry
from tenacity import Retrying, wait_none

from solver_core.db.schema import AIModelRow
from solver_core.errors import ModelUnavailable
from solver_core.status import RunStatus, SolveStatus
from tests.fakes.llm_server import FakeLLMServer, _Reply, error_body
from tests.faults import invariants
from tests.faults.world import CANARY_ENV, FIX, NOSY_ACTIONS, TEST_COMMAND, FaultWorld, fault_world

pytestmark = pytest.mark.faults

MODEL = "openai/solver-faults-model"
TRIES_PER_QUERY = 3


class PlannedFailures(FakeLLMServer):
    """Fails the requests whose ordinal (1-based, refused ones counted) is in the plan."""

    def __init__(self, plan: dict[int, int]) -> None:
        super().__init__()
        self.plan = plan
        self._count = 0
        self._count_lock = threading.Lock()

    def _refusal(self, path: str, headers: dict[str, str], body: Any) -> _Reply | None:
        with self._count_lock:
            self._count += 1
            status = self.plan.get(self._count)
        if status is not None:
            return _Reply(status, error_body(status, f"planned failure {status}"), {"retry-after-ms": "0"})
        return super()._refusal(path, headers, body)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_wait(**kwargs: Any) -> Retrying:
        return minisweagent_retry(**kwargs).copy(wait=wait_none())

    monkeypatch.setattr(litellm_model, "retry", no_wait)  # mini-swe-agent waits 4-60 s between tries
    monkeypatch.setenv("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", str(TRIES_PER_QUERY))


@pytest.fixture
def world(tmp_path: Path, canaries: list[str]) -> Iterator[FaultWorld]:
    with fault_world(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", canaries) as built:
        yield built


def serve(world: FaultWorld, plan: dict[int, int], *commands: str) -> FakeLLMServer:
    llm = PlannedFailures(plan).start()
    llm.api_key = CANARY_ENV["OPENAI_API_KEY"]  # what litellm sends: the canary in the environment
    llm.script(*commands)  # then the fake submits
    with world.container.sessions.begin() as session:
        session.add(
            AIModelRow(
                name=MODEL,
                provider="openai",
                model_kwargs={"api_base": llm.base_url, "max_retries": 0},
                input_cost_per_token=2**-20,
                output_cost_per_token=2**-18,
            )
        )
    return llm


def test_a_429_storm_mid_run_is_outlasted_by_resuming(world: FaultWorld) -> None:
    # Requests 3-7 fail: the third query's 3 tries, then 2 more after the resume (which then works).
    llm = serve(world, dict.fromkeys(range(3, 8), 429), *NOSY_ACTIONS[:1], FIX, TEST_COMMAND)
    try:
        solve = world.start(models=[MODEL])
        final = world.check(world.run(solve))
    finally:
        llm.stop()
    assert final.status is SolveStatus.SUCCEEDED, final.error
    (run,) = final.runs
    assert (run.status, run.attempt, run.exit_status) == (RunStatus.SUCCEEDED, 1, "Submitted")
    assert run.tests is not None
    assert run.tests.passed
    assert invariants.trajectory_commands(world.container, run)[:2] == ["env | sort", FIX]
    assert len(llm.requests) == 5 + 4  # 5 refused, 4 answered (two actions, the test, the submit)


def test_500s_that_never_stop_use_up_the_attempts_and_keep_the_work(world: FaultWorld) -> None:
    llm = serve(world, dict.fromkeys(range(3, 100), 500), "cat calc.py", FIX)
    try:
        solve = world.start(models=[MODEL])
        final = world.check(world.run(solve))
    finally:
        llm.stop()
    assert final.status is SolveStatus.FAILED
    (run,) = final.runs
    assert (run.status, run.retryable, run.attempt) == (RunStatus.FAILED, True, 2)
    assert (run.error or "").startswith(ModelUnavailable.__name__)
    assert run.steps == 2 + 3  # two steps, then one failed query per attempt
    assert invariants.trajectory_commands(world.container, run) == ["cat calc.py", FIX]
    assert len(llm.requests) == 2 + 3 * TRIES_PER_QUERY
