"""Writes that every service shares, done inside the caller's transaction (they take a session).

- Events are appended under a lock on their solve's row, so that within one solve events commit in
  `seq` order and a reader polling `?after=<seq>` never skips one that commits late.
- Status changes are conditional updates (`WHERE status IN (sources)`): of two concurrent writers
  only one matches the row, and a terminal row matches nothing.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from sqlalchemy import ColumnElement, CursorResult, Result, insert, select, update
from sqlalchemy.orm import Session, selectinload

from solver_core.db.schema import EventRow, RunRow, SolveRow, utcnow
from solver_core.errors import IllegalTransition, NotFound
from solver_core.status import (
    RUN_TERMINAL,
    SOLVE_TERMINAL,
    EventKind,
    Outcome,
    RunStatus,
    SolveStatus,
    run_sources,
    solve_sources,
)
from solver_core.store.views import run_outcome

MAX_EVENT_MESSAGE = 4000


def lock_solve(session: Session, solve_id: UUID) -> str:
    """Serialise writers of one solve's events (FOR UPDATE is a no-op on SQLite, which locks the file);
    returns the solve's status, read under that lock."""
    found = session.execute(select(SolveRow.status).where(SolveRow.id == solve_id).with_for_update()).first()
    if found is None:
        raise NotFound(f"solve {solve_id} not found")
    return str(found[0])


def append_event(
    session: Session,
    solve_id: UUID,
    kind: EventKind,
    message: str,
    *,
    run_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    lock_solve(session, solve_id)
    return insert_event(session, solve_id, kind, message, run_id=run_id, data=data)


def insert_event(
    session: Session,
    solve_id: UUID,
    kind: EventKind,
    message: str,
    *,
    run_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Insert an event; the caller holds its solve's lock (`lock_solve`) in this transaction."""
    # A plain INSERT … RETURNING: the ORM's unit of work cost more than the statement, once per step.
    values = {
        "solve_id": solve_id,
        "run_id": run_id,
        "kind": kind.value,
        "message": message[:MAX_EVENT_MESSAGE],
        "data": data,
        "at": utcnow(),
    }
    table = EventRow.metadata.tables[EventRow.__tablename__]
    return int(session.execute(insert(table).values(values).returning(table.c.seq)).scalar_one())


def move_solve(
    session: Session, solve_id: UUID, target: SolveStatus, *, error: str | None = None, **fields: Any
) -> None:
    """Move a solve to `target`, or raise IllegalTransition when the diagram or a racing writer forbids it."""
    values: dict[str, Any] = {"status": target.value, "updated_at": utcnow(), **fields}
    if error is not None:
        values["error"] = error
    if target is SolveStatus.RUNNING:
        values.setdefault("started_at", utcnow())
    if target in SOLVE_TERMINAL:
        values["finished_at"] = utcnow()
    if target is SolveStatus.QUEUED:
        values.update(finished_at=None, error=None)
    sources = solve_sources(target)
    updated = rowcount(
        session.execute(
            update(SolveRow)
            .where(SolveRow.id == solve_id, SolveRow.status.in_([s.value for s in sources]))
            .values(**values)
        )
    )
    if updated != 1:
        now = _current(session, SolveRow, solve_id)
        raise IllegalTransition(f"solve {solve_id} cannot move from {now} to {target.value}")
    data = _status_data(target, error)
    message = f"solve {target.value}"
    if target is SolveStatus.SUCCEEDED:  # "succeeded" is not a verdict on the patch: say what it is
        champion = session.execute(
            select(RunRow.status, RunRow.patch_stats, RunRow.tests)
            .join(SolveRow, SolveRow.champion_run_id == RunRow.id)
            .where(SolveRow.id == solve_id)
        ).first()
        outcome = run_outcome(RunStatus(champion[0]), champion[1], champion[2]) if champion else Outcome.NO_PATCH
        message, data["outcome"] = f"solve finished: {outcome.label}", outcome.value
    append_event(session, solve_id, EventKind.STATUS, message, data=data)


def move_run(
    session: Session,
    run_id: UUID,
    target: RunStatus,
    *,
    error: str | None = None,
    retryable: bool | None = None,
    **fields: Any,
) -> None:
    """Move a run to `target`, or raise IllegalTransition when the diagram or a racing writer forbids it."""
    values: dict[str, Any] = {"status": target.value, "updated_at": utcnow(), **fields}
    conditions: list[ColumnElement[bool]] = [
        RunRow.id == run_id,
        RunRow.status.in_([s.value for s in run_sources(target)]),
    ]
    if error is not None:
        values["error"] = error
    if retryable is not None:
        values["retryable"] = retryable
    if target is RunStatus.LAUNCHING:
        values.setdefault("started_at", utcnow())
    if target in RUN_TERMINAL:
        values["finished_at"] = utcnow()
    if target is RunStatus.QUEUED:
        # Only a retryable failure goes back to the queue, as a new attempt.
        conditions.append(RunRow.retryable.is_(True))
        values.update(attempt=RunRow.attempt + 1, retryable=False, error=None, finished_at=None, sandbox_id=None)
    updated = rowcount(session.execute(update(RunRow).where(*conditions).values(**values)))
    if updated != 1:
        now = _current(session, RunRow, run_id)
        raise IllegalTransition(f"run {run_id} cannot move from {now} to {target.value}")
    row = session.execute(select(RunRow.solve_id, RunRow.patch_stats, RunRow.tests).where(RunRow.id == run_id)).one()
    data = _status_data(target, error)
    if retryable is not None:
        data["retryable"] = retryable
    message = f"run {target.value}"
    if target is RunStatus.SUCCEEDED:  # finished its steps; whether its patch is any good is its outcome
        outcome = run_outcome(target, row.patch_stats, row.tests)
        message, data["outcome"] = f"run finished: {outcome.label}", outcome.value
    append_event(session, row.solve_id, EventKind.STATUS, message, run_id=run_id, data=data)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE (only cursor results carry the count)."""
    return cast(CursorResult[Any], result).rowcount


def _status_data(target: SolveStatus | RunStatus, error: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"status": target.value}
    if error is not None:
        data["error"] = error
    return data


def _current(session: Session, table: type[SolveRow] | type[RunRow], row_id: UUID) -> str:
    status = session.execute(select(table.status).where(table.id == row_id)).scalar_one_or_none()
    if status is None:
        raise NotFound(f"{table.__tablename__[:-1]} {row_id} not found")
    return status


def solve_row(session: Session, solve_id: UUID) -> SolveRow:
    """The solve with its runs loaded, fresh from the database."""
    row = session.scalars(
        select(SolveRow)
        .where(SolveRow.id == solve_id)
        .options(selectinload(SolveRow.runs))
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFound(f"solve {solve_id} not found")
    return row
