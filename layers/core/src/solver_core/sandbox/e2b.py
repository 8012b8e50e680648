"""Sandboxes on e2b (SDK 2.x). Verified behaviour of the SDK is in docs/architecture.md.

- A command's deadline in the SDK kills only the direct child, so every command is wrapped in
  `timeout -k 5 N bash …`, which kills the whole process group, and the SDK gets a later deadline.
- The SDK runs every command under `/bin/bash -l -c`; Solver's own commands neutralise it (see
  `_solver_command`), the agent's keep their login shell.
- A non-zero exit raises `CommandExitException` in the SDK; here it is a result.
- SDK and transport errors become `SandboxGone`, `SandboxUnavailable` or `SandboxCapacityExceeded`.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import httpx
from e2b import CommandExitException, Sandbox, SandboxQuery
from e2b import exceptions as e2b_errors

from solver_core.errors import SandboxCapacityExceeded, SandboxGone, SandboxUnavailable, SolverError
from solver_core.sandbox.base import (
    BASE_ENV,
    KILL_GRACE_S,
    SOLVER_SHELL,
    STARTUP_VARIABLES,
    TIMEOUT_EXIT_CODE,
    CommandResult,
    OutputBuffer,
    SandboxEnvironment,
    SandboxEnvironmentConfig,
    SandboxInfo,
    SandboxSpec,
)
from solver_core.sandbox.template import e2b_template_name

HOME = "/home/user"
# The login shell the SDK starts reads `$HOME/.bash_profile`, `.bash_login` or `.profile`: pointed
# here it finds none (Debian's convention for a home that does not exist).
PROFILELESS_HOME = "/nonexistent"
SHELL_HOME_VARIABLE = "SOLVER_SHELL_HOME"
CONNECT_TIMEOUT_S = 30
SDK_DEADLINE_MARGIN_S = KILL_GRACE_S + 10  # our `timeout` wrapper must fire before the SDK's deadline
_IDEMPOTENCY_KEY = re.compile(r"[^a-z0-9-]+")

T = TypeVar("T")


def map_errors(sandbox_id: str | None = None) -> contextlib.AbstractContextManager[None]:
    return _mapped(sandbox_id)


@contextlib.contextmanager
def _mapped(sandbox_id: str | None) -> Iterator[None]:
    """Translate the SDK's exceptions into ours; order matters (subclasses before TimeoutException)."""
    label = f"sandbox {sandbox_id}" if sandbox_id else "e2b"
    try:
        yield
    except (SolverError, CommandExitException):
        raise
    except (e2b_errors.SandboxNotRunningException, e2b_errors.SandboxNotFoundException) as exc:
        raise SandboxGone(f"{label} is gone: {exc}") from exc
    except e2b_errors.RateLimitException as exc:
        raise SandboxCapacityExceeded(f"e2b refused a new sandbox: {exc}") from exc
    except (e2b_errors.ServiceBusyException, e2b_errors.SandboxUnreachableException, httpx.TransportError) as exc:
        raise SandboxUnavailable(f"{label} is unavailable: {exc}") from exc
    except e2b_errors.AuthenticationException as exc:
        raise SandboxUnavailable(f"e2b rejected the API key: {exc}") from exc
    except e2b_errors.SandboxException as exc:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status >= 500:
            raise SandboxUnavailable(f"{label}: e2b answered {status}: {exc}") from exc
        raise SandboxUnavailable(f"{label}: {exc}") from exc


def _solver_command(command: str, seconds: int) -> str:
    """One of Solver's own commands. The SDK starts every command as `/bin/bash -l -c`, a login
    shell that reads the profile of its HOME, which the agent can write: that outer shell gets a HOME
    with no profile (`PROFILELESS_HOME`), and the command gets its real HOME back (passed in
    `SHELL_HOME_VARIABLE`) in a shell that reads no startup file at all."""
    unset = " ".join(f"-u {name}" for name in (*STARTUP_VARIABLES, SHELL_HOME_VARIABLE))
    shell = " ".join(SOLVER_SHELL)
    return (
        f'exec /usr/bin/env {unset} HOME="${SHELL_HOME_VARIABLE}" '
        f"timeout -k {KILL_GRACE_S} {seconds} {shell} {shlex.quote(command)}"
    )


