"""The `replay:PATH` model driving mini-swe-agent's DefaultAgent over a local shell."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from minisweagent.agents.default import DefaultAgent
from minisweagent.config import builtin_config_dir
from minisweagent.environments.local import LocalEnvironment
from minisweagent.exceptions import InterruptAgentFlow, LimitsExceeded

from solver_core.agent.replay import (
    EXIT_STATUS,
    ReplayAction,
    ReplayExhausted,
    ReplayModel,
    load_replay_actions,
    tool_call_id,
)

pytestmark = pytest.mark.unit

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
TASK = "Write two files."
ACTIONS: list[Any] = [
    {"command": "echo one > first.txt", "thought": "Start with the first file."},
    "echo two > second.txt",
    "cat first.txt second.txt",
    SUBMIT,
]


def mini_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((builtin_config_dir / "mini.yaml").read_text())
    return config


def write_replay(path: Path, actions: list[Any]) -> Path:
    path.write_text(yaml.safe_dump({"actions": actions}))
    return path


def make_agent(replay: Path, workdir: Path) -> DefaultAgent:
    config = mini_config()
    # The caller passes the YAML's whole model section through; the replay model must accept it.
    model = ReplayModel(path=replay, **config["model"])
    env = LocalEnvironment(cwd=str(workdir), env={})
    return DefaultAgent(model, env, **(config["agent"] | {"step_limit": 10}))


def start(agent: DefaultAgent, task: str = TASK) -> None:
    """The first half of DefaultAgent.run(): the system and task messages, without the loop."""
    agent.extra_template_vars |= {"task": task}
    agent.messages = []
    agent.add_messages(
        agent.model.format_message(role="system", content=agent._render_template(agent.config.system_template)),
        agent.model.format_message(role="user", content=agent._render_template(agent.config.instance_template)),
    )


def drive(agent: DefaultAgent) -> dict[str, Any]:
    """The loop of DefaultAgent.run() without its reset, as a resumed agent needs."""
    while agent.messages[-1].get("role") != "exit":
        try:
            agent.step()
        except InterruptAgentFlow as exc:
            agent.add_messages(*exc.messages)
    extra: dict[str, Any] = agent.messages[-1]["extra"]
    return extra


def assistant_commands(messages: list[dict[str, Any]]) -> list[str]:
    return [a["command"] for m in messages if m["role"] == "assistant" for a in m["extra"]["actions"]]


def test_a_replay_that_submits_ends_submitted_and_its_actions_ran(tmp_path: Path) -> None:
    agent = make_agent(write_replay(tmp_path / "replay.yaml", ACTIONS), tmp_path)
    result = agent.run(TASK)
    assert result["exit_status"] == "Submitted"
    assert (tmp_path / "first.txt").read_text() == "one\n"
    assert (tmp_path / "second.txt").read_text() == "two\n"
    assert assistant_commands(agent.messages) == [ACTIONS[0]["command"], *ACTIONS[1:]]
    tool_messages = [m for m in agent.messages if m["role"] == "tool"]
    assert json.loads(tool_messages[2]["content"]) == {"returncode": 0, "output": "one\ntwo\n"}


def test_messages_are_shaped_like_litellm_tool_calls(tmp_path: Path) -> None:
    model = ReplayModel(path=write_replay(tmp_path / "replay.yaml", ACTIONS))
    message = model.query([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    assert message["role"] == "assistant"
    assert message["content"] == "Start with the first file."
    (call,) = message["tool_calls"]
    assert call == {
        "id": "call_replay_0000",
        "type": "function",
        "function": {"name": "bash", "arguments": json.dumps({"command": "echo one > first.txt"})},
    }
    assert message["extra"]["actions"] == [{"command": "echo one > first.txt", "tool_call_id": "call_replay_0000"}]
    assert message["extra"]["cost"] == 0.0
    assert message["extra"]["replay_index"] == 0
    assert model.config.model_name == f"replay:{tmp_path / 'replay.yaml'}"
    assert model.serialize()["info"]["config"]["model_type"] == "solver_core.agent.replay.ReplayModel"


def test_a_replay_without_the_sentinel_ends_replay_exhausted(tmp_path: Path) -> None:
    agent = make_agent(write_replay(tmp_path / "replay.yaml", ACTIONS[:3]), tmp_path)
    result = agent.run(TASK)
    assert result == {"exit_status": EXIT_STATUS, "submission": ""}
    assert agent.messages[-1]["content"] == "ReplayExhausted"
    assert agent.n_calls == 4  # three actions and the query that found none left
    assert issubclass(ReplayExhausted, LimitsExceeded)


def test_a_saved_trajectory_replays_the_same_commands_and_messages(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = make_agent(write_replay(tmp_path / "replay.yaml", ACTIONS), first_dir)
    first.run(TASK)
    trajectory = tmp_path / "trajectory.json"
    first.save(trajectory)

    actions = load_replay_actions(trajectory)
    assert actions == load_replay_actions(tmp_path / "replay.yaml")
    assert actions[0] == ReplayAction("echo one > first.txt", "Start with the first file.")

    second = make_agent(trajectory, second_dir)
    assert second.run(TASK)["exit_status"] == "Submitted"
    assert without_timestamps(second.messages) == without_timestamps(first.messages)


def without_timestamps(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stripped = copy.deepcopy(messages)
    for message in stripped:
        message.get("extra", {}).pop("timestamp", None)
    return stripped


def test_actions_come_from_tool_calls_when_a_trajectory_has_no_parsed_actions(tmp_path: Path) -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": "ls"})}},
        {"id": "b", "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": "pwd"})}},
    ]
    trajectory = {
        "info": {},
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "assistant", "content": "Look around.", "tool_calls": calls},
            {"role": "tool", "content": "x", "tool_call_id": "a"},
            {"role": "exit", "content": "", "extra": {"exit_status": "Submitted"}},
        ],
        "trajectory_format": "mini-swe-agent-1.1",
    }
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps(trajectory))
    assert load_replay_actions(path) == [ReplayAction("ls", "Look around."), ReplayAction("pwd")]


def test_a_fresh_model_and_agent_resume_from_the_messages(tmp_path: Path) -> None:
    replay = write_replay(tmp_path / "replay.yaml", ACTIONS)
    first = make_agent(replay, tmp_path)
    start(first)
    first.step()
    first.step()
    assert not (tmp_path / "result.txt").exists()

    resumed = make_agent(replay, tmp_path)  # as if restored from a checkpoint in another process
    resumed.messages = copy.deepcopy(first.messages)
    resumed.extra_template_vars |= {"task": TASK}
    message = resumed.query()
    assert message["extra"]["replay_index"] == 2
    assert message["extra"]["actions"] == [{"command": ACTIONS[2], "tool_call_id": tool_call_id(2)}]
    resumed.execute_actions(message)
    assert drive(resumed)["exit_status"] == "Submitted"
    assert assistant_commands(resumed.messages) == assistant_commands(make_agent_run(replay, tmp_path / "again"))


def make_agent_run(replay: Path, workdir: Path) -> list[dict[str, Any]]:
    workdir.mkdir()
    agent = make_agent(replay, workdir)
    agent.run(TASK)
    return agent.messages


def test_querying_twice_with_the_same_messages_gives_the_same_action(tmp_path: Path) -> None:
    model = ReplayModel(path=write_replay(tmp_path / "replay.yaml", ACTIONS))
    history = [{"role": "user", "content": "u"}]
    assert model.query(history)["tool_calls"] == model.query(history)["tool_calls"]


BAD_FILES = {
    "not_a_mapping": ("just a string\n", "got a str"),
    "bare_list": ("- ls\n- pwd\n", "bare list"),
    "wrong_keys": ("steps: [ls]\n", "keys ['steps']"),
    "actions_not_a_list": ("actions: ls\n", "'actions' must be a list"),
    "empty_actions": ("actions: []\n", "contains no actions"),
    "number_command": ("actions: [ls, 3]\n", "action 1: the command must be a string, got int"),
    "null_command": ("actions:\n  - command:\n", "action 0: the command must be a string, got NoneType"),
    "blank_command": ("actions: ['  ']\n", "action 0: the command is empty"),
    "unknown_action_key": ("actions:\n  - {cmd: ls}\n", "unknown keys ['cmd']"),
    "thought_not_a_string": ("actions:\n  - {command: ls, thought: [a]}\n", "'thought' must be a string"),
    "broken_yaml": ("actions: [ls\n", "neither JSON nor YAML"),
    "trajectory_without_actions": ('{"messages": [{"role": "user", "content": "hi"}]}', "contains no actions"),
    "trajectory_bad_arguments": (
        json.dumps({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{"}}]}]}),
        "message 0: a tool call without JSON arguments",
    ),
    "trajectory_command_missing": (
        json.dumps({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]}),
        "message 0: the command must be a string",
    ),
}


@pytest.mark.parametrize(("content", "expected"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_replay_file_is_a_value_error_naming_the_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"replay file .*bad\.yaml") as raised:
        ReplayModel(path=path)
    assert expected in str(raised.value)


def test_a_missing_replay_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.yaml: does not exist"):
        load_replay_actions(tmp_path / "missing.yaml")
