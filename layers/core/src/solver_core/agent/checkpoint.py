"""Incremental agent checkpoints and the trajectory built from them.

Each step writes one part: the messages it added and the counters after it. A 250-step run thus
writes bytes in proportion to its steps, not to their square. Restoring lists the parts and
concatenates them; the trajectory (mini-swe-agent's format) is derived from the same parts, so it
survives any failure up to the last completed step.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from minisweagent import __version__ as mini_version
from pydantic import BaseModel, Field

from solver_core.agent.redact import Redactor
from solver_core.artifacts import keys
from solver_core.ports import ArtifactStore

TRAJECTORY_FORMAT = "mini-swe-agent-1.1"


class Counters(BaseModel):
    cost: float = 0.0
    n_calls: int = 0
    n_consecutive_format_errors: int = 0
    tokens: int = 0
    start_time: float = Field(default_factory=time.time)
    partial_diff_digest: str | None = None
    # How many messages the stored partial diff covers, and the sandbox the state was built in: a
    # resume in another sandbox (the checkout plus that diff) forgets the steps after it (`rewind_for`).
    partial_diff_messages: int | None = None
    sandbox_id: str | None = None


class CheckpointPart(BaseModel):
    version: int = 1
    seq: int
    # How many restored messages precede this part's; fewer than restored means a resumed run
    # dropped the error exit its previous attempt ended with.
    base: int | None = None
    messages: list[dict[str, Any]]
    counters: Counters
    extra_template_vars: dict[str, Any] | None = None


class AgentState(BaseModel):
    """Everything needed to continue a run with a fresh agent in a fresh process."""

    messages: list[dict[str, Any]] = Field(default_factory=list)
    counters: Counters = Field(default_factory=Counters)
    extra_template_vars: dict[str, Any] = Field(default_factory=dict)
    parts: int = 0
    # How many of `messages` (a prefix) the stored parts hold. A part whose write failed leaves its
    # messages to the next part, so a later restore never misses a step (the fault suite found one).
    stored: int = 0

    def drop_error_exit(self) -> bool:
        """Forget an exit caused by an error (mini-swe-agent records a traceback for those), so a
        retried run continues where it was; exits the agent chose (Submitted, limits) stay."""
        ended = self.exit
        if ended is not None and "traceback" in ended:
            self.messages.pop()
            return True
        return False

    def rewind_for(self, sandbox_id: str) -> bool:
        """Continue in `sandbox_id`. A new sandbox holds the checkout plus the last partial diff, which
        may be older than the last step (diffs are throttled): forget the steps it does not cover,
        so the conversation matches the files. Their cost stays counted. True when steps were dropped."""
        counters = self.counters
        moved = counters.sandbox_id is not None and counters.sandbox_id != sandbox_id
        counters.sandbox_id = sandbox_id
        covered = counters.partial_diff_messages
        if not moved or covered is None:
            return False
        uncovered = self.messages[covered:]
        # Only the action the loss cut off (no result yet): it is answered "interrupted", as before.
        if not uncovered or (len(uncovered) == 1 and uncovered[0].get("role") == "assistant"):
            return False
        del self.messages[covered:]
        return True

    @property
    def exit(self) -> dict[str, Any] | None:
        """The exit message's `extra` (exit_status, submission) once the agent has finished."""
        last = self.messages[-1] if self.messages else {}
        return dict(last.get("extra") or {}) if last.get("role") == "exit" else None


class Checkpointer:
    def __init__(self, store: ArtifactStore, solve_id: UUID, run_id: UUID, redactor: Redactor) -> None:
        self._store = store
        self._solve_id = solve_id
        self._run_id = run_id
        self._redactor = redactor

    @property
    def prefix(self) -> str:
        return keys.checkpoint_prefix(self._solve_id, self._run_id)

    def restore(self) -> AgentState | None:
        names = self._store.list(self.prefix)
        if not names:
            return None
        state = AgentState()
        for name in names:
            part = CheckpointPart.model_validate_json(self._store.get(name))
            if part.base is not None:
                del state.messages[part.base :]
            state.messages.extend(part.messages)
            state.counters = part.counters
            if part.extra_template_vars is not None:
                state.extra_template_vars = part.extra_template_vars
            state.parts = part.seq + 1
        state.stored = len(state.messages)
        return state

    def append(self, state: AgentState, new_messages: list[dict[str, Any]], *, with_vars: bool = False) -> str:
        """Write the next part: `new_messages` (the end of `state.messages`) and whatever earlier
        messages a failed write left unstored; `state.parts` advances. Returns the part's key."""
        base = min(state.stored, len(state.messages) - len(new_messages))
        part = CheckpointPart(
            seq=state.parts,
            base=base,
            messages=self._redactor.redact_data(state.messages[base:]),
            counters=state.counters,
            extra_template_vars=self._redactor.redact_data(state.extra_template_vars) if with_vars else None,
        )
        key = keys.checkpoint_part(self._solve_id, self._run_id, state.parts)
        self._store.put(key, part.model_dump_json().encode(), content_type="application/json")
        state.parts += 1
        state.stored = len(state.messages)
        return key


def trajectory(state: AgentState, *, config: dict[str, Any], exit_status: str | None = None) -> dict[str, Any]:
    """The run as mini-swe-agent's own `agent.save()` would have written it."""
    ended = state.exit or {}
    return {
        "info": {
            "model_stats": {"instance_cost": state.counters.cost, "api_calls": state.counters.n_calls},
            "config": config,
            "mini_version": mini_version,
            "exit_status": ended.get("exit_status") or exit_status or "",
            "submission": ended.get("submission", ""),
        },
        "messages": state.messages,
        "trajectory_format": TRAJECTORY_FORMAT,
    }


def trajectory_bytes(data: dict[str, Any], redactor: Redactor) -> bytes:
    return json.dumps(redactor.redact_data(data), indent=2, default=str).encode()