class E2BSandboxBackend:
    name = "e2b"

    def __init__(
        self,
        *,
        api_key: str | None,
        template: str | None = None,
        api_url: str | None = None,
        sandbox_url: str | None = None,
        env_config: SandboxEnvironmentConfig | None = None,
    ) -> None:
        self._connection: dict[str, Any] = {"api_key": api_key}
        if api_url:
            self._connection["api_url"] = api_url
        if sandbox_url:
            self._connection["sandbox_url"] = sandbox_url
        self.template = template
        self.env_config = env_config or SandboxEnvironmentConfig()

    def create(self, spec: SandboxSpec) -> E2BSandbox:
        key = _IDEMPOTENCY_KEY.sub("-", spec.idempotency_key.lower())[:255] if spec.idempotency_key else None
        image = spec.template or self.template
        with map_errors():
            sandbox = Sandbox.create(
                # e2b starts sandboxes from templates only: an image is asked for as the template
                # `solver template build --from-image` makes of it (docs/architecture.md).
                template=e2b_template_name(image) if image else None,
                timeout=spec.lifetime_s,
                metadata=dict(spec.metadata),
                envs=dict(spec.envs),
                idempotency_key=key,
                **self._connection,
            )
        return E2BSandbox(sandbox, self.env_config)

    def connect(self, sandbox_id: str) -> E2BSandbox:
        with map_errors(sandbox_id):
            sandbox = Sandbox.connect(sandbox_id, timeout=CONNECT_TIMEOUT_S, **self._connection)
        return E2BSandbox(sandbox, self.env_config)

    def kill(self, sandbox_id: str) -> bool:
        with map_errors(sandbox_id):
            return bool(Sandbox.kill(sandbox_id, **self._connection))

    def list(self, metadata: Mapping[str, str]) -> list[SandboxInfo]:
        found: list[SandboxInfo] = []
        with map_errors():
            paginator = Sandbox.list(query=SandboxQuery(metadata=dict(metadata)), **self._connection)
            while paginator.has_next:
                found += [SandboxInfo(s.sandbox_id, dict(s.metadata or {})) for s in paginator.next_items()]
        return found

    def check(self) -> None:
        self.list({"app": "solver-health-check"})


class E2BSandbox(SandboxEnvironment):
    backend_name = "e2b"

    def __init__(self, sandbox: Sandbox, config: SandboxEnvironmentConfig) -> None:
        self._sandbox = sandbox
        self.id = sandbox.sandbox_id
        self.home = HOME
        self.config = config

    def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float,
        login: bool = False,
    ) -> CommandResult:
        seconds = max(int(timeout), 1)
        envs = {**BASE_ENV, **(env or {})}
        if login:
            wrapped = f"timeout -k {KILL_GRACE_S} {seconds} bash -lc {shlex.quote(command)}"
        else:
            wrapped = _solver_command(command, seconds)
            envs[SHELL_HOME_VARIABLE] = envs.get("HOME", self.home)
            envs["HOME"] = PROFILELESS_HOME
        buffer = OutputBuffer(self.config.max_output_bytes)

        def collect(chunk: str) -> None:
            buffer.add(chunk.encode())

        returncode = self._call(
            lambda: (
                self._sandbox.commands.run(
                    wrapped,
                    cwd=cwd or self.home,
                    envs=envs,
                    timeout=seconds + SDK_DEADLINE_MARGIN_S,
                    on_stdout=collect,
                    on_stderr=collect,
                ).exit_code
            )
        )
        timed_out = returncode == TIMEOUT_EXIT_CODE
        return CommandResult(buffer.text(), returncode, timed_out=timed_out, truncated=buffer.dropped > 0)

    def _call(self, run: Callable[[], int]) -> int:
        try:
            with map_errors(self.id):
                return run()
        except CommandExitException as exc:
            return int(exc.exit_code)

    def _spawn_detached(self, argv: list[str], *, cwd: str, env: Mapping[str, str]) -> None:
        # envd keeps a background process running after the client lets go of its stream; with no
        # connection deadline (0) nothing of the SDK's kills it. Killing the sandbox does.
        # The SDK's `bash -l -c` gets a HOME with no profile, as for `run`; the runner gets the real one.
        envs = {**env, SHELL_HOME_VARIABLE: env.get("HOME", self.home), "HOME": PROFILELESS_HOME}
        command = f'exec /usr/bin/env -u {SHELL_HOME_VARIABLE} HOME="${SHELL_HOME_VARIABLE}" {shlex.join(argv)}'
        with map_errors(self.id):
            handle = self._sandbox.commands.run(command, background=True, cwd=cwd, envs=envs, timeout=0)
            handle.disconnect()

    def write_file(self, path: str, data: bytes) -> None:
        with map_errors(self.id):
            self._sandbox.files.write(path, data)

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        with map_errors(self.id):
            if limit is None:
                return bytes(self._sandbox.files.read(path, format="bytes"))
            data = bytearray()
            with self._sandbox.files.read(path, format="stream") as stream:
                for chunk in stream:
                    data += chunk
                    if len(data) > limit:
                        break
            return bytes(data[: limit + 1])

    def kill(self) -> bool:
        with map_errors(self.id):
            return bool(self._sandbox.kill())
