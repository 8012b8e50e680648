"""`solver status` reads a solve through the database driver, without SQLAlchemy
(store/direct_read.py): the same view `SolveService.get` gives, on both databases, and the usual
path whenever there is more to do than read."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import JSON, Boolean, Uuid
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from solver_core.cli import app
from solver_core.db.schema import RunRow, SolveRow, UTCDateTime
from solver_core.models import SolveRequest
from solver_core.settings import local_owner
from solver_core.store import direct_read
from solver_core.store.direct_read import DirectReader, open_reader
from solver_core.store.views import RunFields, SolveFields
from solver_core.workflow import process_ref
from tests.conftest import Services
from tests.support.api import solve_body

pytestmark = pytest.mark.integration

OWNER = "alice"


@pytest.fixture
def reader(database_url: str) -> Iterator[DirectReader]:
    opened = open_reader(database_url)
    assert opened is not None
    yield opened
    opened.close()


def start(services: Services, owner: str = OWNER) -> UUID:
    request = SolveRequest.model_validate(solve_body(publish={"pull_request": True}))
    return services.solves.start(owner, request).solve.id


def finish_runs(sessions: sessionmaker[Session], solve_id: UUID) -> None:
    """Every kind of value the columns hold: JSON documents, timestamps, booleans, UUIDs, NULLs."""
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with sessions.begin() as session:
        attempts = session.query(RunRow).filter_by(solve_id=solve_id, kind="attempt").order_by(RunRow.index)
        first, second, *_ = attempts.all()
        first.status, first.exit_status, first.steps, first.cost_usd, first.tokens = (
            "succeeded",
            "Submitted",
            7,
            0.125,
            900,
        )
        first.patch_stats = {"files": 2, "added": 5, "removed": 1}
        first.tests = {
            "passed": True,
            "command": "pytest -q",
            "exit_code": 0,
            "duration_s": 1.5,
            "output_key": "solves/x/tests.txt",
        }
        first.patch_key, first.trajectory_key = "solves/x/0.patch", "solves/x/0.traj.json"
        first.retryable, first.base_commit, first.sandbox_id = True, "a" * 40, "sbx-1"
        first.started_at, first.heartbeat_at, first.finished_at = (
            at,
            at + timedelta(seconds=5),
            at + timedelta(seconds=9),
        )
        first.reproduce_key = "solves/x/0.reproduce.py"
        second.status, second.error = "failed", "AgentError: the model said no"
        second.reproduction = {"target_run_id": str(first.id), "authors": [], "scripts": []}
        second.started_at, second.finished_at = at, at + timedelta(seconds=3)
        solve = session.get(SolveRow, solve_id)
        assert solve is not None
        solve.status, solve.champion_run_id, solve.started_at = "running", first.id, at
        solve.detect_tests, solve.selection_cost_usd = False, 0.5
        solve.reproduce, solve.reproduce_command = True, "python reproduce.py"
        solve.publication = {"comment_url": "https://github.com/org/repo/issues/1#issuecomment-2"}


def test_the_direct_read_is_the_services_view(services: Services, sessions: Any, reader: DirectReader) -> None:
    solve_id = start(services)
    assert reader.solve(OWNER, solve_id) == services.solves.get(OWNER, solve_id)  # queued, nothing run yet
    finish_runs(sessions, solve_id)
    direct = reader.solve(OWNER, solve_id)
    assert direct == services.solves.get(OWNER, solve_id)
    assert direct is not None
    assert direct.champion_run_id == direct.runs[0].id
    assert direct.runs[0].started_at == datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert direct.publication is not None
    assert direct.publish is not None
    assert direct.reproduce is True
    assert direct.runs[0].reproduce_script is True
    assert direct.runs[1].reproduction is not None


def test_another_owners_solve_and_an_unknown_one_are_not_read(services: Services, reader: DirectReader) -> None:
    solve_id = start(services)
    assert reader.solve("mallory", solve_id) is None
    assert reader.solve(OWNER, uuid4()) is None


def test_an_unmigrated_database_is_left_to_the_migrations(empty_database_url: str) -> None:
    reader = open_reader(empty_database_url)
    if reader is None:  # SQLite: no file yet, the usual path creates it
        assert not Path(empty_database_url.removeprefix("sqlite:///")).exists()
        return
    try:
        assert reader.at_newest() is False
    finally:
        reader.close()


def test_a_migrated_database_is_at_the_newest_revision(reader: DirectReader) -> None:
    assert reader.at_newest() is True


def test_only_unfinished_solves_run_by_a_local_process_are_listed(services: Services, reader: DirectReader) -> None:
    running, finished = start(services), start(services)
    services.runs.set_solve_fields(running, execution_ref=process_ref.execution_ref(running))
    services.runs.set_solve_fields(finished, execution_ref=process_ref.execution_ref(finished), status="succeeded")
    assert reader.open_execution_refs(process_ref.PREFIX) == [process_ref.execution_ref(running)]


def test_urls_only_sqlalchemy_reads_are_left_to_it(tmp_path: Path) -> None:
    assert open_reader(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert open_reader("sqlite://") is None  # in memory
    assert open_reader("mysql+pymysql://u:p@localhost/db") is None


def test_the_columns_read_are_the_schemas_and_the_views(reader: DirectReader) -> None:
    """A column added to the views or the schema must be added here too, with its decoding."""
    for columns, fields, row in (
        (direct_read.SOLVE_COLUMNS, SolveFields, SolveRow),
        (direct_read.RUN_COLUMNS, RunFields, RunRow),
    ):
        assert set(columns) == {name for name in vars(fields) if not name.startswith("_")}
        table = row.__table__.columns
        for name in columns:
            column_type = table[name].type
            assert (name in direct_read.UUID_COLUMNS) == isinstance(column_type, Uuid), name
            assert (name in direct_read.JSON_COLUMNS) == isinstance(column_type, JSON), name
            assert (name in direct_read.DATETIME_COLUMNS) == isinstance(column_type, UTCDateTime), name
            assert (name in direct_read.BOOL_COLUMNS) == isinstance(column_type, Boolean), name


# The command itself, on each database: the direct read answers, or the usual path does.


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SOLVER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOLVER_DATABASE_URL", database_url)
    return database_url


def status(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["status", *args])
    return result.exit_code, result.output


def test_status_shows_the_same_solve_either_way(
    cli_env: str, services: Services, sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    solve_id = start(services, local_owner())
    finish_runs(sessions, solve_id)
    direct = [status(str(solve_id)), status(str(solve_id), "--json")]
    monkeypatch.setattr(direct_read, "open_reader", lambda url: None)  # the usual path only
    usual = [status(str(solve_id)), status(str(solve_id), "--json")]
    assert direct == usual
    assert direct[0][0] == 0
    shown = json.loads(direct[1][1])
    assert shown["champion_run_id"] == shown["runs"][0]["id"]
    assert f"solve {solve_id}: running" in direct[0][1]


def test_status_of_an_unknown_solve_is_an_error(cli_env: str) -> None:
    code, output = status(str(uuid4()))
    assert code == 1
    assert "not found" in output


def test_status_settles_a_solve_left_by_a_process_that_ended(cli_env: str, services: Services) -> None:
    solve_id = start(services, local_owner())
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_ref = f"{process_ref.PREFIX}{socket.gethostname()}:{int(ended.stdout)}:1:{solve_id}"
    services.runs.set_solve_fields(solve_id, execution_ref=dead_ref, status="running")
    code, output = status(str(solve_id), "--json")
    assert code == 0
    assert "left unfinished by a process that ended" in output
    shown = json.loads(output[output.index("{") :])
    assert {run["status"] for run in shown["runs"]} == {"failed"}  # settled: `solver resume` continues it


def test_status_imports_neither_sqlalchemy_nor_pygments(cli_env: str, services: Services) -> None:
    solve_id = start(services, local_owner())
    script = (
        "import json, sys\n"
        f"sys.argv = ['solver', 'status', '{solve_id}']\n"
        "from solver_core.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert {"sqlalchemy", "pygments", "alembic", "litellm"}.isdisjoint(loaded)
    assert f"solve {solve_id}: queued" in done.stderr  # the console writes to stderr (cli/output.py)
