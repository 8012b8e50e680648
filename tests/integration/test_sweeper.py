"""The retry sweeper and the reconciler: runs are resumed from their checkpoints, attempts are
bounded, stale runs are failed, and no sandbox outlives its run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from solver_core.artifacts import keys
from solver_core.db.migrate import upgrade
from solver_core.models import SolveView
from solver_core.orchestrators.local import LocalOrchestrator, run_to_end
from solver_core.ports import SandboxBackend
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.local import LocalSandboxBackend
from solver_core.status import RunStatus, SolveStatus
from solver_core.store.run_queries import RunQueries
from solver_core.wiring import Container, build_container
from solver_core.workflow import agent_step
from solver_core.workflow.sweeper import Sweeper
from tests.support.runtime import make_repo, runtime_settings, start_solve, write_replay

pytestmark = pytest.mark.integration

LATER = datetime.now(UTC) + timedelta(days=1)


class LocalResumer:
    """Stands in for Step Functions: a resume 'execution' runs the re-queued runs in-process."""

    def __init__(self, orchestrator: LocalOrchestrator) -> None:
        self.orchestrator = orchestrator
        self.execute = True  # False: record the resume but run nothing (the execution "starts later")
        self.resumed: list[tuple[UUID, list[UUID], int]] = []
        self.started: list[UUID] = []
        self.running: set[str] = set()

    def start(self, solve_id: UUID) -> str:
        self.started.append(solve_id)
        return f"start:{solve_id}"

    def resume(self, solve_id: UUID, run_ids: list[UUID], attempt: int) -> str:
        self.resumed.append((solve_id, run_ids, attempt))
        if self.execute:
            self.orchestrator.execute(solve_id, run_ids)
        return f"resume:{solve_id}:{attempt}"

    def is_running(self, execution_ref: str | None) -> bool:
        return execution_ref in self.running


@pytest.fixture
def container(tmp_path: Path, database_url: str) -> Iterator[Container]:
    built = build_container(runtime_settings(tmp_path, database_url, max_run_attempts=3, retry_backoff_s=60))
    upgrade(built.engine)
    yield built
    built.close()


@pytest.fixture
def sandboxes(tmp_path: Path) -> SandboxBackend:
    return LocalSandboxBackend(tmp_path / "sandboxes", isolation="none")


def sweeper_for(container: Container, sandboxes: SandboxBackend) -> tuple[Sweeper, LocalResumer]:
    pipeline = container.pipeline(sandboxes)
    resumer = LocalResumer(LocalOrchestrator(pipeline, container.flow(), retry_time_scale=0))
    sweeper = Sweeper(
        pipeline=pipeline, flow=container.flow(), orchestrator=resumer, settings=container.settings,
        queries=RunQueries(container.sessions),
    )  # fmt: skip
    return sweeper, resumer


def fail_mid_run(container: Container, sandboxes: SandboxBackend, solve: SolveView) -> None:
    """Run until step 3 is under way (its command touches `.lost` first), then kill the sandbox (as if
    e2b lost it)."""
    pipeline = container.pipeline(sandboxes)
    run_id = solve.runs[0].id
    worker = threading.Thread(
        target=run_to_end,
        args=(
            pipeline,
            run_id,
        ),
    )
    worker.start()
    deadline = time.monotonic() + 30
    while container.runs.get(run_id).steps < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sandbox_id = container.runs.get(run_id).sandbox_id or ""
    box = sandboxes.connect(sandbox_id)
    while "yes" not in box.run("test -e .lost && echo yes || true", cwd=box.workdir, timeout=10).output:
        assert time.monotonic() < deadline, "step 3 never started"
        time.sleep(0.05)
    sandboxes.kill(sandbox_id)
    worker.join(30)
    container.flow().run_and_finish(solve.id)


def test_a_lost_sandbox_is_resumed_from_the_checkpoint_and_counting_goes_on(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A partial diff after every step (they are throttled to one a second), so no step is rewound.
    monkeypatch.setattr(agent_step, "PARTIAL_DIFF_INTERVAL_S", 0.0)
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    model = write_replay(
        tmp_path / "work.yaml",
        "echo one > one.txt",
        "echo two > two.txt",
        "touch .lost && sleep 20",
        "echo three > three.txt",
        "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
    )
    solve = start_solve(container, repo_url=str(repo), models=[model])
    fail_mid_run(container, sandboxes, solve)
    failed = container.runs.get(solve.runs[0].id)
    assert (failed.status, failed.retryable, failed.steps) == (RunStatus.FAILED, True, 3)
    assert container.runs.solve(solve.id).status is SolveStatus.RUNNING  # a retry is pending: not finished

    sweeper, resumer = sweeper_for(container, sandboxes)
    assert sweeper.sweep(now=datetime.now(UTC)).requeued == []  # inside the backoff: not yet
    report = sweeper.sweep(now=LATER)
    assert report.requeued == [str(failed.id)]
    assert resumer.resumed == [(solve.id, [failed.id], 1)]

    run = container.runs.get(failed.id)
    assert (run.status, run.attempt, run.exit_status) == (RunStatus.SUCCEEDED, 1, "Submitted")
    assert run.steps == 5  # 3 before the loss, 2 after: the replay went on where it stopped
    patch = container.artifacts.get(run.artifacts["patch"]).decode()
    for name in ("one.txt", "two.txt", "three.txt"):  # changes from before the loss were restored
        assert name in patch
    trajectory = json.loads(container.artifacts.get(run.artifacts["trajectory"]))
    commands = [a["command"] for m in trajectory["messages"] for a in (m.get("extra") or {}).get("actions", [])]
    assert commands == [
        "echo one > one.txt", "echo two > two.txt", "touch .lost && sleep 20", "echo three > three.txt",
        "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
    ]  # fmt: skip
    interrupted = [m for m in trajectory["messages"] if m["role"] == "tool" and "interrupted" in str(m["content"])]
    assert len(interrupted) == 1  # the lost command got an answer, so the conversation stays well-formed
    assert all(m["role"] != "exit" for m in trajectory["messages"][:-1])  # the error exit was not kept
    assert container.runs.solve(solve.id).status is SolveStatus.SUCCEEDED


def test_attempts_are_bounded(container: Container, sandboxes: SandboxBackend, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    solve = start_solve(container, repo_url=str(repo), models=[write_replay(tmp_path / "m.yaml", "true")])
    run_id = solve.runs[0].id
    sweeper, resumer = sweeper_for(container, sandboxes)
    for attempt in range(3):
        container.runs.move(run_id, RunStatus.LAUNCHING)
        container.runs.move(run_id, RunStatus.FAILED, error="SandboxGone: lost", retryable=True)
        if attempt < 2:
            resumer.execute = False
            assert sweeper.sweep(now=LATER).requeued == [str(run_id)]
    assert container.runs.get(run_id).attempt == 2
    assert sweeper.sweep(now=LATER).requeued == []  # the third failure was the last attempt
    finished = container.flow().run_and_finish(solve.id)
    assert finished.status is SolveStatus.FAILED


def test_a_stale_run_whose_execution_is_gone_is_failed_and_retried(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    solve = start_solve(container, repo_url=str(repo), models=[write_replay(tmp_path / "m.yaml", "true")])
    run_id = solve.runs[0].id
    container.runs.set_solve_fields(solve.id, execution_ref="exec-1")
    for status in (RunStatus.LAUNCHING, RunStatus.PREPARING, RunStatus.SOLVING):
        container.runs.move(run_id, status)
    sweeper, resumer = sweeper_for(container, sandboxes)
    resumer.running.add("exec-1")
    assert sweeper.sweep(now=LATER).stale == []  # its execution still runs: leave it alone
    resumer.running.clear()
    resumer.execute = False
    report = sweeper.sweep(now=LATER + timedelta(hours=1))
    assert report.stale == [str(run_id)]
    assert report.requeued == [str(run_id)]  # failed as retryable, then re-queued in the same sweep
    run = container.runs.get(run_id)
    assert (run.status, run.attempt) == (RunStatus.QUEUED, 1)
    errors = [e.message for e in container.events.read("tester", solve.id, limit=500) if e.kind.value == "error"]
    assert any(message.startswith("StaleHeartbeat") for message in errors)


def test_sandboxes_of_finished_or_unknown_runs_are_reaped(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    solve = start_solve(
        container, repo_url=str(repo), models=[write_replay(tmp_path / "m.yaml", "true")], attempts_per_model=2
    )
    finished, live = solve.runs
    container.runs.move(finished.id, RunStatus.CANCELLED)
    container.runs.move(live.id, RunStatus.LAUNCHING)
    stack = container.settings.stack_name

    def sandbox_for(run_id: str) -> str:
        return sandboxes.create(
            SandboxSpec(metadata={"app": "solver", "stack": stack, "run_id": run_id}, lifetime_s=300)
        ).id

    doomed = {sandbox_for(str(finished.id)), sandbox_for("00000000-0000-0000-0000-000000000000")}
    kept = sandbox_for(str(live.id))
    sweeper, _ = sweeper_for(container, sandboxes)
    assert set(sweeper.sweep(now=datetime.now(UTC)).killed_sandboxes) == doomed
    assert [s.id for s in sandboxes.list({"app": "solver"})] == [kept]


def test_the_reconciler_settles_runs_of_an_execution_that_ended(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    solve = start_solve(container, repo_url=str(repo), models=[write_replay(tmp_path / "m.yaml", "sleep 30")])
    run_id = solve.runs[0].id
    pipeline = container.pipeline(sandboxes)
    pipeline.steps.launch(run_id)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:solver-solve:{solve.id}"
    container.runs.set_solve_fields(solve.id, execution_ref=arn)
    sweeper, _ = sweeper_for(container, sandboxes)
    settled = sweeper.reconcile(arn, "TIMED_OUT")
    assert settled is not None
    run = container.runs.get(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.startswith("ExecutionEnded")
    assert run.retryable
    assert sandboxes.list({"run_id": str(run_id)}) == []
    assert settled.status is SolveStatus.RUNNING  # the run will be retried by the sweeper
    assert sweeper.reconcile(arn.replace(str(solve.id), "not-a-solve"), "FAILED") is None
    assert container.artifacts.list(keys.run_prefix(solve.id, run_id))  # its log was kept


def test_a_queued_solve_whose_start_failed_is_started(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    solve = start_solve(container, repo_url=str(repo), models=[write_replay(tmp_path / "m.yaml", "true")])
    sweeper, resumer = sweeper_for(container, sandboxes)
    assert sweeper.sweep(now=datetime.now(UTC)).started == []  # just created: its start may be under way
    report = sweeper.sweep(now=LATER)
    assert resumer.started == [solve.id]
    assert report.started == [f"start:{solve.id}"]
    assert container.runs.solve(solve.id).execution_ref == f"start:{solve.id}"


class RefusingResumer(LocalResumer):
    """Step Functions refusing to start one solve's execution (throttled, say)."""

    def __init__(self, orchestrator: LocalOrchestrator, refused: UUID) -> None:
        super().__init__(orchestrator)
        self.refused = refused

    def start(self, solve_id: UUID) -> str:
        if solve_id == self.refused:
            raise RuntimeError("ThrottlingException: rate exceeded")
        return super().start(solve_id)


