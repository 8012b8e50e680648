"""The resumable driver: incremental checkpoints, resume equivalence, mini-swe-agent's exit rules."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from minisweagent.models.test_models import DeterministicToolcallModel, make_toolcall_output

from solver_core.agent.checkpoint import AgentState, Checkpointer
from solver_core.agent.config import agent_setup
from solver_core.agent.redact import Redactor
from solver_core.agent.runner import Driver, SolverAgent, StopReason
from solver_core.artifacts.local import LocalArtifactStore
from solver_core.models import Limits
from solver_core.sandbox.base import check_submitted

pytestmark = pytest.mark.unit


class MemoryEnv:
    """An Environment whose commands print a fixed amount of output, without any process."""

    def __init__(self, output_bytes: int = 100) -> None:
        self.config: dict[str, Any] = {}
        self.output_bytes = output_bytes
        self.commands: list[str] = []

    def execute(self, action: dict[str, Any], cwd: str = "", *, timeout: int | None = None) -> dict[str, Any]:
        self.commands.append(action["command"])
        output = {"output": action["command"] + "\n" + "x" * self.output_bytes, "returncode": 0, "exception_info": ""}
        if action["command"].startswith("echo COMPLETE"):
            output["output"] = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n"
        check_submitted(output)
        return output

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        return {"system": "Linux", "release": "6", "version": "1", "machine": "x86_64"} | kwargs

    def serialize(self) -> dict[str, Any]:
        return {}


def tool_output(command: str, index: int) -> dict[str, Any]:
    call = f"call_{index}"
    tool_call = {
        "id": call,
        "type": "function",
        "function": {"name": "bash", "arguments": f'{{"command": "{command}"}}'},
    }
    output = make_toolcall_output(None, [tool_call], [{"command": command, "tool_call_id": call}])
    output["extra"]["cost"] = 0.001  # small enough that the cost limit never interferes
    return output


def model_for(commands: list[str]) -> DeterministicToolcallModel:
    setup = agent_setup("mini.yaml", {}, Limits(step_limit=500))
    outputs = [tool_output(c, i) for i, c in enumerate(commands)]
    return DeterministicToolcallModel(outputs=outputs, observation_template=setup.model["observation_template"])


def make_driver(store: LocalArtifactStore, run: uuid.UUID, commands: list[str], env: MemoryEnv) -> Driver:
    setup = agent_setup("mini.yaml", {}, Limits(step_limit=500))
    agent = SolverAgent(model_for(commands), env, **setup.agent)
    checkpointer = Checkpointer(store, uuid.UUID(int=1), run, Redactor(["s3cr3t-value-123"]))
    restored = checkpointer.restore()
    driver = Driver(agent, restored or AgentState(), checkpointer, should_stop=lambda: None)
    if restored is None:
        driver.start("Fix the bug")
    else:
        agent.load(restored)
    return driver


def strip_times(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "timestamp"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [clean(m) for m in messages]


def test_checkpoint_parts_do_not_grow_with_the_history(tmp_path: Path) -> None:
    store, run = LocalArtifactStore(tmp_path), uuid.uuid4()
    commands = [f"step{i}" for i in range(250)] + ["echo COMPLETE"]
    driver = make_driver(store, run, commands, MemoryEnv(output_bytes=8000))
    assert driver.run() is StopReason.EXITED
    sizes = [len(store.get(k)) for k in store.list(f"solves/{uuid.UUID(int=1)}/runs/{run}/checkpoint/")]
    assert len(sizes) == 252  # opening messages + 251 steps
    step_parts = sizes[1:-1]
    assert max(step_parts) < 1.2 * min(step_parts)  # step 250 writes what step 10 writes
    assert sum(sizes) < 252 * 20_000  # each step stores its output twice (rendered, and raw in `extra`)


def test_resuming_with_a_fresh_agent_continues_the_same_conversation(tmp_path: Path) -> None:
    commands = ["ls", "cat a", "sed -i x a", "echo COMPLETE"]
    whole_env = MemoryEnv()
    whole = make_driver(LocalArtifactStore(tmp_path / "whole"), uuid.uuid4(), commands, whole_env)
    whole.run()

    store, run, env = LocalArtifactStore(tmp_path / "chunked"), uuid.uuid4(), MemoryEnv()
    assert make_driver(store, run, commands, env).run(max_steps=2) is StopReason.CHUNK
    resumed = make_driver(store, run, commands, env)
    resumed.agent.model.current_index = 1  # type: ignore[attr-defined]  # a replay derives its cursor itself
    assert resumed.run() is StopReason.EXITED
    assert env.commands == whole_env.commands == commands
    assert strip_times(resumed.state.messages) == strip_times(whole.state.messages)
    assert resumed.state.counters.n_calls == 4
    assert resumed.state.exit == {"exit_status": "Submitted", "submission": ""}


def test_repeated_format_errors_end_the_run_like_mini_swe_agent(tmp_path: Path) -> None:
    setup = agent_setup("mini.yaml", {}, Limits())
    from minisweagent.exceptions import FormatError

    error = FormatError({"role": "user", "content": "bad format", "extra": {"interrupt_type": "FormatError"}})
    model = DeterministicToolcallModel(outputs=[{"extra": {"actions": [{"raise": error}]}}] * 3)
    agent = SolverAgent(model, MemoryEnv(), **setup.agent)
    driver = Driver(
        agent,
        AgentState(),
        Checkpointer(LocalArtifactStore(tmp_path), uuid.uuid4(), uuid.uuid4(), Redactor()),
        should_stop=lambda: None,
    )
    driver.start("task")
    assert driver.run() is StopReason.EXITED
    assert driver.state.exit == {"exit_status": "RepeatedFormatError", "submission": ""}


def test_an_unexpected_error_is_checkpointed_then_raised(tmp_path: Path) -> None:
    store, run = LocalArtifactStore(tmp_path), uuid.uuid4()
    setup = agent_setup("mini.yaml", {}, Limits())
    model = DeterministicToolcallModel(
        outputs=[tool_output("ls", 0), {"extra": {"actions": [{"raise": ConnectionError("boom")}]}}]
    )
    checkpointer = Checkpointer(store, uuid.UUID(int=1), run, Redactor())
    driver = Driver(
        SolverAgent(model, MemoryEnv(), **setup.agent), AgentState(), checkpointer, should_stop=lambda: None
    )
    driver.start("task")
    with pytest.raises(ConnectionError):
        driver.run()
    restored = checkpointer.restore()
    assert restored is not None
    assert restored.exit is not None
    assert restored.exit["exit_status"] == "ConnectionError"


def test_stop_requests_are_honoured_between_steps(tmp_path: Path) -> None:
    driver = make_driver(LocalArtifactStore(tmp_path), uuid.uuid4(), ["a", "b", "c"], MemoryEnv())
    calls = iter([None, StopReason.CANCELLED])
    driver.should_stop = lambda: next(calls)
    assert driver.run() is StopReason.CANCELLED
    assert driver.state.counters.n_calls == 1


def test_checkpoints_are_redacted(tmp_path: Path) -> None:
    store, run = LocalArtifactStore(tmp_path), uuid.uuid4()
    driver = make_driver(store, run, ["echo s3cr3t-value-123", "echo COMPLETE"], MemoryEnv())
    driver.run()
    blobs = b"".join(store.get(k) for k in store.list("solves/"))
    assert b"s3cr3t-value-123" not in blobs
    assert b"[REDACTED]" in blobs
