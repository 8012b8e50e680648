"""One solve read straight through the database driver (sqlite3, or psycopg for PostgreSQL), without
importing SQLAlchemy: `solver status` answers in a fraction of the time the ORM takes to import
(BENCHMARKS.md §10). Read only; anything it cannot answer as the ORM would (another driver, an
unmigrated database) is left to the services: `open_reader` returns None and the caller takes the
usual path.

The rows are decoded into the same Python values SQLAlchemy's column types give (UUIDs, JSON,
timezone-aware UTC datetimes, booleans) and shaped by the same `store/views.py` functions, so the
view is the one `SolveService.get` returns (tests/integration/test_direct_read.py compares them on
both databases, and checks these column lists against db/schema.py).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import unquote
from uuid import UUID

from solver_core.db.revision import newest_revision
from solver_core.models import SolveView
from solver_core.status import SolveStatus
from solver_core.store.views import RunFields, SolveFields, solve_view

SOLVE_COLUMNS = (
    "id", "owner", "status", "repo_url", "ref", "issue_title", "issue_body", "issue_url", "external_ref",
    "models", "attempts_per_model", "max_parallel", "agent_config", "limits", "setup_command",
    "test_command", "detect_tests", "verify_in", "callback_url", "sandbox_image", "selector_model",
    "selection_cost_usd", "reproduce", "reproduce_path", "reproduce_command", "execution_ref",
    "champion_run_id", "error", "publish", "publication", "selection", "created_at", "updated_at",
    "started_at", "finished_at",
)  # fmt: skip
RUN_COLUMNS = (
    "id", "solve_id", "index", "model", "agent_config", "status", "exit_status", "attempt", "retryable",
    "sandbox_id", "base_commit", "steps", "cost_usd", "tokens", "heartbeat_at", "error", "checkpoint_key",
    "trajectory_key", "patch_key", "log_key", "patch_stats", "tests", "detected_test_command", "kind",
    "reproduce_key", "reproduction", "created_at", "started_at", "finished_at",
)  # fmt: skip
# How SQLite stores the columns whose Python value is not what sqlite3 returns (db/schema.py's types:
# Uuid as 32 hex digits, JSON as text, UTCDateTime as naive UTC text, booleans as 0/1).
UUID_COLUMNS = frozenset({"id", "solve_id", "champion_run_id"})
JSON_COLUMNS = frozenset(
    {"external_ref", "models", "limits", "publish", "publication", "selection", "patch_stats", "tests", "reproduction"}
)
DATETIME_COLUMNS = frozenset({"created_at", "updated_at", "started_at", "finished_at", "heartbeat_at"})
BOOL_COLUMNS = frozenset({"detect_tests", "retryable", "reproduce"})
OPEN_STATUSES = (SolveStatus.QUEUED.value, SolveStatus.RUNNING.value, SolveStatus.CANCELLING.value)
PG_CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_S = 30


def _sqlite_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in UUID_COLUMNS:
        return UUID(hex=value)
    if column in JSON_COLUMNS:
        return json.loads(value)
    if column in DATETIME_COLUMNS:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if column in BOOL_COLUMNS:
        return bool(value)
    return value


class DirectReader:
    """A read-only connection and the queries `solver status` needs."""

    def __init__(self, connection: Any, *, sqlite: bool) -> None:
        self._connection = connection
        self._sqlite = sqlite
        mark = "?" if sqlite else "%s"  # the drivers' placeholders; every value is a parameter
        solve_columns = ", ".join(_quoted(c) for c in SOLVE_COLUMNS)
        run_columns = ", ".join(_quoted(c) for c in RUN_COLUMNS)
        statuses = ", ".join([mark] * len(OPEN_STATUSES))
        self._solve_query = f"SELECT {solve_columns} FROM solves WHERE id = {mark} AND owner = {mark}"  # noqa: S608
        self._runs_query = f"SELECT {run_columns} FROM runs WHERE solve_id = {mark}"  # noqa: S608
        self._open_query = (
            f"SELECT execution_ref FROM solves WHERE status IN ({statuses}) AND execution_ref IS NOT NULL"  # noqa: S608
        )

    def close(self) -> None:
        self._connection.close()

    def at_newest(self) -> bool:
        """True when the database records exactly this version's newest migration (db/revision.py)."""
        try:
            with self._transaction() as cursor:
                cursor.execute("SELECT version_num FROM alembic_version")
                stored = [row[0] for row in cursor.fetchall()]
        except driver_errors():
            return False
        return stored == [newest_revision()]

    def open_execution_refs(self, prefix: str) -> list[str]:
        """The execution references starting with `prefix` of the unfinished solves (RunQueries.open_solves_run_by)."""
        with self._transaction() as cursor:
            cursor.execute(self._open_query, OPEN_STATUSES)
            return [row[0] for row in cursor.fetchall() if row[0].startswith(prefix)]

    def solve(self, owner: str, solve_id: UUID) -> SolveView | None:
        """The solve with its runs, as `SolveService.get` shows it; None when the owner has no such solve."""
        key = solve_id.hex if self._sqlite else solve_id
        with self._transaction() as cursor:  # one snapshot for the solve and its runs
            cursor.execute(self._solve_query, (key, owner))
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(self._runs_query, (key,))
            runs = cursor.fetchall()
        solve = cast(SolveFields, self._record(SOLVE_COLUMNS, row))
        return solve_view(solve, [cast(RunFields, self._record(RUN_COLUMNS, r)) for r in runs])

    def _record(self, columns: Sequence[str], row: Sequence[Any]) -> SimpleNamespace:
        decode: Callable[[str, Any], Any] = _sqlite_value if self._sqlite else (lambda _, value: value)
        return SimpleNamespace(**{column: decode(column, value) for column, value in zip(columns, row, strict=True)})

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        cursor = self._connection.cursor()
        try:
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                cursor.execute("ROLLBACK")  # read only: nothing to keep
        finally:
            cursor.close()


def driver_errors() -> tuple[type[Exception], ...]:
    """What the drivers raise (psycopg's only once it is imported: a SQLite read never imports it)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


def _quoted(column: str) -> str:
    return f'"{column}"'  # `index` is a keyword


def open_reader(database_url: str) -> DirectReader | None:
    """A reader for an existing SQLite file (`sqlite:///PATH`) or a PostgreSQL URL; None for any
    other URL, or a SQLite file that does not exist yet (the usual path creates and migrates it)."""
    scheme, sep, rest = database_url.partition("://")
    if not sep:
        return None
    backend, _, driver = scheme.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite") and rest.startswith("/") and "?" not in rest:
        path = Path(unquote(rest[1:]))
        if not path.name or not path.is_file():
            return None
        return DirectReader(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None), sqlite=True)
    if backend == "postgresql" and driver in ("", "psycopg", "psycopg2"):
        import psycopg

        url = f"postgresql://{rest}"
        return DirectReader(psycopg.connect(url, connect_timeout=PG_CONNECT_TIMEOUT_S, autocommit=True), sqlite=False)
    return None
