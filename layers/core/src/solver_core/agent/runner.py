"""The resumable agent loop.

`DefaultAgent.run()` resets its messages, so it cannot continue a run. `SolverAgent` keeps
mini-swe-agent's step (query the model, execute actions) and re-implements the short loop body of
`run()` with the same exception handling, one step at a time, so the driver can checkpoint after
every step and stop between steps: on exit, on cancellation, at the end of a time budget or a
chunk of steps. A fresh agent in a fresh process continues from the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from minisweagent.agents.default import DefaultAgent
from minisweagent.exceptions import FormatError, InterruptAgentFlow

from solver_core.agent.checkpoint import AgentState, Checkpointer, Counters
from solver_core.agent.templates import cache_upstream_templates

# What `SolverAgent` mirrors of mini-swe-agent's `DefaultAgent` (the package is pinned to its minor
# version in pyproject.toml): a SHA-256 prefix of each method's dedented source. A test compares
# them with the installed package and names what changed, so an upgrade that alters the loop fails
# loudly instead of drifting silently; re-read `begin`/`advance` against the new source, then update.
MIRRORED_UPSTREAM: dict[str, str] = {
    "DefaultAgent.run": "a26ce815cd196f66",
    "DefaultAgent.step": "62d7dd0371d98096",
    "DefaultAgent.add_messages": "e67c3299e214b3be",
    "DefaultAgent.handle_uncaught_exception": "01295f7e3919439f",
    "DefaultAgent._render_template": "a03ea1ba08fe4aea",
}


class StopReason(StrEnum):
    EXITED = "exited"  # the agent finished: submitted, a limit, an error
    CANCELLED = "cancelled"
    BUDGET = "budget"  # the invocation's time budget is nearly spent
    CHUNK = "chunk"  # the requested number of steps for this invocation is done


class SolverAgent(DefaultAgent):
    """mini-swe-agent's DefaultAgent, able to start fresh or continue from an AgentState."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cache_upstream_templates()  # each template compiled once, not at every step (agent/templates.py)
        super().__init__(*args, **kwargs)

    def begin(self, task: str) -> list[dict[str, Any]]:
        """What `run()` does before its loop: the system and task messages."""
        self.extra_template_vars |= {"task": task}
        self.messages = []
        return self.add_messages(
            self.model.format_message(role="system", content=self._render_template(self.config.system_template)),
            self.model.format_message(role="user", content=self._render_template(self.config.instance_template)),
        )

    def load(self, state: AgentState) -> None:
        self.messages = list(state.messages)
        self.extra_template_vars = dict(state.extra_template_vars)
        self.cost = state.counters.cost
        self.n_calls = state.counters.n_calls
        self.n_consecutive_format_errors = state.counters.n_consecutive_format_errors
        self._start_time = state.counters.start_time

    def advance(self) -> list[dict[str, Any]]:
        """One iteration of `run()`'s loop; returns the messages it added. Unexpected errors are
        recorded as an exit message (as `run()` does) and re-raised."""
        before = len(self.messages)
        try:
            self.step()
            self.n_consecutive_format_errors = 0
        except FormatError as e:
            self.cost += e.messages[0].get("extra", {}).get("cost", 0.0)  # billed before parsing failed
            self.n_consecutive_format_errors += 1
            self.add_messages(*e.messages)
            if 0 < self.config.max_consecutive_format_errors <= self.n_consecutive_format_errors:
                self.add_messages(
                    {
                        "role": "exit",
                        "content": "RepeatedFormatError",
                        "extra": {"exit_status": "RepeatedFormatError", "submission": ""},
                    }
                )
        except InterruptAgentFlow as e:
            self.add_messages(*e.messages)
        except Exception as e:
            self.handle_uncaught_exception(e)
            raise
        return self.messages[before:]

    def close_interrupted_actions(self) -> list[dict[str, Any]]:
        """After resuming from an error, answer the actions the error cut off, so the conversation
        stays well-formed (providers refuse a tool call without its result)."""
        last = self.messages[-1] if self.messages else {}
        actions = (last.get("extra") or {}).get("actions") or []
        if last.get("role") != "assistant" or not actions:
            return []
        interrupted = {
            "output": "",
            "returncode": -1,
            "exception_info": "This command was interrupted: its sandbox was lost. The repository was restored "
            "from the last checkpoint in a new sandbox; run the command again if you still need its result.",
        }
        outputs = [interrupted] * len(actions)
        return self.add_messages(*self.model.format_observation_messages(last, outputs, self.get_template_vars()))

    @property
    def finished(self) -> bool:
        return bool(self.messages) and self.messages[-1].get("role") == "exit"

    def counters(self, previous: Counters) -> Counters:
        return Counters(
            cost=self.cost,
            n_calls=self.n_calls,
            n_consecutive_format_errors=self.n_consecutive_format_errors,
            tokens=previous.tokens,
            start_time=self._start_time,
            partial_diff_digest=previous.partial_diff_digest,
            partial_diff_messages=previous.partial_diff_messages,
            sandbox_id=previous.sandbox_id,
        )


@dataclass
class StepReport:
    step: int
    messages: list[dict[str, Any]]
    state: AgentState


def tokens_of(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        usage = ((message.get("extra") or {}).get("response") or {}).get("usage") or {}
        total += int(usage.get("total_tokens") or 0)
    return total


@dataclass
class Driver:
    """Runs steps of one agent until it exits or must stop, checkpointing after each."""

    agent: SolverAgent
    state: AgentState
    checkpointer: Checkpointer
    should_stop: Callable[[], StopReason | None]
    before_checkpoint: Callable[[AgentState], None] = lambda _state: None
    after_step: Callable[[StepReport], None] = lambda _report: None

    def start(self, task: str) -> None:
        """A brand-new run: the first part holds the system and task messages and template vars."""
        self.agent._start_time = time.time()
        first = self.agent.begin(task)
        self.state.messages = list(first)
        self.state.extra_template_vars = dict(self.agent.extra_template_vars)
        self.state.counters = self.agent.counters(self.state.counters)
        self.state.counters.partial_diff_messages = len(first)  # the clean checkout covers the task
        self.checkpointer.append(self.state, first, with_vars=True)

    def run(self, max_steps: int | None = None) -> StopReason:
        taken = 0
        while not self.agent.finished:
            if max_steps is not None and taken >= max_steps:
                return StopReason.CHUNK
            if reason := self.should_stop():
                return reason
            try:
                added = self.agent.advance()
            except Exception:
                # Keep the trajectory up to and including the error, then let the caller map it.
                self._record(self.agent.messages[len(self.state.messages) :], failed=True)
                raise
            self._record(added)
            taken += 1
        return StopReason.EXITED

    def _record(self, added: list[dict[str, Any]], *, failed: bool = False) -> None:
        self.state.messages.extend(added)
        counters = self.agent.counters(self.state.counters)
        counters.tokens += tokens_of(added)
        self.state.counters = counters
        if not failed:  # after an error the sandbox may be gone: no partial diff, just the record
            self.before_checkpoint(self.state)
        self.checkpointer.append(self.state, added)
        self.after_step(StepReport(step=self.state.counters.n_calls, messages=added, state=self.state))
