"""Read-only queries for the sweeper: runs gone quiet, failed runs to retry, solves left open."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from solver_core.db.schema import RunRow, SolveRow
from solver_core.models import RunView, SolveView
from solver_core.status import RUN_TERMINAL, RunStatus, SolveStatus
from solver_core.store.views import run_view, solve_view


class RunQueries:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def stale_runs(self, older_than: datetime, limit: int = 200) -> list[RunView]:
        """Unfinished runs that have shown no sign of life (heartbeat or update) since `older_than`."""
        last_seen = func.coalesce(RunRow.heartbeat_at, RunRow.updated_at)
        return self._runs_where(
            RunRow.status.not_in([s.value for s in RUN_TERMINAL]),
            RunRow.status != RunStatus.QUEUED.value,
            last_seen < older_than,
            limit=limit,
        )

    def retryable_runs(self, max_attempts: int, finished_before: datetime, limit: int = 200) -> list[RunView]:
        """Failed runs that may be tried again, whose failure is old enough for the backoff."""
        return self._runs_where(
            RunRow.status == RunStatus.FAILED.value,
            RunRow.retryable.is_(True),
            RunRow.attempt + 1 < max_attempts,
            RunRow.finished_at < finished_before,
            limit=limit,
        )

    def _runs_where(self, *conditions: Any, limit: int) -> list[RunView]:
        with self._sessions() as session:
            rows = session.scalars(select(RunRow).where(*conditions).order_by(RunRow.updated_at).limit(limit)).all()
            return [run_view(row) for row in rows]

    def open_solves(
        self,
        statuses: tuple[SolveStatus, ...],
        updated_before: datetime,
        limit: int = 200,
        *,
        with_batched: bool = True,
    ) -> list[SolveView]:
        """Unfinished solves untouched since `updated_before` (candidates for finishing by the sweeper);
        without `with_batched`, not those of a cloud batch (its state machine starts them)."""
        batched = [] if with_batched else [SolveRow.batch_id.is_(None)]
        with self._sessions() as session:
            rows = session.scalars(
                select(SolveRow)
                .where(SolveRow.status.in_([s.value for s in statuses]), SolveRow.updated_at < updated_before, *batched)
                .options(selectinload(SolveRow.runs))
                .limit(limit)
            ).all()
            return [solve_view(row, row.runs) for row in rows]

    def open_solves_run_by(self, ref_prefix: str, limit: int = 200) -> list[SolveView]:
        """Unfinished solves whose execution reference starts with `ref_prefix` (local processes)."""
        statuses = [s.value for s in (SolveStatus.QUEUED, SolveStatus.RUNNING, SolveStatus.CANCELLING)]
        with self._sessions() as session:
            rows = session.scalars(
                select(SolveRow)
                .where(SolveRow.status.in_(statuses), SolveRow.execution_ref.startswith(ref_prefix, autoescape=True))
                .options(selectinload(SolveRow.runs))
                .limit(limit)
            ).all()
            return [solve_view(row, row.runs) for row in rows]

    def run_ids_known(self, run_ids: list[UUID]) -> dict[UUID, RunStatus]:
        """The statuses of those runs that exist."""
        with self._sessions() as session:
            rows = session.execute(select(RunRow.id, RunRow.status).where(RunRow.id.in_(run_ids))).all()
        return {row_id: RunStatus(status) for row_id, status in rows}
