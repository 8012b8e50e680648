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

    def drop_error_exit(self) -> bool:
        """Forget an exit caused by an error (mini-swe-agent records a traceback for those), so a
        retried run continues where it was; exits the agent chose (Submitted, limits) stay."""
        ended = self.exit
        if ended is not None and "traceback" in ended:
            self.messages.pop()
            return True
        return False

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
        return state

    def append(self, state: AgentState, new_messages: list[dict[str, Any]], *, with_vars: bool = False) -> str:
        """Write the next part; `state.parts` advances. Returns the part's key."""
        part = CheckpointPart(
            seq=state.parts,
            base=len(state.messages) - len(new_messages),
            messages=self._redactor.redact_data(new_messages),
            counters=state.counters,
            extra_template_vars=self._redactor.redact_data(state.extra_template_vars) if with_vars else None,
        )
        key = keys.checkpoint_part(self._solve_id, self._run_id, state.parts)
        self._store.put(key, part.model_dump_json().encode(), content_type="application/json")
        state.parts += 1
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
