"""What every sandbox adapter shares: the spec it is created from, command results, and the
mini-swe-agent `Environment` behaviour built on an adapter's raw `run`.

The agent loop runs outside the sandbox; only shell commands go in. A command that exits non-zero
is a result, not an error; a sandbox that disappears raises `SandboxGone`.
"""

from __future__ import annotations

import platform
import shlex
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from solver_core.errors import SandboxUnavailable
from solver_core.sandbox.jobs import (
    CONTROL_TIMEOUT_S,
    STATUS_OUTPUT_BYTES,
    JobStatus,
    check_job_id,
    parse_status,
    runner_argv,
)

SUBMIT_SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` returns, and what we report for our own deadlines
KILL_GRACE_S = 5
# Raw output kept per command; the agent's observation template shows far less (head and tail).
DEFAULT_MAX_OUTPUT_BYTES = 1_000_000
BASE_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
# How Solver's own commands start: a shell that reads no startup file. `bash -c` alone still reads
# `$BASH_ENV`, so the wrappers also drop it (and `ENV`, its POSIX-mode twin).
SOLVER_SHELL = ("bash", "--noprofile", "--norc", "-c")
STARTUP_VARIABLES = ("BASH_ENV", "ENV")


@dataclass(frozen=True)
class SandboxSpec:
    """How to create a sandbox. `envs` are visible to every command: never put secrets in them."""

    metadata: Mapping[str, str]
    lifetime_s: int
    idempotency_key: str | None = None
    template: str | None = None
    envs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxInfo:
    id: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class CommandResult:
    output: str
    returncode: int
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class OutputBuffer:
    """Keeps the head and the tail of a command's output within a byte budget."""

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self._half = max(limit // 2, 1)
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= self._half:
            self._tail_size -= len(self._tail[0])
            self.dropped += len(self._tail.popleft())

    def text(self) -> str:
        tail = b"".join(self._tail)
        middle = f"\n[... {self.dropped} bytes of output elided ...]\n".encode() if self.dropped else b""
        return (bytes(self._head) + middle + tail).decode("utf-8", errors="replace")


class SandboxEnvironmentConfig(BaseModel):
    """The `environment` section of an agent config, as far as sandboxes honour it."""

    model_config = ConfigDict(extra="ignore")

    cwd: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    timeout: int = 120
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES


class SandboxEnvironment(ABC):
    """mini-swe-agent's Environment protocol on top of an adapter's `run` (subclasses provide it)."""

    id: str
    home: str
    config: SandboxEnvironmentConfig
    backend_name = "sandbox"

    @property
    def workdir(self) -> str:
        return f"{self.home}/repo"

    @abstractmethod
    def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float,
        login: bool = False,
    ) -> CommandResult:
        """Run a shell command in the sandbox; the whole process tree dies at the deadline. Without
        `login` the shell reads no startup file (`~/.profile`, `~/.bashrc`, `$BASH_ENV`): Solver's
        own commands must not run what the agent wrote there."""

    def run_action(self, command: str, *, cwd: str, env: Mapping[str, str], timeout: float) -> CommandResult:
        """An agent's command (a backend may restrict these more than its own setup commands); it
        runs as the agent's own login shell."""
        return self.run(command, cwd=cwd, env=env, timeout=timeout, login=True)

    @abstractmethod
    def write_file(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    def read_file(self, path: str, *, limit: int | None = None) -> bytes: ...

    # --- detached commands (docs/architecture.md, "Long commands across invocations") ---------------
    # The runner keeps its state in the sandbox, under a random job id; `LocalSandbox` keeps it on
    # the host instead, out of the sandbox's reach.

    def job_dir(self, job_id: str) -> str:
        return f"{self.home}/.solver/jobs/{check_job_id(job_id)}"

    def start_job(
        self, job_id: str, command: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None, timeout: float
    ) -> None:
        """Start `command` detached: it outlives this call and this process, and dies at its own
        deadline (`timeout` seconds), when stopped, or with the sandbox. Starting the same job
        again does nothing."""
        limit = str(max(int(timeout), 1))
        # No startup files: neither for the runner (`bash -c` reads $BASH_ENV) nor for the command.
        unset = [f"--unset={name}" for name in STARTUP_VARIABLES]
        argv = ["env", *unset, *runner_argv("run", self.job_dir(job_id), limit, *SOLVER_SHELL, command)]
        self._spawn_detached(argv, cwd=cwd or self.home, env={**BASE_ENV, **(env or {})})

    def job_status(self, job_id: str) -> JobStatus:
        """Where the job is; for a finished one, its exit code and (the head and tail of) its output."""
        argv = runner_argv("status", self.job_dir(job_id), str(STATUS_OUTPUT_BYTES))
        return _status_of(job_id, self.run(shlex.join(argv), timeout=CONTROL_TIMEOUT_S))

    def stop_job(self, job_id: str) -> None:
        """Kill the job's whole process group; its exit is recorded as cancelled."""
        self.run(shlex.join(runner_argv("stop", self.job_dir(job_id))), timeout=CONTROL_TIMEOUT_S)

    @abstractmethod
    def _spawn_detached(self, argv: list[str], *, cwd: str, env: Mapping[str, str]) -> None:
        """Start `argv` in the sandbox without waiting for it or tying its life to this process."""

    def execute(self, action: dict[str, Any], cwd: str = "", *, timeout: int | None = None) -> dict[str, Any]:
        """Run one agent action in the repository; raise Submitted on the submit sentinel."""
        limit = timeout or self.config.timeout
        result = self.run_action(
            action.get("command", ""), cwd=cwd or self.config.cwd or self.workdir, env=self.config.env, timeout=limit
        )
        output: dict[str, Any] = {"output": result.output, "returncode": result.returncode, "exception_info": ""}
        if result.timed_out:
            output["exception_info"] = f"The command timed out after {limit} seconds and was killed."
            output["extra"] = {"exception_type": "TimeoutExpired"}
        check_submitted(output)
        return output

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        # Never the host's environment: template variables end up in prompts and trajectories.
        uname = platform.uname()._asdict()
        return {**self.config.model_dump(), **uname, "cwd": self.workdir, **kwargs}

    def serialize(self) -> dict[str, Any]:
        return {
            "info": {
                "config": {
                    "environment": self.config.model_dump(mode="json"),
                    "environment_type": f"{type(self).__module__}.{type(self).__name__}",
                    "sandbox_id": self.id,
                }
            }
        }


def _status_of(job_id: str, result: CommandResult) -> JobStatus:
    status = parse_status(result.output)
    if status is None:
        raise SandboxUnavailable(f"could not read the state of job {job_id}: {result.output.strip()[-300:]}")
    return status


def check_submitted(output: dict[str, Any]) -> None:
    """mini-swe-agent's submit convention: the sentinel as the first output line of a successful command."""
    from minisweagent.exceptions import Submitted  # only agent runs need it: API functions stay small

    lines = output.get("output", "").lstrip().splitlines(keepends=True)
    if lines and lines[0].strip() == SUBMIT_SENTINEL and output.get("returncode") == 0:
        submission = "".join(lines[1:])
        raise Submitted(
            {"role": "exit", "content": submission, "extra": {"exit_status": "Submitted", "submission": submission}}
        )
