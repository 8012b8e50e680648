"""Fault: the database connections drop while a run is between steps (its command runs in the
sandbox, so it holds no query open): PostgreSQL terminates every backend of the database, or the
server restarts. The pool notices dead connections when it hands them out (pre-ping) and the run
goes on. A database still down when a step ends is waited for (store/outage.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from solver_core.status import RunStatus, SolveStatus
from solver_core.store import outage
from solver_core.store.run_queries import RunQueries
from solver_core.workflow.sweeper import Sweeper
from tests.faults import invariants
from tests.faults.world import FIX, NOSY_ACTIONS, SUBMIT, TEST_COMMAND, FaultWorld, fault_world
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.faults

OBSERVER = "faults-observer"
DB_PASSWORD = "canaryDbPassw0rd-8c1f2e7a"  # trust auth ignores it; the redactor must hide it anyway


def with_password(url: str) -> str:
    return make_url(url).set(password=DB_PASSWORD).render_as_string(hide_password=False)


def observer(url: str) -> Engine:
    """A connection of its own (never pooled) to watch and to kill the others with."""
    target = make_url(url).set(drivername="postgresql+psycopg")
    return create_engine(target, poolclass=NullPool, connect_args={"application_name": OBSERVER})


def steps_of(engine: Engine, run_id: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT steps FROM runs WHERE id = :id"), {"id": run_id}).scalar_one())


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


def terminate_others(engine: Engine) -> int:
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> :me"
            ),
            {"me": OBSERVER},
        ).scalar_one()
        conn.commit()
    return int(killed)


@pytest.fixture
def world(tmp_path: Path, postgres_url: str, canaries: list[str]) -> Iterator[FaultWorld]:
    with fault_world(tmp_path, with_password(postgres_url), [*canaries, DB_PASSWORD]) as built:
        yield built


def test_terminated_connections_between_steps_are_replaced(world: FaultWorld) -> None:
    sleeps = [world.marker(0.5) for _ in range(3)]
    actions = (NOSY_ACTIONS[0], sleeps[0], FIX, sleeps[1], sleeps[2], TEST_COMMAND, SUBMIT)
    solve = world.start(models=[world.replay("work", *actions)])
    watcher = observer(world.container.settings.resolved_database_url)
    worker = world.run_in_background(solve)
    killed = 0
    for marker in sleeps:  # while each sleep runs, the run's connections sit idle in the pool
        wait_until(lambda m=marker: invariants.stray_processes([m]), f"{marker} running")
        killed += terminate_others(watcher)
    worker.join(60)
    watcher.dispose()
    assert killed >= 1  # the pool's idle connections were there to be killed
    final = world.check(solve)
    assert final.status is SolveStatus.SUCCEEDED, final.error
    (run,) = final.runs
    assert (run.status, run.attempt, run.steps) == (RunStatus.SUCCEEDED, 0, len(actions))


def test_a_server_restart_between_steps_is_survived(tmp_path: Path, canaries: list[str]) -> None:
    server = PostgresServer().start()
    try:
        url = with_password(server.admin_url)
        with fault_world(tmp_path, url, [*canaries, DB_PASSWORD]) as world:
            slow = world.marker(2)
            actions = ("cat calc.py", FIX, slow, TEST_COMMAND, SUBMIT)
            solve = world.start(models=[world.replay("work", *actions)])
            worker = world.run_in_background(solve)
            wait_until(lambda: invariants.stray_processes([slow]), "the slow step")
            stop(server)
            start(server)  # well within the 2 s step
            worker.join(60)
            final = world.check(solve)
    finally:
        server.stop()
    assert final.status is SolveStatus.SUCCEEDED, final.error
    (run,) = final.runs
    assert (run.status, run.attempt, run.steps) == (RunStatus.SUCCEEDED, 0, len(actions))


def test_a_database_down_when_a_step_ends_is_waited_out(tmp_path: Path, canaries: list[str]) -> None:
    server = PostgresServer().start()
    try:
        url = with_password(server.admin_url)
        with fault_world(tmp_path, url, [*canaries, DB_PASSWORD]) as world:
            slow = world.marker(1)
            actions = ("cat calc.py", FIX, slow, TEST_COMMAND, SUBMIT)
            solve = world.start(models=[world.replay("work", *actions)])
            worker = world.run_in_background(solve)
            wait_until(lambda: invariants.stray_processes([slow]), "the slow step")
            stop(server)
            time.sleep(2.5)  # the step ends while the database is down
            start(server)
            worker.join(90)
            final = world.check(solve)
    finally:
        server.stop()
    assert final.status is SolveStatus.SUCCEEDED, final.error
    (run,) = final.runs
    assert (run.status, run.attempt, run.steps) == (RunStatus.SUCCEEDED, 0, len(actions))


def stop(server: PostgresServer) -> None:
    from tests.support.postgres import find_binary

    server._run(find_binary("pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop")


def start(server: PostgresServer) -> None:
    from tests.support.postgres import SERVER_OPTIONS, find_binary

    options = f"-p {server.port} -k {server.base} {SERVER_OPTIONS}"
    log = str(server.base / "server.log")
    server._run(find_binary("pg_ctl"), "-D", str(server.data), "-o", options, "-l", log, "-w", "start")


class Resumer:
    """Stands in for Step Functions under the sweeper: a resume runs the re-queued runs in-process."""

    def __init__(self, world: FaultWorld) -> None:
        self.world = world

    def start(self, solve_id: UUID) -> str:
        return f"start:{solve_id}"

    def resume(self, solve_id: UUID, run_ids: list[UUID], attempt: int) -> str:
        self.world.orchestrator.execute(solve_id, run_ids)
        return f"resume:{solve_id}:{attempt}"

    def is_running(self, execution_ref: str | None) -> bool:
        return False


def test_a_longer_outage_releases_the_sandbox_and_the_sweeper_resumes_the_run(
    tmp_path: Path, canaries: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outage, "OUTAGE_DELAYS_S", (0.05,) * 4)  # the services give up after 0.2 s
    server = PostgresServer().start()
    try:
        with fault_world(tmp_path, with_password(server.admin_url), [*canaries, DB_PASSWORD]) as world:
            slow = world.marker(2)
            actions = ("cat calc.py", FIX, slow, TEST_COMMAND, SUBMIT)
            solve = world.start(models=[world.replay("work", *actions)])
            worker = world.run_in_background(solve)
            wait_until(lambda: invariants.stray_processes([slow]), "the slow step")
            stop(server)
            worker.join(60)
            assert world.errors  # the execution could not even read its run back; the sweeper takes over
            assert world.live_sandboxes() == []  # released by the id it was launched with
            start(server)
            sweeper = Sweeper(
                pipeline=world.pipeline, flow=world.container.flow(), orchestrator=Resumer(world),
                settings=world.container.settings, queries=RunQueries(world.container.sessions),
            )  # fmt: skip
            report = sweeper.sweep(now=datetime.now(UTC) + timedelta(days=1))
            assert report.stale == [str(solve.runs[0].id)]
            final = world.check(solve)
    finally:
        server.stop()
    assert final.status is SolveStatus.SUCCEEDED, final.error
    (run,) = final.runs
    assert (run.status, run.attempt) == (RunStatus.SUCCEEDED, 1)
    assert invariants.trajectory_commands(world.container, run) == list(actions)
