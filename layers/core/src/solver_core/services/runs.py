"""Run bookkeeping shared by every orchestrator: status moves, progress, artifacts and results."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from solver_core.db.schema import RunRow, utcnow
from solver_core.errors import NotFound
from solver_core.models import RunView, SolveView
from solver_core.services import records
from solver_core.services.records import rowcount
from solver_core.services.views import run_view, solve_view
from solver_core.status import RUN_TERMINAL, RunStatus, SolveStatus


class RunService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, run_id: UUID) -> RunView:
        with self._sessions() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise NotFound(f"run {run_id} not found")
            return run_view(row)

    def move(
        self,
        run_id: UUID,
        target: RunStatus,
        *,
        error: str | None = None,
        retryable: bool | None = None,
        **fields: Any,
    ) -> RunView:
        """Change a run's status (conditional update) and record a status event, atomically."""
        with self._sessions.begin() as session:
            records.move_run(session, run_id, target, error=error, retryable=retryable, **fields)
            return run_view(_row(session, run_id))

    def move_solve(self, solve_id: UUID, target: SolveStatus, *, error: str | None = None, **fields: Any) -> SolveView:
        with self._sessions.begin() as session:
            records.move_solve(session, solve_id, target, error=error, **fields)
            row = records.solve_row(session, solve_id)
            return solve_view(row, row.runs)

    def record_progress(self, run_id: UUID, *, steps: int, cost_usd: float, tokens: int = 0) -> bool:
        """Update counters and the heartbeat of a live run; False when the run is already terminal."""
        return self._update_live(run_id, steps=steps, cost_usd=cost_usd, tokens=tokens, heartbeat_at=utcnow())

    def heartbeat(self, run_id: UUID) -> bool:
        return self._update_live(run_id, heartbeat_at=utcnow())

    def set_fields(self, run_id: UUID, **fields: Any) -> bool:
        """Record facts about a live run (sandbox id, base commit, artifact keys, patch stats, tests)."""
        return self._update_live(run_id, **fields)

    def _update_live(self, run_id: UUID, **values: Any) -> bool:
        with self._sessions.begin() as session:
            updated = rowcount(
                session.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status.not_in([s.value for s in RUN_TERMINAL]))
                    .values(updated_at=utcnow(), **values)
                )
            )
        return updated == 1


def _row(session: Session, run_id: UUID) -> RunRow:
    row = session.get(RunRow, run_id, populate_existing=True)
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return row