def test_one_failing_item_does_not_stop_the_sweep(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    model = write_replay(tmp_path / "m.yaml", "true")
    first, second = (start_solve(container, repo_url=str(repo), models=[model]) for _ in range(2))
    leaked = sandboxes.create(
        SandboxSpec(metadata={"app": "solver", "stack": container.settings.stack_name, "run_id": "x"}, lifetime_s=300)
    ).id
    sweeper, _ = sweeper_for(container, sandboxes)
    resumer = RefusingResumer(sweeper.orchestrator.orchestrator, refused=first.id)  # type: ignore[attr-defined]
    sweeper.orchestrator = resumer
    report = sweeper.sweep(now=LATER)
    assert resumer.started == [second.id]  # the refused start did not stop the next one
    assert len(report.errors) == 1
    assert str(first.id) in report.errors[0]
    assert "ThrottlingException" in report.errors[0]
    assert report.killed_sandboxes == [leaked]  # reaping ran after the failure
    assert container.runs.solve(first.id).execution_ref is None  # still forgotten: the next sweep tries again


def test_reaping_runs_even_when_the_database_queries_fail(
    container: Container, sandboxes: SandboxBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked = sandboxes.create(
        SandboxSpec(metadata={"app": "solver", "stack": container.settings.stack_name, "run_id": "x"}, lifetime_s=300)
    ).id
    sweeper, _ = sweeper_for(container, sandboxes)

    def broken(*_args: object, **_kwargs: object) -> list[object]:
        raise RuntimeError("the query failed")

    monkeypatch.setattr(sweeper.queries, "open_solves", broken)
    monkeypatch.setattr(sweeper.queries, "stale_runs", broken)
    report = sweeper.sweep(now=LATER)
    assert report.killed_sandboxes == [leaked]
    assert len(report.errors) == 3  # start forgotten, fail stale, finish open


def publishing_solve(container: Container, tmp_path: Path, *commands: str) -> SolveView:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    return start_solve(
        container,
        repo_url=str(repo),
        models=[write_replay(tmp_path / "m.yaml", *commands)],
        issue={"title": "Fix the bug", "url": "https://github.com/org/repo/issues/1"},
        publish={"comment": True},
    )


def publish_attempts(container: Container, solve: SolveView) -> list[str]:
    """Publishing without GitHub credentials records why on the solve: proof that it was attempted."""
    events = container.events.read("tester", solve.id, limit=500)
    return [e.message for e in events if e.kind.value == "error" and "publish" in e.message.lower()]


def test_a_solve_the_sweeper_finishes_is_published(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    solve = publishing_solve(container, tmp_path, "true")
    run_id = solve.runs[0].id
    container.runs.move_solve(solve.id, SolveStatus.RUNNING)
    container.runs.move(run_id, RunStatus.LAUNCHING)
    container.runs.move(run_id, RunStatus.FAILED, error="SandboxGone: lost", retryable=False)
    sweeper, _ = sweeper_for(container, sandboxes)
    report = sweeper.sweep(now=LATER)
    assert report.finished == [f"{solve.id}:failed"]
    assert report.published == [str(solve.id)]
    assert publish_attempts(container, solve)
    assert container.runs.solve(solve.id).publication is not None


def test_a_solve_the_reconciler_finishes_is_published(
    container: Container, sandboxes: SandboxBackend, tmp_path: Path
) -> None:
    solve = publishing_solve(container, tmp_path, "sleep 30")
    run_id = solve.runs[0].id
    container.runs.move_solve(solve.id, SolveStatus.RUNNING)
    for _ in range(2):  # its last attempt: the execution's end leaves nothing to retry
        container.runs.move(run_id, RunStatus.LAUNCHING)
        container.runs.move(run_id, RunStatus.FAILED, error="SandboxGone: lost", retryable=True)
        container.runs.move(run_id, RunStatus.QUEUED)
    container.runs.move(run_id, RunStatus.LAUNCHING)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:solver-solve:{solve.id}"
    container.runs.set_solve_fields(solve.id, execution_ref=arn)
    sweeper, _ = sweeper_for(container, sandboxes)
    settled = sweeper.reconcile(arn, "ABORTED")
    assert settled is not None
    assert settled.status is SolveStatus.FAILED
    assert publish_attempts(container, solve)
