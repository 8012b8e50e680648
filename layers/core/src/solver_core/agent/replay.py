"""The `replay:PATH` model: replays recorded shell actions as tool calls, with no LLM and no network.

It speaks LitellmModel's tool-calling format, so the agent config and observation template of a
real run (mini.yaml's `model:` section) work unchanged. The replay file is either
`{"actions": [...]}` (each item a command string or `{"command": ..., "thought": ...}`) or a saved
mini-swe-agent trajectory, whose assistant messages' actions are replayed in order.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from minisweagent.exceptions import LimitsExceeded
from minisweagent.models.utils.actions_toolcall import format_toolcall_observation_messages
from minisweagent.models.utils.openai_multimodal import expand_multimodal_content
from pydantic import BaseModel

# LitellmModelConfig's default, copied so that replaying never imports litellm.
DEFAULT_OBSERVATION_TEMPLATE = (
    "{% if output.exception_info %}<exception>{{output.exception_info}}</exception>\n{% endif %}"
    "<returncode>{{output.returncode}}</returncode>\n<output>\n{{output.output}}</output>"
)
EXIT_STATUS = "ReplayExhausted"
_ACTION_KEYS = frozenset({"command", "thought", "cost"})


@dataclass(frozen=True)
class ReplayAction:
    command: str
    thought: str = ""
    cost: float = 0.0  # what the recorded call cost (USD); it counts against the run's cost limit


class ReplayExhausted(LimitsExceeded):
    """Every recorded action has been replayed and the replay never submitted."""

    def __init__(self) -> None:
        super().__init__(
            {"role": "exit", "content": EXIT_STATUS, "extra": {"exit_status": EXIT_STATUS, "submission": ""}}
        )


class ReplayModelConfig(BaseModel):
    path: str
    model_name: str
    observation_template: str = DEFAULT_OBSERVATION_TEMPLATE
    format_error_template: str = "{{ error }}"
    multimodal_regex: str = ""


def load_replay_actions(path: str | Path) -> list[ReplayAction]:
    """The actions of a replay file, in order; ValueError naming the file when it is not one."""
    source = Path(path)
    data = _parse(source)
    if isinstance(data, dict) and "actions" in data and "messages" not in data:
        actions = _actions_from_list(source, data["actions"])
    elif isinstance(data, dict) and isinstance(data.get("messages"), list) and "actions" not in data:
        actions = _actions_from_trajectory(source, data["messages"])
    else:
        raise ValueError(
            f"replay file {source}: expected a mapping with an 'actions' list or a saved mini-swe-agent "
            f"trajectory with a 'messages' list, got {_describe(data)}"
        )
    if not actions:
        raise ValueError(f"replay file {source}: contains no actions")
    return actions


def _parse(source: Path) -> Any:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"replay file {source}: does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"replay file {source}: cannot be read: {exc}") from exc
    try:
        return json.loads(text)  # trajectories are JSON and can be large: the C parser first
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"replay file {source}: is neither JSON nor YAML: {exc}") from exc


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        return f"a mapping with keys {sorted(map(str, data))}"
    if isinstance(data, list):
        return "a bare list (wrap it as `actions: [...]`)"
    return f"a {type(data).__name__}"


def _actions_from_list(source: Path, items: Any) -> list[ReplayAction]:
    if not isinstance(items, list):
        raise ValueError(f"replay file {source}: 'actions' must be a list, got {_describe(items)}")
    return [_action_from_item(source, index, item) for index, item in enumerate(items)]


def _action_from_item(source: Path, index: int, item: Any) -> ReplayAction:
    where = f"replay file {source}: action {index}"
    if isinstance(item, dict):
        unknown = set(map(str, item)) - _ACTION_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} (allowed: command, thought, cost)")
        thought = item.get("thought") or ""
        if not isinstance(thought, str):
            raise ValueError(f"{where}: 'thought' must be a string, got {type(thought).__name__}")
        cost = item.get("cost", 0.0)
        if isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 <= cost < math.inf:
            raise ValueError(f"{where}: 'cost' must be a non-negative number of USD")
        return ReplayAction(_command(where, item.get("command")), thought, float(cost))
    return ReplayAction(_command(where, item))


def _command(where: str, command: Any) -> str:
    if not isinstance(command, str):
        raise ValueError(f"{where}: the command must be a string, got {type(command).__name__}")
    if not command.strip():
        raise ValueError(f"{where}: the command is empty")
    return command


def _actions_from_trajectory(source: Path, messages: list[Any]) -> list[ReplayAction]:
    actions: list[ReplayAction] = []
    for number, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            where = f"replay file {source}: message {number}"
            commands = _message_commands(where, message)
            content = message.get("content")
            thought = content if isinstance(content, str) else ""
            # The thought belongs to the message, so it goes with the message's first action only.
            actions.extend(ReplayAction(command, thought if i == 0 else "") for i, command in enumerate(commands))
    return actions


def _message_commands(where: str, message: dict[str, Any]) -> list[str]:
    extra = message.get("extra")
    recorded = extra.get("actions") if isinstance(extra, dict) else None
    if isinstance(recorded, list) and recorded:
        return [_command(where, action.get("command") if isinstance(action, dict) else None) for action in recorded]
    return [_tool_call_command(where, call) for call in message.get("tool_calls") or []]


def _tool_call_command(where: str, call: Any) -> str:
    try:
        arguments = json.loads(call["function"]["arguments"])
    except (TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: a tool call without JSON arguments: {exc!r}") from exc
    return _command(where, arguments.get("command") if isinstance(arguments, dict) else None)


def replay_position(messages: list[dict[str, Any]]) -> int:
    """The index of the next action, read from the conversation so a restored agent continues where it was."""
    for message in reversed(messages):
        index = (message.get("extra") or {}).get("replay_index") if message.get("role") == "assistant" else None
        if isinstance(index, int):
            return index + 1
    return 0


def tool_call_id(index: int) -> str:
    return f"call_replay_{index:04d}"


class ReplayModel:
    """mini-swe-agent `Model` that answers each query with the next recorded action."""

    def __init__(
        self,
        *,
        path: str | Path,
        observation_template: str = DEFAULT_OBSERVATION_TEMPLATE,
        format_error_template: str = "{{ error }}",
        model_name: str | None = None,
        multimodal_regex: str = "",
        **ignored_extra: Any,  # the rest of a YAML `model:` section (model_kwargs, cost_tracking, ...)
    ) -> None:
        self.config = ReplayModelConfig(
            path=str(path),
            model_name=model_name or f"replay:{path}",
            observation_template=observation_template,
            format_error_template=format_error_template,
            multimodal_regex=multimodal_regex,
        )
        self.actions: tuple[ReplayAction, ...] = tuple(load_replay_actions(path))

    def query(self, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        index = replay_position(messages)
        if index >= len(self.actions):
            raise ReplayExhausted
        action, call_id = self.actions[index], tool_call_id(index)
        return {
            "role": "assistant",
            "content": action.thought,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"command": action.command})},
                }
            ],
            "extra": {
                "actions": [{"command": action.command, "tool_call_id": call_id}],
                "cost": action.cost,
                "timestamp": time.time(),
                "replay_index": index,
            },
        }

    def format_message(self, **kwargs: Any) -> dict[str, Any]:
        message: dict[str, Any] = expand_multimodal_content(kwargs, pattern=self.config.multimodal_regex)
        return message

    def format_observation_messages(
        self, message: dict[str, Any], outputs: list[dict[str, Any]], template_vars: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        observations: list[dict[str, Any]] = format_toolcall_observation_messages(
            actions=message.get("extra", {}).get("actions", []),
            outputs=outputs,
            observation_template=self.config.observation_template,
            template_vars=template_vars,
            multimodal_regex=self.config.multimodal_regex,
        )
        return observations

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        return self.config.model_dump()

    def serialize(self) -> dict[str, Any]:
        model_type = f"{self.__class__.__module__}.{self.__class__.__name__}"
        return {"info": {"config": {"model": self.config.model_dump(mode="json"), "model_type": model_type}}}
