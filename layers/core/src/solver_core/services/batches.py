"""Cloud batches: creating one (every instance's solve in one transaction), reading its progress,
its predictions, and cancelling it; always scoped by owner (docs/architecture.md, "Batches in the
cloud")."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from solver_core.batch.cloud import BatchCounts, BatchItem, BatchRequest, BatchView
from solver_core.batch.instances import Instance
from solver_core.batch.outputs import Prediction
from solver_core.batch.requests import classify
from solver_core.db.schema import BatchRow, RunRow, SolveRow, utcnow
from solver_core.errors import IdempotencyConflict, IllegalTransition, NotFound
from solver_core.models import SolveRequest, SolveView
from solver_core.services.solves import CostBudget, SolveService, enforce_budget, lock_owner
from solver_core.status import SOLVE_TERMINAL, SolveStatus
from solver_core.store.views import solve_view

if TYPE_CHECKING:
    from solver_core.services.runs import RunService
    from solver_core.workflow.champion import SolveFlow


@dataclass(frozen=True)
class BatchStart:
    batch: BatchView
    created: bool
    items: list[BatchItem]


def fingerprint(request: BatchRequest, instances: list[Instance]) -> str:
    """The canonical request: the instances as read (an uploaded file by its content), the options."""
    canonical = {
        "options": request.model_dump(mode="json", exclude={"instances", "instances_key"}),
        "instances": [i.model_dump(mode="json", by_alias=True) for i in instances],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _instance_key(batch_key: str | None, instance_id: str) -> str | None:
    """With an Idempotency-Key, each instance's solve gets its own (`<key>:<instance_id>`)."""
    return None if batch_key is None else f"{batch_key}:{instance_id}"[:255]


class BatchService:
    def __init__(self, sessions: sessionmaker[Session], solves: SolveService) -> None:
        self._sessions = sessions
        self._solves = solves

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def create(
        self,
        owner: str,
        request: BatchRequest,
        solves: list[tuple[Instance, SolveRequest]],
        idempotency_key: str | None = None,
        *,
        budget: CostBudget | None = None,
    ) -> BatchStart:
        """The batch and every instance's solve (with its runs), in one transaction: a refusal leaves
        nothing behind. A reused Idempotency-Key answers the first batch (or 409 on another body)."""
        digest = fingerprint(request, [instance for instance, _ in solves])
        if idempotency_key is not None and (found := self._replay(owner, idempotency_key, digest)):
            return found
        try:
            with self._sessions.begin() as session:
                if budget is not None:
                    lock_owner(session, owner)
                    enforce_budget(session, owner, budget)
                now = utcnow()
                row = BatchRow(
                    id=uuid4(),
                    owner=owner,
                    name=request.batch_name,
                    status="running",
                    models=list(request.models),
                    attempts=request.attempts,
                    max_concurrency=request.max_concurrency,
                    total=len(solves),
                    idempotency_key=idempotency_key,
                    request_hash=digest,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                items = []
                for instance, solve_request in solves:
                    key = _instance_key(idempotency_key, instance.instance_id)
                    solve = self._solves.insert_for_batch(session, owner, solve_request, key, row.id)
                    items.append(BatchItem(solve_id=solve.id, instance_id=instance.instance_id))
                return BatchStart(_view(session, row), True, items)
        except IntegrityError:
            if idempotency_key is None or not (found := self._replay(owner, idempotency_key, digest)):
                raise
            return found

    def get(self, owner: str, batch_id: UUID) -> BatchView:
        with self._sessions() as session:
            return _view(session, self._row(session, owner, batch_id))

    def items(self, owner: str, batch_id: UUID) -> list[BatchItem]:
        with self._sessions() as session:
            self._row(session, owner, batch_id)
            return _items(session, batch_id)

    def solves(self, owner: str, batch_id: UUID) -> list[SolveView]:
        """The batch's solves with their runs, in instance order."""
        with self._sessions() as session:
            self._row(session, owner, batch_id)
            rows = session.scalars(
                select(SolveRow)
                .where(SolveRow.batch_id == batch_id)
                .order_by(SolveRow.created_at, SolveRow.id)
                .options(selectinload(SolveRow.runs))
            ).all()
            return [solve_view(r, r.runs) for r in rows]

    def set_execution(self, batch_id: UUID, execution_ref: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(BatchRow, batch_id)
            if row is not None:
                row.execution_ref = execution_ref

    def mark_cancelled(self, owner: str, batch_id: UUID) -> bool:
        """Cancelled unless it already ended; False when nothing changed."""
        with self._sessions.begin() as session:
            row = self._row(session, owner, batch_id, lock=True)
            if row.status != "running":
                return False
            row.status, row.finished_at = "cancelled", utcnow()
            return True

    def finish(self, batch_id: UUID, error: str | None = None) -> BatchView:
        """The batch state machine ended (FinishBatch): finished, or failed with its error; a
        cancelled batch stays cancelled. Not scoped by owner: for the state machine only."""
        with self._sessions.begin() as session:
            row = session.get(BatchRow, batch_id, with_for_update=True)
            if row is None:
                raise NotFound(f"batch {batch_id} not found")
            if row.status == "running":
                row.status = "failed" if error else "finished"
                row.error = error[:4000] if error else None
                row.finished_at = utcnow()
            return _view(session, row)

    def owner_of(self, batch_id: UUID) -> str:
        with self._sessions() as session:
            owner = session.scalar(select(BatchRow.owner).where(BatchRow.id == batch_id))
        if owner is None:
            raise NotFound(f"batch {batch_id} not found")
        return owner

    def predictions(self, owner: str, batch_id: UUID, patches: dict[UUID, str]) -> dict[str, Prediction]:
        """preds.json: every instance whose solve reached a final outcome (a champion patch, or a
        definitive "no patch"), keyed by instance id; `patches` holds the champions' patches."""
        batch = self.get(owner, batch_id)
        predictions: dict[str, Prediction] = {}
        for solve in self.solves(owner, batch_id):
            outcome, _ = classify(solve)
            instance_id = (solve.external_ref or {}).get("instance_id")
            if not outcome.final or instance_id is None:
                continue
            patch = patches.get(solve.id, "") if solve.champion_run_id is not None else ""
            predictions[instance_id] = Prediction(
                instance_id=instance_id, model_name_or_path=batch.name, model_patch=patch
            )
        return dict(sorted(predictions.items()))

    def _row(self, session: Session, owner: str, batch_id: UUID, *, lock: bool = False) -> BatchRow:
        query = select(BatchRow).where(BatchRow.id == batch_id, BatchRow.owner == owner)
        row = session.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"batch {batch_id} not found", hint="check the id (the answer of POST /batches)")
        return row

    def _replay(self, owner: str, key: str, digest: str) -> BatchStart | None:
        with self._sessions() as session:
            row = session.scalars(
                select(BatchRow).where(BatchRow.owner == owner, BatchRow.idempotency_key == key)
            ).first()
            if row is None:
                return None
            if row.request_hash != digest:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different batch",
                    details=[{"field": "Idempotency-Key", "rule": "idempotency_key_reused", "batch_id": str(row.id)}],
                )
            return BatchStart(_view(session, row), False, _items(session, row.id))


