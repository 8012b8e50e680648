"""Start a command in a sandbox now, learn how it ended later: from another invocation, another
process (docs/architecture.md, "Long commands across invocations").

A `Job` is the handle to persist between the two: which sandbox, which job, its deadline. Nothing
about the job's outcome is trusted from the handle; it is read from the sandbox's runner (its exit
code and output), and on the local backend from the host, where the sandbox cannot write.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from solver_core.errors import CommandLost
from solver_core.ports import Sandbox
from solver_core.sandbox.base import KILL_GRACE_S, TIMEOUT_EXIT_CODE, CommandResult
from solver_core.sandbox.jobs import JobStatus

# A started runner makes its directory at once: absent or half-started for this long, it never ran.
START_GRACE_S = 60
# The runner kills its command at the deadline; one still running this much later is stopped by us.
OVERDUE_GRACE_S = KILL_GRACE_S + 60
FIRST_POLL_S = 0.02
MAX_POLL_S = 5.0

Pending = Literal["running", "absent"]


class Job(BaseModel):
    """A detached command's handle: small, JSON, safe to keep in a database row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    sandbox_id: str
    timeout_s: int
    started_at: float  # epoch seconds: the handle crosses processes and machines

    @property
    def deadline(self) -> float:
        return self.started_at + self.timeout_s


@dataclass(frozen=True)
class CommandSpec:
    """A command to run detached: `cwd` is absolute in the sandbox (None: its home)."""

    command: str
    timeout_s: int
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult(CommandResult):
    cancelled: bool = False
    duration_s: float = 0.0


def new_job(sandbox_id: str, timeout_s: int) -> Job:
    return Job(
        id=secrets.token_hex(12), sandbox_id=sandbox_id, timeout_s=max(int(timeout_s), 1), started_at=time.time()
    )


def start(sandbox: Sandbox, job: Job, spec: CommandSpec) -> None:
    """Start the job (again: a job that already started is left alone)."""
    sandbox.start_job(job.id, spec.command, cwd=spec.cwd, env=spec.env, timeout=job.timeout_s)


def check(sandbox: Sandbox, job: Job) -> JobResult | Pending:
    """The job's result once it ended; "running" while it runs; "absent" when it never started."""
    status = sandbox.job_status(job.id)
    age = time.time() - job.started_at
    if status.state == "exited":
        return _result(job, status, age)
    if status.state == "lost":
        raise CommandLost(f"job {job.id} stopped without recording how it ended (killed from outside the runner?)")
    if status.state == "absent":
        if time.time() > job.deadline + OVERDUE_GRACE_S:  # started again and again, never there
            raise CommandLost(f"job {job.id} never started")
        return "absent" if age > START_GRACE_S else "running"
    if status.state == "starting" and age > START_GRACE_S:
        raise CommandLost(f"job {job.id} never got going")
    if time.time() > job.deadline + OVERDUE_GRACE_S:
        sandbox.stop_job(job.id)
        return JobResult("", TIMEOUT_EXIT_CODE, timed_out=True, duration_s=round(age, 3))
    return "running"


def _result(job: Job, status: JobStatus, age: float) -> JobResult:
    code = status.exit_code if status.exit_code is not None else -1
    duration = status.duration_s if status.duration_s is not None else round(age, 3)
    # 124: `timeout` stopped it; 137 after the deadline: `timeout -k` had to kill it.
    timed_out = not status.cancelled and (code == TIMEOUT_EXIT_CODE or (code == 137 and duration >= job.timeout_s))
    return JobResult(status.output, code, timed_out=timed_out, cancelled=status.cancelled, duration_s=duration)


def wait(
    sandbox: Sandbox,
    job: Job,
    *,
    until: float | None = None,
    restart: Callable[[], None] | None = None,
    tick: Callable[[], None] | None = None,
) -> JobResult | None:
    """Poll the job until it ends (its result) or the monotonic time `until` (None). `restart`
    starts it again if it never started; `tick` runs before every poll (cancel checks, heartbeats)."""
    interval = FIRST_POLL_S
    while True:
        if tick is not None:
            tick()
        outcome = check(sandbox, job)
        if isinstance(outcome, JobResult):
            return outcome
        if outcome == "absent" and restart is not None:
            restart()
        now = time.monotonic()
        if until is not None and now >= until:
            return None
        time.sleep(interval if until is None else min(interval, until - now))
        interval = min(interval * 1.5, MAX_POLL_S)


def run_to_end(sandbox: Sandbox, spec: CommandSpec) -> JobResult:
    """Start `spec` detached and wait for it here: the path of callers without an invocation limit."""
    job = new_job(sandbox.id, spec.timeout_s)
    start(sandbox, job, spec)
    result = wait(sandbox, job, restart=lambda: start(sandbox, job, spec))
    assert result is not None  # no `until`: it waited for the end
    return result
