"""Response bodies of the HTTP API. Field names are the contract; fields may be added."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, RootModel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from solver_core.models import EventView, SolveRequest
from solver_core.presenters import SolveOut
from solver_core.services.catalog import AgentConfigInfo, ModelInfo
from solver_core.status import RunStatus, SolveStatus


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class SolveRequestBody(RootModel[dict[str, Any]]):
    """The POST /solves body as powertools sees it: any JSON object.

    The real validation needs the deployment's RequestPolicy as pydantic context, which powertools
    cannot pass, so the route validates with SolveRequest itself; the OpenAPI document still shows
    SolveRequest's schema, borrowed here.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(SolveRequest.__pydantic_core_schema__)


class ErrorDetail(BaseModel):
    """One broken rule: where (`field`, and `in` for parameters) and which (`rule`)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    field: str | None = None
    rule: str | None = None
    message: str | None = None
    in_: str | None = Field(default=None, alias="in")


class ErrorInfo(Out):
    code: str = Field(description="stable machine-readable error code, e.g. validation_failed")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str | None = None


class ErrorBody(Out):
    """The one shape of every error response."""

    error: ErrorInfo


class Links(Out):
    self: str
    events: str
    cancel: str
    stats: str


class SolveCreated(Out):
    id: UUID
    status: SolveStatus
    created: bool = Field(description="false when an Idempotency-Key replay returned an existing solve")
    links: Links


class SolveList(Out):
    items: list[SolveOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class EventPage(Out):
    items: list[EventView]
    next_after: int = Field(description="pass as ?after= to get only newer events")


class CancelResult(Out):
    changed: bool = Field(description="false when the solve had already finished or been cancelled")
    solve: SolveOut


class PublishAccepted(Out):
    id: UUID
    accepted: bool = Field(description="publishing runs in the background; see the solve's publication")


class RunStats(Out):
    id: UUID
    index: int
    model: str
    status: RunStatus
    files_changed: int | None
    lines_added: int | None
    lines_removed: int | None
    duration_s: float | None = Field(description="from launch to finish, or to now while running")
    steps: int
    step_limit: int
    cost_usd: float
    tokens: int
    progress_pct: float | None = Field(description="steps taken of the step limit while the run is active")


class SolveStats(Out):
    id: UUID
    status: SolveStatus
    runs_total: int
    runs_by_status: dict[str, int]
    files_changed: int | None = Field(description="of the champion's patch")
    lines_added: int | None
    lines_removed: int | None
    duration_s: float = Field(description="from the request to the finish, or to now while unfinished")
    steps: int
    cost_usd: float
    tokens: int
    progress_pct: float | None = Field(description="mean progress of the runs (finished ones count 100) while active")
    runs: list[RunStats]


class CheckResult(Out):
    ok: bool
    detail: str | None = None
    latency_ms: float


class Health(Out):
    status: Literal["ok"]
    checks: dict[str, CheckResult]
    checked_at: datetime


class ModelList(Out):
    models: list[ModelInfo]
    agent_configs: list[AgentConfigInfo]
