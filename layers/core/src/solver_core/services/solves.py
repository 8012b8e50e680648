"""Starting, reading and listing solves, always scoped by owner."""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from solver_core.db.schema import RunRow, SolveRow, utcnow
from solver_core.errors import BadRequest, IdempotencyConflict, NotFound, TooManyRequests
from solver_core.models import RunKind, SolvePage, SolveRequest, SolveView, StartResult
from solver_core.rules import RequestPolicy
from solver_core.status import SOLVE_TERMINAL, EventKind, SolveStatus
from solver_core.store import records, registry
from solver_core.store.views import solve_view

MAX_PAGE = 200


@dataclass(frozen=True)
class ActiveCap:
    """At most `limit` unfinished solves per owner; a refusal suggests retrying after a while."""

    limit: int
    retry_after_s: int = 30


@dataclass(frozen=True)
class CostBudget:
    """At most `daily_usd` of model cost per owner over a rolling window: the cost so far of the runs
    of the owner's solves created in the last `window` (24 hours). A solve that is already running
    goes on; new solves are refused until enough of that cost leaves the window."""

    daily_usd: float
    window: timedelta = timedelta(hours=24)


def lock_owner(session: Session, owner: str) -> None:
    """Count and insert under one per-owner lock, so a burst of starts cannot overshoot a limit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": f"solver:{owner}"})


def enforce_budget(session: Session, owner: str, budget: CostBudget) -> None:
    now = utcnow()
    spent_by_solve = session.execute(
        # The runs' cost and the judge's (selection_cost_usd), per solve.
        select(SolveRow.created_at, func.coalesce(func.sum(RunRow.cost_usd), 0.0) + SolveRow.selection_cost_usd)
        .join(RunRow, RunRow.solve_id == SolveRow.id)
        .where(SolveRow.owner == owner, SolveRow.created_at > now - budget.window)
        .group_by(SolveRow.id, SolveRow.created_at, SolveRow.selection_cost_usd)
        .order_by(SolveRow.created_at)
    ).all()
    spent = sum(float(cost) for _, cost in spent_by_solve)
    if spent < budget.daily_usd:
        return
    # Retry when enough of the oldest solves' cost has left the window to be under the budget again.
    remaining, free_at = spent, now + budget.window
    for created_at, cost in spent_by_solve:
        remaining -= float(cost)
        if remaining < budget.daily_usd:
            free_at = created_at + budget.window
            break
    raise TooManyRequests(
        f"the daily cost budget of ${budget.daily_usd:.2f} is spent (${spent:.2f} by solves started in the last "
        f"{budget.window.total_seconds() / 3600:g} hours); new solves are refused until {free_at:%Y-%m-%d %H:%M} UTC",
        retry_after_s=max(1, math.ceil((free_at - now).total_seconds())),
    )


def _enforce_cap(session: Session, owner: str, cap: ActiveCap) -> None:
    unfinished = SolveRow.status.not_in([s.value for s in SOLVE_TERMINAL])
    # A batch's solves wait for its state machine, which bounds them (max_concurrency): not counted here.
    single = SolveRow.batch_id.is_(None)
    active = session.scalar(
        select(func.count()).select_from(SolveRow).where(SolveRow.owner == owner, unfinished, single)
    )
    if (active or 0) >= cap.limit:
        raise TooManyRequests(
            f"{active} unfinished solves; at most {cap.limit} may be unfinished at once",
            retry_after_s=cap.retry_after_s,
        )


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (created_at, id) of the last solve on the previous page."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), str(self.id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            created, solve_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
            at = datetime.fromisoformat(created)
            if at.tzinfo is None:
                raise ValueError("cursor timestamps carry a timezone")
            return cls(at, UUID(solve_id))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise BadRequest("invalid cursor", details=[{"field": "cursor", "rule": "cursor_format"}]) from exc


class SolveService:
    def __init__(self, sessions: sessionmaker[Session], policy: RequestPolicy) -> None:
        self._sessions = sessions
        self._policy = policy

    def start(
        self,
        owner: str,
        request: SolveRequest,
        idempotency_key: str | None = None,
        *,
        active_cap: ActiveCap | None = None,
        budget: CostBudget | None = None,
    ) -> StartResult:
        """Create the solve and its runs in one transaction; replay or refuse a reused Idempotency-Key.
        With `active_cap`, refuse a new solve while the owner has that many unfinished ones; with
        `budget`, while the owner's daily cost budget is spent (a replay is never refused)."""
        fingerprint = request.fingerprint()
        if idempotency_key is not None and (found := self._by_key(owner, idempotency_key)):
            return _replay(*found, fingerprint)
        try:
            with self._sessions.begin() as session:
                if active_cap is not None or budget is not None:
                    lock_owner(session, owner)
                if active_cap is not None:
                    _enforce_cap(session, owner, active_cap)
                if budget is not None:
                    enforce_budget(session, owner, budget)
                solve = self._insert(session, owner, request, idempotency_key, fingerprint)
                return StartResult(solve=solve, created=True)
        except IntegrityError:
            # A concurrent start with the same key committed first; the unique index made us lose.
            if idempotency_key is None or not (found := self._by_key(owner, idempotency_key)):
                raise
            return _replay(*found, fingerprint)

    def get(self, owner: str, solve_id: UUID) -> SolveView:
        with self._sessions() as session:
            row = session.scalars(
                select(SolveRow)
                .where(SolveRow.id == solve_id, SolveRow.owner == owner)
                .options(selectinload(SolveRow.runs))
            ).first()
            if row is None:
                raise NotFound(f"solve {solve_id} not found")
            return solve_view(row, row.runs)

    def list(
        self,
        owner: str,
        *,
        status: SolveStatus | None = None,
        repo_url: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SolvePage:
        limit = max(1, min(limit, MAX_PAGE))
        query = select(SolveRow).where(SolveRow.owner == owner)
        if status is not None:
            query = query.where(SolveRow.status == status.value)
        if repo_url is not None:
            query = query.where(SolveRow.repo_url == repo_url)
        if cursor:
            after = Cursor.decode(cursor)
            query = query.where(tuple_(SolveRow.created_at, SolveRow.id) < tuple_(after.created_at, after.id))
        query = query.order_by(SolveRow.created_at.desc(), SolveRow.id.desc()).limit(limit + 1)
        with self._sessions() as session:
            rows = list(session.scalars(query.options(selectinload(SolveRow.runs))).all())
            items = [solve_view(row, row.runs) for row in rows[:limit]]
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode() if len(rows) > limit else None
        return SolvePage(items=items, next_cursor=next_cursor)

    def repositories(self, owner: str, limit: int = 200) -> builtins.list[str]:
        """The repositories of the owner's solves, most recently used first."""
        latest = func.max(SolveRow.created_at)
        query = (
            select(SolveRow.repo_url)
            .where(SolveRow.owner == owner)
            .group_by(SolveRow.repo_url)
            .order_by(latest.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return list(session.scalars(query).all())

    def insert_for_batch(
        self, session: Session, owner: str, request: SolveRequest, key: str | None, batch_id: UUID
    ) -> SolveView:
        """One instance of a batch, in the batch's own transaction (services/batches.py)."""
        return self._insert(session, owner, request, key, request.fingerprint(), batch_id=batch_id)

    def _insert(
        self,
        session: Session,
        owner: str,
        request: SolveRequest,
        key: str | None,
        fingerprint: str,
        *,
        batch_id: UUID | None = None,
    ) -> SolveView:
        registry.check_models(session, [*request.models, *filter(None, [request.selector_model])], self._policy)
        registry.check_image(self._policy, owner, request.sandbox_image)
        agent_config = registry.resolve_agent_config(session, request.agent_config)
        now = utcnow()
        solve = SolveRow(
            id=uuid4(),
            owner=owner,
            status=SolveStatus.QUEUED.value,
            repo_url=request.repo_url,
            ref=request.ref,
            issue_title=request.issue.title,
            issue_body=request.issue.body,
            issue_url=request.issue.url,
            external_ref=request.external_ref,
            models=list(request.models),
            attempts_per_model=request.attempts_per_model,
            max_parallel=min(request.max_parallel, request.run_count, self._policy.max_parallel),
            agent_config=agent_config,
            limits=request.limits.model_dump(mode="json"),
            setup_command=request.setup_command,
            test_command=request.test_command,
            detect_tests=request.detect_tests,
            verify_in=request.verify_in.value,
            callback_url=request.callback_url,
            sandbox_image=request.sandbox_image,
            selector_model=request.selector_model,
            reproduce=request.reproduce,
            reproduce_path=request.reproduce_path if request.reproduce else None,
            reproduce_command=request.reproduce_command if request.reproduce else None,
            publish=request.publish.model_dump(mode="json") if request.publish else None,
            batch_id=batch_id,
            idempotency_key=key,
            request_hash=fingerprint,
            created_at=now,
            updated_at=now,
        )
        runs = [
            RunRow(id=uuid4(), solve_id=solve.id, index=i, model=m, agent_config=agent_config, created_at=now)
            for i, m in enumerate(request.run_models())
        ]
        if wants_baseline(request):
            runs.append(baseline_row(solve.id, now))
        session.add(solve)
        session.flush()  # the solve row must exist before runs reference it and events lock it
        session.add_all(runs)
        session.flush()
        attempts = sum(1 for run in runs if run.kind != RunKind.BASELINE.value)
        records.append_event(
            session, solve.id, EventKind.STATUS, "solve queued", data={"status": "queued", "runs": attempts}
        )
        return solve_view(solve, runs)

    def _by_key(self, owner: str, key: str) -> tuple[SolveView, str] | None:
        with self._sessions() as session:
            row = session.scalars(
                select(SolveRow)
                .where(SolveRow.owner == owner, SolveRow.idempotency_key == key)
                .options(selectinload(SolveRow.runs))
            ).first()
            return None if row is None else (solve_view(row, row.runs), row.request_hash)


def _replay(found: SolveView, stored_hash: str, fingerprint: str) -> StartResult:
    if stored_hash != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request",
            details=[{"field": "Idempotency-Key", "rule": "idempotency_key_reused", "solve_id": str(found.id)}],
        )
    return StartResult(solve=found, created=False)


BASELINE_INDEX = -1  # apart from the attempts' 0, 1, …


def wants_baseline(request: SolveRequest) -> bool:
    """A baseline serves choosing among candidates: with two attempts or more that may run tests."""
    return request.run_count >= 2 and (request.test_command is not None or request.detect_tests)


def baseline_row(solve_id: UUID, now: datetime) -> RunRow:
    """The baseline run: the test command on the base commit in its own fresh sandbox, alongside the
    attempts (docs/architecture.md, "Choosing the champion"). It has no agent."""
    return RunRow(
        id=uuid4(), solve_id=solve_id, index=BASELINE_INDEX, model="baseline", agent_config=None,
        kind=RunKind.BASELINE.value, created_at=now,
    )  # fmt: skip
