"""Run bookkeeping shared by every orchestrator: status moves, progress, artifacts and results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from solver_core.db.schema import RunRow, SolveRow, utcnow
from solver_core.errors import NotFound
from solver_core.models import ModelSpec, RunKind, RunView, ScriptAuthor, SolveView
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, EventKind, RunStatus, SolveStatus
from solver_core.store import records, registry
from solver_core.store.outage import survives_outage
from solver_core.store.records import rowcount
from solver_core.store.views import run_view, solve_view


@dataclass(frozen=True)
class RunContext:
    """What a run step needs to know about its run, its solve and their registry entries."""

    run: RunView
    solve: SolveView
    model: ModelSpec
    agent_base: str
    agent_overrides: dict[str, Any]


CHECK_BASE_INDEX = -2  # the reproduction checks: the base commit's, then -3 - a candidate's index
HOLDING_SANDBOX = (
    RunStatus.LAUNCHING, RunStatus.PREPARING, RunStatus.SOLVING, RunStatus.COLLECTING, RunStatus.VERIFYING,
)  # fmt: skip
SANDBOX_SLOTS_LOCK = 0x501E_0002


class RunService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @survives_outage
    def context(self, run_id: UUID) -> RunContext:
        with self._sessions() as session:
            run = _row(session, run_id)
            solve = session.get(SolveRow, run.solve_id)
            if solve is None:
                raise NotFound(f"solve of run {run_id} not found")
            base, overrides = registry.agent_config_of(session, run.agent_config)
            return RunContext(
                run=run_view(run),
                solve=solve_view(solve),
                model=registry.model_spec(session, run.model),
                agent_base=base,
                agent_overrides=overrides,
            )

    @survives_outage
    def model_spec(self, name: str) -> ModelSpec:
        """The registry's description of a model (defaults for an unregistered name)."""
        with self._sessions() as session:
            return registry.model_spec(session, name)

    @survives_outage
    def stop_reason(self, run_id: UUID) -> str | None:
        """'cancelled' once the run or its solve is being cancelled; None while it may go on."""
        with self._sessions() as session:
            found = session.execute(
                select(RunRow.status, SolveRow.status)
                .join(SolveRow, SolveRow.id == RunRow.solve_id)
                .where(RunRow.id == run_id)
            ).first()
        if found is None:
            raise NotFound(f"run {run_id} not found")
        return _stop_reason(*found)

    @survives_outage
    def get(self, run_id: UUID) -> RunView:
        with self._sessions() as session:
            return run_view(_row(session, run_id))

    @survives_outage
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

    @survives_outage
    def solve(self, solve_id: UUID) -> SolveView:
        """A solve with its runs, not scoped by owner: for the orchestration steps only."""
        with self._sessions() as session:
            row = records.solve_row(session, solve_id)
            return solve_view(row, row.runs)

    @survives_outage
    def add_checks(self, solve_id: UUID, authors: list[RunView], candidates: list[RunView]) -> bool:
        """The reproduction checks of a solve, once: one on the base commit (index -2) and one per
        candidate (index -3 - its index), each to run every author's script. False when they existed
        already (another PlanChecks made them)."""
        plan = [ScriptAuthor(run_id=a.id, index=a.index).model_dump(mode="json") for a in authors]
        base = authors[0].base_commit
        targets: list[RunView | None] = [None, *candidates]
        rows = [
            RunRow(
                solve_id=solve_id, index=CHECK_BASE_INDEX if t is None else CHECK_BASE_INDEX - 1 - t.index,
                model="check", agent_config=None, kind=RunKind.CHECK.value, target_run_id=t.id if t else None,
                base_commit=(t.base_commit if t else None) or base,
                reproduction={"target_run_id": str(t.id) if t else None, "authors": plan, "scripts": []},
            )
            for t in targets
        ]  # fmt: skip
        try:
            with self._sessions.begin() as session:
                session.add_all(rows)
        except IntegrityError:  # (solve_id, index) is unique: made already
            return False
        return True

    @survives_outage
    def move_solve(self, solve_id: UUID, target: SolveStatus, *, error: str | None = None, **fields: Any) -> SolveView:
        with self._sessions.begin() as session:
            records.move_solve(session, solve_id, target, error=error, **fields)
            row = records.solve_row(session, solve_id)
            return solve_view(row, row.runs)

    @survives_outage
    def set_solve_fields(self, solve_id: UUID, **fields: Any) -> bool:
        """Record facts about an unfinished solve (its champion, its execution); False once it ended."""
        with self._sessions.begin() as session:
            updated = rowcount(
                session.execute(
                    update(SolveRow)
                    .where(SolveRow.id == solve_id, SolveRow.status.not_in([s.value for s in SOLVE_TERMINAL]))
                    .values(updated_at=utcnow(), **fields)
                )
            )
        return updated == 1

    def add_selection_cost(self, solve_id: UUID, cost_usd: float) -> None:
        """Add what one call to the selector model cost to the solve's selection cost (added, never
        replaced: a retried PickChampion that asks again has paid twice)."""
        with self._sessions.begin() as session:
            session.execute(
                update(SolveRow)
                .where(SolveRow.id == solve_id)
                .values(
                    updated_at=utcnow(),
                    selection_cost_usd=func.coalesce(SolveRow.selection_cost_usd, 0.0) + cost_usd,
                )
            )

    @survives_outage
    def record_progress(self, run_id: UUID, *, steps: int, cost_usd: float, tokens: int = 0) -> bool:
        """Update counters and the heartbeat of a live run; False when the run is already terminal."""
        return self._update_live(run_id, steps=steps, cost_usd=cost_usd, tokens=tokens, heartbeat_at=utcnow())

    @survives_outage
    def record_step(
        self,
        run_id: UUID,
        solve_id: UUID,
        *,
        steps: int,
        cost_usd: float,
        tokens: int,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> str | None:
        """After an agent step, in one transaction: the run's counters and heartbeat, its `step`
        event, and whether it must stop (what `stop_reason` says). One commit per step instead of
        three: the per-step database cost was most of Solver's overhead on a fast step."""
        with self._sessions.begin() as session:
            values = {"steps": steps, "cost_usd": cost_usd, "tokens": tokens, "heartbeat_at": utcnow()}
            # Run row first, then the solve's (the event lock): the order every status change takes.
            live = self._live_update(session, run_id, values)
            run_status = None if live else _current_status(session, run_id)  # a live run is not cancelled
            solve_status = records.lock_solve(session, solve_id)
            records.insert_event(session, solve_id, EventKind.STEP, message, run_id=run_id, data=data)
        return _stop_reason(run_status, solve_status)

    @survives_outage
    def record_artifacts(self, run_id: UUID, **keys: str) -> None:
        """Record where a run's artifacts are (trajectory_key, log_key …), whatever its status."""
        with self._sessions.begin() as session:
            session.execute(update(RunRow).where(RunRow.id == run_id).values(updated_at=utcnow(), **keys))

    @survives_outage
    def heartbeat(self, run_id: UUID) -> bool:
        return self._update_live(run_id, heartbeat_at=utcnow())

    @survives_outage
    def commands(self, run_id: UUID) -> dict[str, Any] | None:
        """The detached commands of the run's current step (workflow/commands.py)."""
        with self._sessions() as session:
            return session.scalar(select(RunRow.commands).where(RunRow.id == run_id))

    @survives_outage
    def set_fields(self, run_id: UUID, **fields: Any) -> bool:
        """Record facts about a live run (sandbox id, base commit, artifact keys, patch stats, tests)."""
        return self._update_live(run_id, **fields)

    def _update_live(self, run_id: UUID, **values: Any) -> bool:
        with self._sessions.begin() as session:
            return self._live_update(session, run_id, values)

    @staticmethod
    def _live_update(session: Session, run_id: UUID, values: dict[str, Any]) -> bool:
        updated = rowcount(
            session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.not_in([s.value for s in RUN_TERMINAL]))
                .values(updated_at=utcnow(), **values)
            )
        )
        return updated == 1

    @survives_outage
    def claim_sandbox_slot(self, run_id: UUID, cap: int, owner_cap: int | None = None) -> bool:
        """Move a queued run to `launching` if fewer than `cap` runs hold (or are getting) a sandbox,
        and fewer than `owner_cap` of them belong to its solve's owner (a fair share of the cap).
        Count and claim happen under one lock, so concurrent launches cannot both take the last slot."""
        with self._sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SANDBOX_SLOTS_LOCK})
            status = session.scalar(select(RunRow.status).where(RunRow.id == run_id))
            if status is None:
                raise NotFound(f"run {run_id} not found")
            if status != RunStatus.QUEUED.value:
                return status == RunStatus.LAUNCHING.value  # a retried launch keeps its slot
            holds = RunRow.status.in_([s.value for s in HOLDING_SANDBOX])
            holding = session.scalar(select(func.count()).select_from(RunRow).where(holds))
            if (holding or 0) >= cap:
                return False
            if owner_cap is not None and _owner_holding(session, run_id, holds) >= owner_cap:
                return False
            records.move_run(session, run_id, RunStatus.LAUNCHING)
            return True


def _owner_holding(session: Session, run_id: UUID, holds: ColumnElement[bool]) -> int:
    """How many runs of the solves of this run's owner hold a sandbox."""
    owner = select(SolveRow.owner).join(RunRow, RunRow.solve_id == SolveRow.id).where(RunRow.id == run_id)
    query = (
        select(func.count())
        .select_from(RunRow)
        .join(SolveRow, SolveRow.id == RunRow.solve_id)
        .where(holds, SolveRow.owner == owner.scalar_subquery())
    )
    return session.scalar(query) or 0


def _stop_reason(run_status: str | None, solve_status: str) -> str | None:
    if run_status == RunStatus.CANCELLED or solve_status in {SolveStatus.CANCELLING, SolveStatus.CANCELLED}:
        return "cancelled"
    return None


def _current_status(session: Session, run_id: UUID) -> str:
    status = session.scalar(select(RunRow.status).where(RunRow.id == run_id))
    if status is None:
        raise NotFound(f"run {run_id} not found")
    return status


def _row(session: Session, run_id: UUID) -> RunRow:
    row = session.get(RunRow, run_id, populate_existing=True)
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return row
