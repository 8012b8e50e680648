"""The verification sandbox's life: cancelled, failed, reaped by the sweeper; and a patch too large
to read, which fails its run only."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from solver_core.orchestrators.local import LocalOrchestrator, run_to_end
from solver_core.sandbox.base import SandboxSpec
from solver_core.services.cancel import CancelService
from solver_core.status import RunStatus, SolveStatus
from solver_core.store.run_queries import RunQueries
from solver_core.wiring import Container
from solver_core.workflow.sweeper import Sweeper
from tests.support.runtime import make_repo, runtime, sandbox_backend, start_solve, write_replay

pytestmark = pytest.mark.integration

BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5, mean([1, 2])\nprint('ok')\n"
FIX = "sed -i 's|//|/|' calc.py"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


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


def verification_sandbox(container: Container, run_id: object, deadline: float) -> str:
    """The id of the run's verification sandbox, once VerifyPatch has recorded it."""
    while time.monotonic() < deadline:
        run = container.runs.get(run_id)  # type: ignore[arg-type]
        if run.status is RunStatus.VERIFYING and run.sandbox_id:
            events = container.events.read("tester", run.solve_id, limit=1000)
            if any(e.message == f"verification sandbox {run.sandbox_id} started" for e in events):
                return run.sandbox_id
        time.sleep(0.05)
    raise AssertionError("verification never started")


@pytest.mark.parametrize("backend", ["local-bwrap", "e2b"])
def test_a_cancel_during_verification_kills_the_verification_sandbox(
    container: Container, repo: Path, tmp_path: Path, backend: str
) -> None:
    model = write_replay(tmp_path / "fix.yaml", FIX, SUBMIT)
    solve = start_solve(container, repo_url=str(repo), models=[model], test_command="sleep 120")
    with sandbox_backend(backend, tmp_path) as (sandboxes, _service):
        orchestrator = LocalOrchestrator(container.pipeline(sandboxes), container.flow(), retry_time_scale=0)
        worker = threading.Thread(target=orchestrator.execute, args=(solve.id,))
        worker.start()
        box = verification_sandbox(container, solve.runs[0].id, time.monotonic() + 60)
        assert [s.metadata.get("purpose") for s in sandboxes.list({"run_id": str(solve.runs[0].id)})] == ["verify"]
        started = time.monotonic()
        cancel = CancelService(
            solves=container.solves, runs=container.runs, events=container.events,
            sandboxes=sandboxes, orchestrator=orchestrator, champion=container.flow(),
        )  # fmt: skip
        assert cancel.cancel("tester", solve.id).changed
        worker.join(60)
        assert not worker.is_alive()
        assert time.monotonic() - started < 30  # the test command died with its sandbox
        assert sandboxes.list({"app": "solver", "solve_id": str(solve.id)}) == []
        assert box not in [s.id for s in sandboxes.list({})]
    final = container.runs.solve(solve.id)
    assert final.status is SolveStatus.CANCELLED
    assert final.runs[0].status is RunStatus.CANCELLED
    assert final.runs[0].tests is None  # never reported as a verdict


def test_a_failed_verification_kills_its_sandbox_and_fails_the_run(
    container: Container, repo: Path, tmp_path: Path
) -> None:
    model = write_replay(tmp_path / "fix.yaml", FIX, SUBMIT)
    # Setup passes for the agent and fails only in the verification sandbox (it is a new sandbox).
    setup = "test -e $HOME/.prepared-once && exit 7; touch $HOME/.prepared-once"
    solve = start_solve(container, repo_url=str(repo), models=[model], setup_command=setup, test_command="true")
    with sandbox_backend("local-bwrap", tmp_path) as (sandboxes, _service):
        run = run_to_end(container.pipeline(sandboxes), solve.runs[0].id)
        assert sandboxes.list({"app": "solver"}) == []
    assert run.status is RunStatus.SUCCEEDED, "each sandbox is new: setup ran once in each"
    assert run.tests is not None
    assert run.tests.passed
    solve = start_solve(container, repo_url=str(repo), models=[model], setup_command="exit 7", test_command="true")
    with sandbox_backend("local-bwrap", tmp_path) as (sandboxes, _service):
        run = run_to_end(container.pipeline(sandboxes), solve.runs[0].id)
        assert sandboxes.list({"app": "solver"}) == []
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.startswith("RepositoryError")


def test_the_sweeper_reaps_a_verification_sandbox_its_step_never_recorded(
    container: Container, repo: Path, tmp_path: Path
) -> None:
    """VerifyPatch died between creating its sandbox and recording it: the run ends (here: failed),
    and the sweeper finds the sandbox by its metadata."""
    from tests.integration.test_sweeper import LocalResumer

    solve = start_solve(container, repo_url=str(repo), models=[write_replay(tmp_path / "m.yaml", "true")])
    run = solve.runs[0]
    container.runs.move(run.id, RunStatus.CANCELLED)
    with sandbox_backend("local-bwrap", tmp_path) as (sandboxes, _service):
        metadata = {"app": "solver", "stack": container.settings.stack_name, "solve_id": str(solve.id),
                    "run_id": str(run.id), "purpose": "verify"}  # fmt: skip
        orphan = sandboxes.create(SandboxSpec(metadata=metadata, lifetime_s=600)).id
        pipeline = container.pipeline(sandboxes)
        resumer = LocalResumer(LocalOrchestrator(pipeline, container.flow(), retry_time_scale=0))
        queries = RunQueries(container.sessions)
        sweeper = Sweeper(
            pipeline=pipeline, flow=container.flow(), settings=container.settings, queries=queries, orchestrator=resumer
        )
        assert sweeper.sweep(now=datetime.now(UTC)).killed_sandboxes == [orphan]
        assert sandboxes.list({"app": "solver"}) == []


@pytest.mark.parametrize("backend", ["local-bwrap", "e2b"])
def test_a_one_gigabyte_file_fails_its_run_with_patch_too_large_and_the_solve_goes_on(
    container: Container, repo: Path, tmp_path: Path, backend: str
) -> None:
    huge = write_replay(tmp_path / "huge.yaml", "truncate -s 1G data.bin", SUBMIT)
    fix = write_replay(tmp_path / "fix.yaml", FIX, SUBMIT)
    solve = start_solve(container, repo_url=str(repo), models=[huge, fix], test_command="python3 test_calc.py")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with sandbox_backend(backend, tmp_path) as (sandboxes, _service):
        done = LocalOrchestrator(container.pipeline(sandboxes), container.flow(), retry_time_scale=0).execute(solve.id)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 200, f"reading the patch cost {grown_mib:.0f} MiB"
    big, fixed = container.runs.solve(done.id).runs
    assert big.status is RunStatus.FAILED
    assert big.error is not None
    assert big.error.startswith("PatchTooLarge: the patch is larger than the limit of 5000000 bytes")
    assert "data.bin" in big.error
    assert not big.retryable
    assert fixed.status is RunStatus.SUCCEEDED
    assert done.status is SolveStatus.SUCCEEDED
    assert done.champion_run_id == fixed.id
