"""Long commands of a step (clone, setup, tests) across invocations (docs/architecture.md, "Long
commands across invocations").

A step runs its commands detached in the sandbox and records, in the run's row, which command of
which phase is in flight. Each invocation picks up from there: it checks on the command, waits for
it while its own time allows, and returns "not done" otherwise; the state machine waits and calls
the step again (the local orchestrator just waits for it, having no invocation limit). Nothing is
started without time left in the invocation to record that it was started.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from solver_core.errors import RunCancelled, SolverError
from solver_core.ports import Sandbox
from solver_core.sandbox import detached
from solver_core.sandbox.detached import CommandSpec, Job, JobResult
from solver_core.services.runs import RunService

HEARTBEAT_EVERY_S = 30.0


@dataclass(frozen=True)
class Window:
    """What one invocation may spend: a monotonic deadline by which its work must be recorded
    (None: no limit), and how long it may wait for a running command before handing back."""

    deadline: float | None = None
    max_wait_s: float | None = None

    @classmethod
    def from_remaining(cls, remaining_s: float, margin_s: float, max_wait_s: float | None = None) -> Window:
        return cls(deadline=time.monotonic() + max(remaining_s - margin_s, 0), max_wait_s=max_wait_s)

    def left(self) -> float:
        return math.inf if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def bound(self, timeout_s: float) -> float:
        """A synchronous command's timeout: its own, cut to what the invocation has left."""
        return min(timeout_s, self.left())

    def wait_until(self) -> float | None:
        """Until when this invocation may wait for a running command (None: until it ends)."""
        ends = [] if self.deadline is None else [self.deadline]
        if self.max_wait_s is not None:
            ends.append(time.monotonic() + self.max_wait_s)
        return min(ends) if ends else None


UNLIMITED = Window()  # the local orchestrator's: no invocation limit, waits for every command


class Progress(BaseModel):
    """A step's phases in one sandbox: which are done, which command is in flight, and the small
    facts earlier phases left for later ones (a base commit, a short log)."""

    model_config = ConfigDict(extra="forbid")

    step: str
    sandbox_id: str
    done: list[str] = Field(default_factory=list)
    phase: str | None = None
    job: Job | None = None
    facts: dict[str, str] = Field(default_factory=dict)

    def finished(self, phase: str) -> bool:
        return phase in self.done


class StepCommands:
    """The step-level helper: detached commands of a run's step, persisted in `runs.commands`."""

    def __init__(self, runs: RunService) -> None:
        self.runs = runs

    def progress(self, run_id: UUID, step: str, sandbox: Sandbox) -> Progress:
        """The step's progress in this sandbox; a fresh one for another step or sandbox (a resumed
        run works in a new sandbox and starts over)."""
        found = self.stored(run_id, step)
        if found is not None and found.sandbox_id == sandbox.id:
            return found
        return Progress(step=step, sandbox_id=sandbox.id)

    def stored(self, run_id: UUID, step: str) -> Progress | None:
        """The step's recorded progress, in whichever sandbox it was made (None: none recorded)."""
        stored = self.runs.commands(run_id)
        if stored:
            with contextlib.suppress(ValidationError):
                found = Progress.model_validate(stored)
                if found.step == step:
                    return found
        return None

    def save(self, run_id: UUID, progress: Progress) -> None:
        self.runs.set_fields(run_id, commands=progress.model_dump(mode="json"))

    def complete(self, run_id: UUID, progress: Progress, phase: str, **facts: str) -> None:
        progress.done.append(phase)
        progress.phase, progress.job = None, None
        progress.facts.update(facts)
        self.save(run_id, progress)

    def clear(self, run_id: UUID) -> None:
        self.runs.set_fields(run_id, commands=None)

    def run(
        self,
        run_id: UUID,
        progress: Progress,
        phase: str,
        *,
        sandbox: Sandbox,
        spec: Callable[[], CommandSpec],
        window: Window,
    ) -> JobResult | None:
        """The phase's command: started unless it was, then waited for while the window allows.
        None: it is still running (or there was no time to start it); call again later."""
        if progress.phase == phase and progress.job is not None:
            job = progress.job
        else:
            if window.left() <= 0:
                return None
            built = spec()
            job = detached.new_job(sandbox.id, built.timeout_s)
            progress.phase, progress.job = phase, job
            self.save(run_id, progress)  # recorded first: a start that is cut off is found and redone
            detached.start(sandbox, job, built)
        last_beat = [time.monotonic()]

        def tick() -> None:
            if self.runs.stop_reason(run_id):
                with contextlib.suppress(SolverError):
                    sandbox.stop_job(job.id)
                raise RunCancelled("the solve is being cancelled")
            if time.monotonic() - last_beat[0] >= HEARTBEAT_EVERY_S:
                self.runs.heartbeat(run_id)
                last_beat[0] = time.monotonic()

        self.runs.heartbeat(run_id)
        return detached.wait(
            sandbox, job, until=window.wait_until(), restart=lambda: detached.start(sandbox, job, spec()), tick=tick
        )
