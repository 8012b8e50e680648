"""Sandboxes as Docker containers, driven through the `docker` command line (like mini-swe-agent's
DockerEnvironment), for machines where a Docker engine answers.

Commands run through `docker exec … timeout -k 5 N bash …` (a login shell for the agent's
commands only), so the deadline kills the whole process tree inside the container (killing the
local `docker` client would not). Metadata is kept
as container labels. The container sleeps out its lifetime and is started with `--rm`, so the engine
removes it when its lifetime ends; `docker rm -f` removes it earlier. A command whose container was
removed or stopped under it raises `SandboxGone` (the `docker exec` client just reports the killed
process's exit code, so the container's state is checked whenever a command does not succeed).
Environment variables are named in the argv (`--env NAME`) and their values travel in the docker
client's own environment, so a secret (a clone's auth header) never appears in an argv.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping

from solver_core.errors import SandboxGone, SandboxUnavailable
from solver_core.sandbox.base import (
    BASE_ENV,
    KILL_GRACE_S,
    SOLVER_SHELL,
    STARTUP_VARIABLES,
    TIMEOUT_EXIT_CODE,
    CommandResult,
    SandboxEnvironment,
    SandboxEnvironmentConfig,
    SandboxInfo,
    SandboxSpec,
)
from solver_core.sandbox.process import run_process

HOME = "/home/user"
LABEL_PREFIX = "solver."
CLIENT_TIMEOUT_S = 120
CLIENT_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
SIGNAL_EXIT_BASE = 128  # exit codes above it are a process killed by a signal
GONE_CHECKS = 5
GONE_CHECK_INTERVAL_S = 0.4


def env_by_name(env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """`--env NAME` arguments, and the client environment that carries their values (the docker
    client reads a named variable's value from its own environment)."""
    if clash := sorted(k for k in env if k.startswith("DOCKER_") or "=" in k or not k):
        raise ValueError(f"environment variables the docker client would misread: {', '.join(clash)}")
    return [arg for k in env for arg in ("--env", k)], dict(env)


def _docker(
    *args: str, data: bytes | None = None, timeout: float = CLIENT_TIMEOUT_S, env: Mapping[str, str] | None = None
) -> bytes:
    client_env = {**os.environ, **env} if env else None  # None: the client inherits ours
    try:
        done = subprocess.run(
            ["docker", *args], input=data, capture_output=True, timeout=timeout, check=False, env=client_env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"docker {args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        if _gone(message):
            raise SandboxGone(message)
        raise SandboxUnavailable(f"docker {args[0]} failed: {message[-300:]}")
    return done.stdout


def _gone(message: str) -> bool:
    return "No such container" in message or "is not running" in message or "is restarting" in message


def container_running(container: str) -> bool:
    """Whether the container exists and runs; an engine that does not answer is an error."""
    try:
        done = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}} {{.State.Status}}", container],
            capture_output=True,
            timeout=CLIENT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"docker inspect failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace")
        if "No such" in message:
            return False
        raise SandboxUnavailable(f"docker inspect failed: {message.strip()[-300:]}")
    running, _, status = done.stdout.decode().strip().partition(" ")
    return running == "true" and status not in {"removing", "exited", "dead"}


def engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class DockerSandboxBackend:
    name = "docker"

    def __init__(self, *, image: str, env_config: SandboxEnvironmentConfig | None = None) -> None:
        self.image = image
        self.env_config = env_config or SandboxEnvironmentConfig()

    def create(self, spec: SandboxSpec) -> DockerSandbox:
        name = f"solver-{(spec.idempotency_key or uuid.uuid4().hex)[:60]}".replace("_", "-")
        existing = self._find(name)
        if existing:
            return self.connect(existing)
        labels = [arg for k, v in spec.metadata.items() for arg in ("--label", f"{LABEL_PREFIX}{k}={v}")]
        names, values = env_by_name(spec.envs)
        # HOME is the sandbox's home whatever user the image runs as (root's would be /root).
        command = ["run", "--detach", "--rm", "--name", name, "--workdir", HOME, "--env", f"HOME={HOME}"]
        command += [*labels, *names]
        command += [spec.template or self.image, "bash", "-c", f"mkdir -p {HOME} && exec sleep {spec.lifetime_s}"]
        container = _docker(*command, timeout=600, env=values).decode().strip()
        return DockerSandbox(container[:12], self.env_config)

    def _find(self, name: str) -> str | None:
        found = _docker("ps", "--all", "--quiet", "--filter", f"name=^{name}$").decode().split()
        return found[0] if found else None

    def connect(self, sandbox_id: str) -> DockerSandbox:
        if not container_running(sandbox_id):
            raise SandboxGone(f"container {sandbox_id} is not running")
        return DockerSandbox(sandbox_id, self.env_config)

    def kill(self, sandbox_id: str) -> bool:
        """Remove the container; False when it was already gone (`rm --force` then still exits 0)."""
        try:
            done = subprocess.run(
                ["docker", "rm", "--force", sandbox_id], capture_output=True, timeout=CLIENT_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"docker rm failed: {exc}") from exc
        message = done.stderr.decode(errors="replace")
        if "No such container" in message:
            return False
        if done.returncode != 0:
            raise SandboxUnavailable(f"docker rm failed: {message.strip()[-300:]}")
        return True

    def list(self, metadata: Mapping[str, str]) -> list[SandboxInfo]:
        filters = [arg for k, v in metadata.items() for arg in ("--filter", f"label={LABEL_PREFIX}{k}={v}")]
        rows = _docker("ps", "--quiet", *filters).decode().split()
        return [SandboxInfo(row, self._labels(row)) for row in rows]

    def _labels(self, container: str) -> dict[str, str]:
        labels = json.loads(_docker("inspect", "--format", "{{json .Config.Labels}}", container)) or {}
        return {k.removeprefix(LABEL_PREFIX): v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}

    def check(self) -> None:
        _docker("info", "--format", "{{.ServerVersion}}", timeout=20)


class DockerSandbox(SandboxEnvironment):
    backend_name = "docker"

    def __init__(self, container: str, config: SandboxEnvironmentConfig) -> None:
        self.id = container
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
        names, values = env_by_name({**BASE_ENV, **(env or {})})
        argv = ["docker", "exec", "--workdir", cwd or self.home, *names, self.id]
        argv += ["timeout", "-k", str(KILL_GRACE_S), str(seconds)]
        if login:
            argv += ["bash", "-lc", command]
        else:  # `docker exec` starts no shell of its own: only this one, which reads no startup file
            argv += ["env", *(f"--unset={name}" for name in STARTUP_VARIABLES), *SOLVER_SHELL, command]
        result = run_process(
            argv,
            env={**CLIENT_ENV, **values},
            cwd=None,
            timeout=seconds + KILL_GRACE_S + 30,
            max_output_bytes=self.config.max_output_bytes,
        )
        if result.returncode != 0 and self._gone_after(result.returncode):
            raise SandboxGone(f"container {self.id} is gone")
        timed_out = result.timed_out or result.returncode == TIMEOUT_EXIT_CODE
        return CommandResult(result.output, result.returncode, timed_out=timed_out, truncated=result.truncated)

    def _gone_after(self, returncode: int) -> bool:
        """Whether a command failed because its container is gone. Only the engine decides: the
        output is the command's, and the command may print anything. A process killed with its
        container (or an exec the engine refused) may be reported a moment before the engine shows
        the container stopping, so those exit codes are looked at a few times."""
        looks = GONE_CHECKS if returncode >= SIGNAL_EXIT_BASE or returncode in {125, 126} else 1
        for look in range(looks):
            if not container_running(self.id):
                return True
            if look + 1 < looks:
                time.sleep(GONE_CHECK_INTERVAL_S)
        return False

    def write_file(self, path: str, data: bytes) -> None:
        target = shlex.quote(path)
        _docker("exec", "-i", self.id, "bash", "-c", f"mkdir -p $(dirname {target}) && cat > {target}", data=data)

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        if limit is None:
            return _docker("exec", self.id, "cat", path)
        return _docker("exec", self.id, "head", "-c", str(limit + 1), path)

    def kill(self) -> bool:
        return DockerSandboxBackend(image="").kill(self.id)
