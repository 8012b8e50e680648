"""The live feed: append events and read them after a sequence number."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from solver_core.db.schema import EventRow, SolveRow
from solver_core.errors import NotFound
from solver_core.models import EventView
from solver_core.status import EventKind
from solver_core.store import records
from solver_core.store.outage import survives_outage
from solver_core.store.views import event_view

MAX_EVENTS_PAGE = 1000


class EventService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @survives_outage
    def append(
        self,
        solve_id: UUID,
        kind: EventKind,
        message: str,
        *,
        run_id: UUID | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        with self._sessions.begin() as session:
            return records.append_event(session, solve_id, kind, message, run_id=run_id, data=data)

    def read(self, owner: str, solve_id: UUID, *, after: int = 0, limit: int = 100) -> list[EventView]:
        """Events of one of the owner's solves with seq > after, oldest first."""
        limit = max(1, min(limit, MAX_EVENTS_PAGE))
        with self._sessions() as session:
            owned = session.scalar(select(SolveRow.id).where(SolveRow.id == solve_id, SolveRow.owner == owner))
            if owned is None:
                raise NotFound(f"solve {solve_id} not found")
            rows = session.scalars(
                select(EventRow)
                .where(EventRow.solve_id == solve_id, EventRow.seq > after)
                .order_by(EventRow.seq)
                .limit(limit)
            ).all()
            return [event_view(row) for row in rows]
