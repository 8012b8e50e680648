"""What a batch writes into its output folder (docs/architecture.md, "Batches"):

- `preds.json`: the SWE-bench harness's predictions file, keyed by instance id;
- `batch.json`: the batch's state (outcome, solve, cost and time per instance), which resume reads;
- `<instance_id>/<instance_id>.traj.json` and `<instance_id>/runs.json`;
- `report.json` after `--evaluate`, with the harness's fields.

Every file is written to a temporary name and renamed over the old one, so an interrupted batch
never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    """Where an instance stands. `patch` and `no_patch` are final: resume skips them, and only they
    are in preds.json. The others are run again."""

    PENDING = "pending"
    RUNNING = "running"
    PATCH = "patch"  # the solve chose a champion
    NO_PATCH = "no_patch"  # the agents ran and produced no patch: a definitive failure
    INFRA_ERROR = "infra_error"  # sandbox, model or engine trouble: run again, never an empty prediction
    ERROR = "error"  # the instance could not start (a missing replay file, a refused request)
    NOT_STARTED = "not_started"  # --cost-limit-total was reached first

    @property
    def final(self) -> bool:
        return self in {Outcome.PATCH, Outcome.NO_PATCH}


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceRecord(Model):
    instance_id: str
    outcome: Outcome = Outcome.PENDING
    solve_id: UUID | None = None
    error: str | None = None
    cost_usd: float = 0.0
    duration_s: float = 0.0
    runs: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class BatchState(Model):
    """`batch.json`."""

    name: str
    models: list[str]
    attempts: int
    total_instances: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    instances: dict[str, InstanceRecord] = Field(default_factory=dict)

    def record(self, instance_id: str) -> InstanceRecord:
        if instance_id not in self.instances:
            self.instances[instance_id] = InstanceRecord(instance_id=instance_id)
        return self.instances[instance_id]

    def tally(self) -> None:
        self.counts = {o.value: 0 for o in Outcome}
        for record in self.instances.values():
            self.counts[record.outcome.value] += 1
        self.cost_usd = round(sum(r.cost_usd for r in self.instances.values()), 6)


class Prediction(Model):
    """One entry of preds.json, as the SWE-bench harness reads it."""

    instance_id: str
    model_name_or_path: str
    model_patch: str


class TestsStatus(Model):
    success: list[str] = Field(default_factory=list)
    failure: list[str] = Field(default_factory=list)


class InstanceReport(Model):
    """The harness's per-instance report, with `tests_status`."""

    patch_is_None: bool = False
    patch_exists: bool = False
    patch_successfully_applied: bool = False
    resolved: bool = False
    tests_status: dict[str, TestsStatus] = Field(default_factory=dict)
    error: str | None = None
    infra_failure: bool = False  # the evaluation failed for infrastructure reasons (sandbox, clone)


class Report(Model):
    """`report.json`: the harness's summary fields (swebench 5's `make_run_report`, schema version 2),
    the matching id lists, and per-instance reports. As in the harness, `error_ids` are submitted
    instances with a patch whose evaluation gave no verdict; an instance without a prediction is
    `incomplete`. `infra_failure_ids` (a subset of `error_ids`) are those whose evaluation failed for
    infrastructure reasons, with `failure_reasons`; Solver does not classify test logs, so
    `ambiguous_failure_ids` stays empty."""

    total_instances: int
    submitted_instances: int
    completed_instances: int
    resolved_instances: int
    unresolved_instances: int
    infra_failure_instances: int
    ambiguous_failure_instances: int
    empty_patch_instances: int
    error_instances: int
    completed_ids: list[str]
    incomplete_ids: list[str]
    empty_patch_ids: list[str]
    submitted_ids: list[str]
    resolved_ids: list[str]
    unresolved_ids: list[str]
    infra_failure_ids: list[str]
    ambiguous_failure_ids: list[str]
    failure_reasons: dict[str, str]
    error_ids: list[str]
    schema_version: int = 2
    instances: dict[str, InstanceReport] = Field(default_factory=dict)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    write_atomic(path, (json.dumps(value, indent=2, sort_keys=False) + "\n").encode())


def read_state(path: Path) -> BatchState | None:
    if not path.exists():
        return None
    return BatchState.model_validate_json(path.read_bytes())


def predictions(state: BatchState, patches: dict[str, str]) -> dict[str, Prediction]:
    """preds.json's content: every instance with a final outcome, its champion patch or ""."""
    return {
        iid: Prediction(instance_id=iid, model_name_or_path=state.name, model_patch=patches.get(iid, ""))
        for iid, record in sorted(state.instances.items())
        if record.outcome.final
    }
