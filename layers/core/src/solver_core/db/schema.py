"""The relational schema, for PostgreSQL and SQLite alike.

Changing it means adding an Alembic revision under `db/migrations/versions`; a test checks that
the migrations and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from solver_core.status import EventKind, RunStatus, SolveStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid); PostgreSQL gets a bigint identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


UNFINISHED_SOLVES = "status NOT IN ('succeeded', 'failed', 'cancelled')"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: type[SolveStatus] | type[RunStatus] | type[EventKind]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType, list[str]: JsonType}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SolveRow(Timestamps, Base):
    __tablename__ = "solves"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=SolveStatus.QUEUED.value)
    repo_url: Mapped[str] = mapped_column(String(2048))
    ref: Mapped[str | None] = mapped_column(String(255))
    issue_title: Mapped[str] = mapped_column(String(300))
    issue_body: Mapped[str] = mapped_column(Text, default="")
    issue_url: Mapped[str | None] = mapped_column(String(2048))
    external_ref: Mapped[dict[str, Any] | None]
    models: Mapped[list[str]]
    attempts_per_model: Mapped[int] = mapped_column(Integer, default=1)
    max_parallel: Mapped[int] = mapped_column(Integer)
    agent_config: Mapped[str | None] = mapped_column(String(100))
    limits: Mapped[dict[str, Any]]
    setup_command: Mapped[str | None] = mapped_column(Text)
    test_command: Mapped[str | None] = mapped_column(Text)
    # Detect a test command from the repository when none is given (off: `--no-tests`).
    detect_tests: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Where VerifyPatch runs the tests (models.VerifyIn).
    verify_in: Mapped[str] = mapped_column(String(20), default="fresh_sandbox", server_default="fresh_sandbox")
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    sandbox_image: Mapped[str | None] = mapped_column(String(512))  # overrides the deployment's image
    selector_model: Mapped[str | None] = mapped_column(String(255))  # the judge of tied candidates
    selection_cost_usd: Mapped[float] = mapped_column(default=0.0, server_default="0")  # the judge's calls
    # Reproduction scripts (docs/architecture.md, "Choosing the champion", reproduction scripts).
    reproduce: Mapped[bool] = mapped_column(default=False, server_default=false())
    reproduce_path: Mapped[str | None] = mapped_column(String(255))
    reproduce_command: Mapped[str | None] = mapped_column(Text)
    # The cloud batch this solve is an instance of (POST /batches); its execution starts it, not the sweeper.
    batch_id: Mapped[UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    execution_ref: Mapped[str | None] = mapped_column(String(2048))
    champion_run_id: Mapped[UUID | None] = mapped_column(Uuid)
    error: Mapped[str | None] = mapped_column(Text)
    publish: Mapped[dict[str, Any] | None]  # the request's publish option (PublishOptions)
    publication: Mapped[dict[str, Any] | None]  # what publishing left on GitHub (Publication)
    selection: Mapped[dict[str, Any] | None]  # how PickChampion ranked the candidates (selection.models)
    # Loaded explicitly (selectinload) where needed; lazy loading would hide N+1 queries.
    runs: Mapped[list[RunRow]] = relationship(order_by="RunRow.index", lazy="raise", viewonly=True)

    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key"),
        CheckConstraint(_in("status", SolveStatus), name="status_valid"),
        Index("ix_solves_owner_created", "owner", "created_at", "id"),
        Index("ix_solves_owner_status_created", "owner", "status", "created_at", "id"),
        # The start route counts the owner's unfinished solves (the per-owner cap); without this it
        # reads every solve the owner ever made.
        Index(
            "ix_solves_owner_unfinished",
            "owner",
            postgresql_where=text(UNFINISHED_SOLVES),
            sqlite_where=text(UNFINISHED_SOLVES),
        ),
    )


BATCH_STATUSES = ("running", "finished", "failed", "cancelled")


class BatchRow(Base):
    """A cloud batch (POST /batches): its instances are solves with `batch_id`; counts are read from them."""

    __tablename__ = "batches"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(20), default="running")
    models: Mapped[list[str]]
    attempts: Mapped[int] = mapped_column(Integer)
    max_concurrency: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    execution_ref: Mapped[str | None] = mapped_column(String(2048))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in BATCH_STATUSES)})", name="status_valid"),
        Index("ix_batches_owner_created", "owner", "created_at"),
    )


class RunRow(Timestamps, Base):
    __tablename__ = "runs"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    solve_id: Mapped[UUID] = mapped_column(ForeignKey("solves.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(255))
    agent_config: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED.value)
    exit_status: Mapped[str | None] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    retryable: Mapped[bool] = mapped_column(default=False)
    sandbox_id: Mapped[str | None] = mapped_column(String(255))
    base_commit: Mapped[str | None] = mapped_column(String(64))
    steps: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    checkpoint_key: Mapped[str | None] = mapped_column(String(1024))
    trajectory_key: Mapped[str | None] = mapped_column(String(1024))
    patch_key: Mapped[str | None] = mapped_column(String(1024))
    log_key: Mapped[str | None] = mapped_column(String(1024))
    patch_stats: Mapped[dict[str, Any] | None]
    tests: Mapped[dict[str, Any] | None]
    # The detached commands of the step in progress (workflow/commands.py), for its next invocation.
    commands: Mapped[dict[str, Any] | None]
    detected_test_command: Mapped[str | None] = mapped_column(Text)  # found in the repository by prepare
    # "attempt" (an agent's), "baseline" (the tests on the base commit) or "check" (reproduction
    # scripts against a candidate); models.RunKind.
    kind: Mapped[str] = mapped_column(String(20), default="attempt", server_default="attempt")
    reproduce_key: Mapped[str | None] = mapped_column(String(1024))  # an attempt's reproduction script
    target_run_id: Mapped[UUID | None] = mapped_column(Uuid)  # a check run's candidate (null: the base commit)
    reproduction: Mapped[dict[str, Any] | None]  # a check run's results (models.Reproduction)

    __table_args__ = (
        UniqueConstraint("solve_id", "index"),
        CheckConstraint(_in("status", RunStatus), name="status_valid"),
        Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
    )


class EventRow(Base):
    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(SeqType, Identity(), primary_key=True)
    solve_id: Mapped[UUID] = mapped_column(ForeignKey("solves.id", ondelete="CASCADE"))
    run_id: Mapped[UUID | None] = mapped_column(Uuid)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None]

    __table_args__ = (
        CheckConstraint(_in("kind", EventKind), name="kind_valid"),
        Index("ix_events_solve_seq", "solve_id", "seq"),
    )


class AIModelRow(Base):
    """A litellm model id that may be requested, with its prices (litellm's map is used when null)."""

    __tablename__ = "ai_models"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    model_kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    input_cost_per_token: Mapped[float | None]
    output_cost_per_token: Mapped[float | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentConfigRow(Base):
    """A named mini-swe-agent configuration: a bundled base YAML plus overrides."""

    __tablename__ = "agent_configs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    base: Mapped[str] = mapped_column(String(255))
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AllowlistRow(Base):
    """A repository (`host/org/repo`) or organisation (`host/org`) for which an owner may use the
    deployment's Git credentials and publishing (services/allowlist.py)."""

    __tablename__ = "owner_allowlist"

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    target: Mapped[str] = mapped_column(String(512), primary_key=True)
    allow_workflows: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
