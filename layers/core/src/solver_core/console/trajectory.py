"""A run's trajectory as steps for the viewer: the stored trajectory once the run has one, else the
checkpoint parts written so far (a run still going). The parts are read as plain JSON here, not
through `agent.checkpoint`, which imports mini-swe-agent: the API functions do without it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from solver_core.artifacts import keys
from solver_core.errors import NotFound
from solver_core.ports import ArtifactStore

LONG_OUTPUT_LINES = 25  # outputs longer than this start collapsed
LONG_OUTPUT_CHARS = 4000
TRAJECTORY_FORMAT = "mini-swe-agent-1.1"  # as agent.checkpoint writes it


@dataclass(frozen=True)
class Action:
    command: str
    output: str | None
    returncode: int | None
    exception: str | None

    @property
    def long(self) -> bool:
        text = self.output or ""
        return text.count("\n") > LONG_OUTPUT_LINES or len(text) > LONG_OUTPUT_CHARS

    @property
    def preview(self) -> str:
        return "\n".join((self.output or "").splitlines()[:5])


@dataclass
class Step:
    number: int
    thought: str
    actions: list[Action] = field(default_factory=list)
    cost_usd: float = 0.0
    started_at: float | None = None  # the previous message's time: the model was asked then
    ended_at: float | None = None  # the last output's (else the answer's) time

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(self.ended_at - self.started_at, 0.0)

    notes: list[str] = field(default_factory=list)  # format errors and other messages to the model


@dataclass
class Trajectory:
    source: str  # "trajectory" (the stored artifact) or "checkpoint" (parts so far)
    task: str
    steps: list[Step]
    exit_status: str | None
    raw: dict[str, Any]


def load(store: ArtifactStore, solve_id: UUID, run_id: UUID, trajectory_key: str | None) -> Trajectory:
    """The run's trajectory; NotFound when it has neither a trajectory nor a checkpoint yet."""
    if trajectory_key is not None and store.exists(trajectory_key):
        data = json.loads(store.get(trajectory_key))
        return from_messages(data.get("messages") or [], source="trajectory", raw=data)
    messages = checkpoint_messages(store, solve_id, run_id)
    if not messages:
        raise NotFound(f"run {run_id} has no trajectory yet")
    raw = {
        "info": {"exit_status": "", "submission": ""},
        "messages": messages,
        "trajectory_format": "mini-swe-agent-1.1",
    }
    return from_messages(messages, source="checkpoint", raw=raw)


def checkpoint_messages(store: ArtifactStore, solve_id: UUID, run_id: UUID) -> list[dict[str, Any]]:
    """The messages of the checkpoint parts, restored as the agent restores them (each part's `base`
    says how many earlier messages it continues)."""
    messages: list[dict[str, Any]] = []
    for name in store.list(keys.checkpoint_prefix(solve_id, run_id)):
        part = json.loads(store.get(name))
        base = part.get("base")
        if isinstance(base, int):
            del messages[base:]
        messages.extend(m for m in part.get("messages") or [] if isinstance(m, dict))
    return messages


def from_messages(messages: list[Any], *, source: str, raw: dict[str, Any]) -> Trajectory:
    steps: list[Step] = []
    task = ""
    exit_status: str | None = None
    previous_at: float | None = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, extra = message.get("role"), message.get("extra") or {}
        if not isinstance(extra, dict):
            extra = {}
        at = _number(extra.get("timestamp"))
        content = _text(message.get("content"))
        if role == "assistant":
            cost = _number(extra.get("cost")) or 0.0
            step = Step(len(steps) + 1, content, cost_usd=cost, started_at=previous_at or at, ended_at=at)
            pending = [a for a in extra.get("actions") or [] if isinstance(a, dict)]
            step.actions = [Action(_text(a.get("command")), None, None, None) for a in pending]
            steps.append(step)
        elif role in {"tool", "user"} and steps and "raw_output" in extra:
            _record_output(steps[-1], extra)
        elif role == "user" and not steps and not task:
            task = content
        elif role == "user" and steps:
            steps[-1].notes.append(content)
        elif role == "exit":
            exit_status = _text(extra.get("exit_status")) or None
        previous_at = at or previous_at
    return Trajectory(source=source, task=task, steps=steps, exit_status=exit_status, raw=raw)


def _record_output(step: Step, extra: dict[str, Any]) -> None:
    returncode = extra.get("returncode")
    result = (
        _text(extra.get("raw_output")),
        returncode if isinstance(returncode, int) else None,
        _text(extra.get("exception_info")) or None,
    )
    for i, action in enumerate(step.actions):
        if action.output is None and action.returncode is None and action.exception is None:
            step.actions[i] = Action(action.command, *result)
            break
    else:
        step.actions.append(Action("", *result))
    step.ended_at = _number(extra.get("timestamp")) or step.ended_at


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # multimodal content: the text parts
        return "\n".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
