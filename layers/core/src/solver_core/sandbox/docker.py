"""Sandboxes as Docker containers, driven through the `docker` command line (like mini-swe-agent's
DockerEnvironment), for machines where a Docker engine answers.

Commands run through `docker exec … timeout -k 5 N bash …` (a login shell for the agent's
commands only), so the deadline kills the whole
process tree inside the container (killing the local `docker` client would not). Metadata is kept
as container labels; the container sleeps out its lifetime and is removed by `docker rm -f`.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
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


def _docker(*args: str, data: bytes | None = None, timeout: float = CLIENT_TIMEOUT_S) -> bytes:
    try:
        done = subprocess.run(["docker", *args], input=data, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"docker {args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        if "No such container" in message or "is not running" in message:
            raise SandboxGone(message)
        raise SandboxUnavailable(f"docker {args[0]} failed: {message[-300:]}")
    return done.stdout


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
        envs = [arg for k, v in spec.envs.items() for arg in ("--env", f"{k}={v}")]
        command = ["run", "--detach", "--name", name, "--workdir", HOME, *labels, *envs]
        command += [spec.template or self.image, "bash", "-c", f"mkdir -p {HOME} && exec sleep {spec.lifetime_s}"]
        container = _docker(*command, timeout=600).decode().strip()
        return DockerSandbox(container[:12], self.env_config)

    def _find(self, name: str) -> str | None:
        found = _docker("ps", "--all", "--quiet", "--filter", f"name=^{name}$").decode().split()
        return found[0] if found else None

    def connect(self, sandbox_id: str) -> DockerSandbox:
        state = json.loads(_docker("inspect", "--format", "{{json .State}}", sandbox_id))
        if not state.get("Running"):
            raise SandboxGone(f"container {sandbox_id} is not running")
        return DockerSandbox(sandbox_id, self.env_config)

    def kill(self, sandbox_id: str) -> bool:
        try:
            _docker("rm", "--force", sandbox_id)
        except SandboxGone:
            return False
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
        envs = [arg for k, v in {**BASE_ENV, **(env or {})}.items() for arg in ("--env", f"{k}={v}")]
        argv = ["docker", "exec", "--workdir", cwd or self.home, *envs, self.id]
        argv += ["timeout", "-k", str(KILL_GRACE_S), str(seconds)]
        if login:
            argv += ["bash", "-lc", command]
        else:  # `docker exec` starts no shell of its own: only this one, which reads no startup file
            argv += ["env", *(f"--unset={name}" for name in STARTUP_VARIABLES), *SOLVER_SHELL, command]
        result = run_process(
            argv,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
            cwd=None,
            timeout=seconds + KILL_GRACE_S + 30,
            max_output_bytes=self.config.max_output_bytes,
        )
        if result.returncode in {125, 126} and "No such container" in result.output:
            raise SandboxGone(f"container {self.id} is gone")
        timed_out = result.timed_out or result.returncode == TIMEOUT_EXIT_CODE
        return CommandResult(result.output, result.returncode, timed_out=timed_out, truncated=result.truncated)

    def write_file(self, path: str, data: bytes) -> None:
        target = shlex.quote(path)
        _docker("exec", "-i", self.id, "bash", "-c", f"mkdir -p $(dirname {target}) && cat > {target}", data=data)

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        if limit is None:
            return _docker("exec", self.id, "cat", path)
        return _docker("exec", self.id, "head", "-c", str(limit + 1), path)

    def kill(self) -> bool:
        return DockerSandboxBackend(image="").kill(self.id)
