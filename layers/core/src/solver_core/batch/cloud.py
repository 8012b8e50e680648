"""The cloud batch's boundary (POST /batches and its reads): the request, the views, where an owner's
input files may live, and the items the batch state machine reads (docs/architecture.md, "Batches in
the cloud")."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from solver_core import rules
from solver_core.models import DEFAULT_REPRODUCE_PATH, Command, Input, Limits, VerifyIn, View
from solver_core.status import SolveStatus

MAX_INLINE_INSTANCES = 500
# A file is read, validated and written in the request too (about 2.4 s per 500 instances on PostgreSQL,
# BENCHMARKS.md §12): this many keep it well inside API Gateway's 29 s, and hold SWE-bench's full test split.
MAX_FILE_INSTANCES = 2500
# A batch's own input file is read whole by the API function: far below its memory, far above a
# SWE-bench split (SWE-bench Verified's 500 instances take about 3 MB as JSONL).
MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024
INPUT_ROOT = "batch-inputs"

BatchStatus = Literal["running", "finished", "failed", "cancelled"]


def input_prefix(owner: str) -> str:
    """Where the owner's input files go in the artifacts bucket (`instances_key` must start with it):
    one folder per owner, so nobody can have another owner's file (or a solve's artifacts) read as
    instances."""
    return f"{INPUT_ROOT}/{hashlib.sha256(owner.encode()).hexdigest()[:32]}/"


def _model_name(value: str, info: ValidationInfo) -> str:
    return rules.check_model_name(value, rules.policy_of(info))


class BatchRequest(Input):
    """POST /batches: either `instances` (inline) or `instances_key` (a JSONL file in the artifacts
    bucket, under the caller's `input_prefix`), with what applies to every instance."""

    instances: list[dict[str, Any]] | None = Field(
        default=None, min_length=1, max_length=MAX_INLINE_INSTANCES, description="SWE-bench-shaped instances"
    )
    instances_key: str | None = Field(
        default=None, min_length=1, max_length=900, description="the S3 key of a JSONL file of instances"
    )
    models: list[Annotated[str, AfterValidator(_model_name)]] = Field(min_length=1, max_length=8)
    attempts: int = Field(default=1, ge=1, le=10, description="attempts per model and instance")
    max_concurrency: int = Field(default=10, ge=1, le=1000, description="instances solved at once")
    max_parallel: int = Field(default=3, ge=1, le=32, description="runs of one instance at once")
    limits: Limits = Field(default_factory=Limits)
    reproduce: bool = Field(default=False, description="ask each attempt for a reproduction script (see POST /solves)")
    reproduce_path: Annotated[str, AfterValidator(rules.check_repo_file)] = Field(
        default=DEFAULT_REPRODUCE_PATH,
        max_length=255,
        description="where the script goes, relative to the repository root; it is taken out of the patch",
    )
    reproduce_command: Command | None = Field(
        default=None, description="how the script runs, from the repository root; default `python <reproduce_path>`"
    )
    selector_model: Annotated[str, AfterValidator(_model_name)] | None = Field(
        default=None,
        description="a model that picks among each instance's candidates still tied on every test signal and on "
        "consensus (see POST /solves); `replay:PATH` where allowed",
    )
    verify_in: VerifyIn = Field(
        default=VerifyIn.FRESH_SANDBOX,
        description="fresh_sandbox (default): the tests run in a new sandbox with only the patch applied; "
        "same_sandbox: faster, in the sandbox the agent used, which trusts the agent",
    )
    detect_tests: bool = Field(
        default=True,
        description="for instances without test_command, detect the repository's test command; false runs no "
        "tests for them",
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=256, description="preds.json's model_name_or_path; the models joined"
    )

    @model_validator(mode="after")
    def _one_source(self) -> BatchRequest:
        if (self.instances is None) == (self.instances_key is None):
            raise ValueError("give either instances or instances_key")
        return self

    @property
    def batch_name(self) -> str:
        return self.name or "+".join(self.models)[:256]


class BatchCounts(View):
    total: int
    by_status: dict[SolveStatus, int] = Field(description="the instances' solves by status")
    done: int = Field(description="instances whose solve finished (succeeded, failed or cancelled)")
    with_patch: int = Field(description="instances whose solve chose a champion patch")


class BatchView(View):
    id: UUID
    name: str
    status: BatchStatus
    models: list[str]
    attempts: int
    max_concurrency: int
    counts: BatchCounts
    cost_usd: float
    created_at: datetime
    finished_at: datetime | None
    error: str | None = None
    execution_ref: str | None = Field(default=None, exclude=True)


class BatchCreated(View):
    id: UUID
    status: BatchStatus
    total: int
    created: bool = Field(description="False when an Idempotency-Key replay returned an existing batch")


class BatchCancelled(View):
    changed: int = Field(description="unfinished solves this request cancelled (0 when repeated)")
    batch: BatchView


class BatchItem(View):
    """One element of the items file the batch state machine's ItemReader reads."""

    solve_id: UUID
    instance_id: str