def _items(session: Session, batch_id: UUID) -> list[BatchItem]:
    rows = session.execute(
        select(SolveRow.id, SolveRow.external_ref)
        .where(SolveRow.batch_id == batch_id)
        .order_by(SolveRow.created_at, SolveRow.id)
    ).all()
    return [BatchItem(solve_id=solve_id, instance_id=str((ref or {}).get("instance_id", ""))) for solve_id, ref in rows]


def _view(session: Session, row: BatchRow) -> BatchView:
    by_status: dict[SolveStatus, int] = dict.fromkeys(SolveStatus, 0)
    counted: list[Any] = list(
        session.execute(
            select(SolveRow.status, func.count(), func.count(SolveRow.champion_run_id))
            .where(SolveRow.batch_id == row.id)
            .group_by(SolveRow.status)
        ).all()
    )
    with_patch = 0
    for status, count, champions in counted:
        by_status[SolveStatus(status)] = int(count)
        with_patch += int(champions)
    cost = session.scalar(
        select(func.coalesce(func.sum(RunRow.cost_usd), 0.0))
        .join(SolveRow, RunRow.solve_id == SolveRow.id)
        .where(SolveRow.batch_id == row.id)
    )
    done = sum(n for status, n in by_status.items() if status in SOLVE_TERMINAL)
    return BatchView(
        id=row.id,
        name=row.name,
        status=row.status,
        models=list(row.models),
        attempts=row.attempts,
        max_concurrency=row.max_concurrency,
        counts=BatchCounts(total=row.total, by_status=by_status, done=done, with_patch=with_patch),
        cost_usd=round(float(cost or 0.0), 6),
        created_at=row.created_at,
        finished_at=row.finished_at,
        error=row.error,
        execution_ref=row.execution_ref,
    )


def queued_solves(sessions: sessionmaker[Session], batch_id: UUID) -> list[UUID]:
    with sessions() as session:
        return list(
            session.scalars(
                select(SolveRow.id).where(SolveRow.batch_id == batch_id, SolveRow.status == SolveStatus.QUEUED.value)
            ).all()
        )


def finish_batch(
    batches: BatchService, runs: RunService, flow: SolveFlow, batch_id: UUID, error: str | None
) -> BatchView:
    """FinishBatch (the batch state machine's last state, or the local batch's end): solves its Map
    never started (it failed, or was stopped) are cancelled, so none waits forever; then the batch
    is finished, or failed with the error."""
    for solve_id in queued_solves(batches.sessions, batch_id):
        with contextlib.suppress(IllegalTransition):  # started or cancelled meanwhile
            runs.move_solve(solve_id, SolveStatus.CANCELLING, error="the batch ended before this instance started")
        flow.finish_cancel(solve_id)
    return batches.finish(batch_id, error)


def batch_of_execution(execution_arn: str, state_machine_arn: str | None) -> UUID | None:
    """The batch whose execution this is (executions are named after their batch), or None: another
    state machine's execution, or a child execution of the batch's Distributed Map."""
    if not state_machine_arn:
        return None
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    if not execution_arn.startswith(prefix):
        return None
    try:
        return UUID(execution_arn.removeprefix(prefix))
    except ValueError:
        return None


def reconcile_batch(
    batches: BatchService,
    runs: RunService,
    flow: SolveFlow,
    execution_arn: str,
    *,
    state_machine_arn: str | None,
    status: str,
) -> BatchView | None:
    """The reconciler's share: a batch execution that ended ABORTED, FAILED or TIMED_OUT never ran
    FinishBatch, so it is finished here (its never-started solves cancelled, the batch failed unless it
    was cancelled)."""
    batch_id = batch_of_execution(execution_arn, state_machine_arn)
    if batch_id is None:
        return None
    return finish_batch(batches, runs, flow, batch_id, f"the batch's execution ended {status}")
