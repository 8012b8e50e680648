"""No state of the solve state machine carries more than Step Functions' 256 KB (input, output, or an error's cause),
in the largest case: 16 runs, each failing with a very long error, and the solve failing outside its runs with one as
well. Executed by moto's interpreter (the real ASL and Task handler); every payload of the execution history is
measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from solver_core.errors import SandboxUnavailable
from solver_core.orchestrators.tasks import MAX_ERROR_CHARS
from solver_core.workflow.champion import SolveFlow
from solver_core.workflow.steps import RunSteps
from tests.contract.test_orchestration import BUGGY, FIX, TESTS, make_world
from tests.support.aws import use_fake_credentials
from tests.support.runtime import make_repo, start_solve, write_replay

pytestmark = pytest.mark.contract

STATE_LIMIT = 256 * 1024  # bytes, UTF-8, per state input/output and per error cause
RUNS = 16
LONG = "é" * 400_000  # 800 KB in UTF-8: alone over the limit


def payloads(history: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(event type, field, size in bytes) of every input, output and cause in the history."""
    found = []
    for event in history:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict):
                for field in ("input", "output", "cause"):
                    if isinstance(details.get(field), str):
                        found.append((event["type"], field, len(details[field].encode())))
    return found


def test_sixteen_runs_with_long_errors_keep_every_state_under_256_kb(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_credentials(monkeypatch)
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})

    def prepare_fails(self: RunSteps, run_id: UUID, window: object = None) -> bool:
        raise RuntimeError(f"the setup command failed: {LONG}")

    def launch_unavailable_once(self: RunSteps, run_id: UUID, _seen: set[UUID] = set()) -> str:  # noqa: B006
        if run_id not in _seen:  # retried by the state machine: the long message goes through Retry too
            _seen.add(run_id)
            raise SandboxUnavailable(f"e2b answered 503: {LONG}")
        return launch(self, run_id)

    def pick_fails(self: SolveFlow, solve_id: UUID) -> Any:
        raise RecursionError("maximum recursion depth exceeded: " + LONG)

    launch = RunSteps.launch
    monkeypatch.setattr(RunSteps, "launch", launch_unavailable_once)
    monkeypatch.setattr(RunSteps, "prepare", prepare_fails)
    monkeypatch.setattr(SolveFlow, "pick", pick_fails)
    with make_world("stepfunctions", tmp_path, postgres_url, max_runs_per_solve=RUNS, max_live_sandboxes=RUNS) as world:
        models = [write_replay(tmp_path / f"fix{i}.yaml", *FIX) for i in range(2)]  # 2 models x 8 attempts
        solve = start_solve(
            world.container, repo_url=str(repo), models=models, attempts_per_model=RUNS // 2, max_parallel=RUNS
        )
        done = world.run(solve)
        assert world.harness is not None
        history = world.harness.history(world.container.runs.solve(solve.id).execution_ref or "")
    assert done.status.value == "failed"
    assert [run.status.value for run in done.runs] == ["failed"] * RUNS
    assert all(LONG[:1000] in (run.error or "") for run in done.runs)  # what the run records keeps the message

    sizes = payloads(history)
    causes = [size for _, field, size in sizes if field == "cause"]
    assert len(causes) >= 2 * RUNS + 1  # each run's launch and prepare failures, and the pick's
    largest = max(sizes, key=lambda item: item[2])
    print(f"largest payload: {largest[2]} bytes ({largest[0]} {largest[1]}) of {len(sizes)} measured")
    assert largest[2] <= STATE_LIMIT, largest
    # The message cut to MAX_ERROR_CHARS characters (at most 6 bytes each once JSON-escaped), the trace bounded.
    assert max(causes) <= 6 * MAX_ERROR_CHARS + 16 * 1024


def test_an_error_is_shortened_keeping_its_class_name() -> None:
    from solver_core.orchestrators.tasks import bounded

    def deep(n: int, exc: Exception) -> None:
        if n == 0:
            raise exc
        deep(n - 1, exc)

    with pytest.raises(SandboxUnavailable) as ours:  # Solver's own errors are one line already
        deep(10, SandboxUnavailable("x" * 100_000))
    assert len(str(bounded(ours.value))) < 400
    assert str(bounded(ours.value)).endswith(SandboxUnavailable.hint)

    with pytest.raises(UnicodeError) as caught:  # a library's error keeps its whole text until bounded
        deep(200, UnicodeError("x" * 100_000))
    short = bounded(caught.value)
    assert type(short).__name__ == "UnicodeError"  # what Retry and Catch match
    assert len(str(short)) < MAX_ERROR_CHARS + 100
    assert str(short).endswith("(91808 more characters)")
    frames = 0
    tb = short.__traceback__
    while tb is not None:
        frames, tb = frames + 1, tb.tb_next
    assert frames <= 40
    assert json.dumps(str(short))
