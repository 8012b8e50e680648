"""Builders for runtime tests: git repositories, sandbox backends and a wired container."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from solver_core.models import SolveRequest, SolveView
from solver_core.ports import Sandbox, SandboxBackend
from solver_core.rules import RequestPolicy
from solver_core.sandbox.docker import DockerSandbox, DockerSandboxBackend, engine_available
from solver_core.sandbox.e2b import E2BSandboxBackend
from solver_core.sandbox.local import LocalSandboxBackend, bwrap_path
from solver_core.settings import Settings
from solver_core.wiring import Container, build_container
from tests.fakes.e2b import FakeE2BService

BACKENDS = ["local-bwrap", "local-plain", "e2b"]
# Built offline by `tools/docker-test-image.sh` (Debian bookworm with git, python3 and pytest); `.ci/run` builds it.
DOCKER_TEST_IMAGE = os.environ.get("SOLVER_TEST_DOCKER_IMAGE", "solver-test/bookworm:latest")
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        env=os.environ | GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_repo(path: Path, files: Mapping[str, str | bytes], *, message: str = "initial") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    commit_files(path, files, message)
    return path


def commit_files(repo: Path, files: Mapping[str, str | bytes], message: str) -> str:
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def require_docker(image: str = DOCKER_TEST_IMAGE) -> None:
    """Skip without an engine or the test image; with CI set, fail instead (CI must run the docker tests)."""
    reason = None
    if not engine_available():
        reason = "no Docker engine answers on this machine (the docker client alone is not enough)"
    elif subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode != 0:
        reason = f"the docker test image {image} is missing: run tools/docker-test-image.sh"
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the docker tests: {reason}", pytrace=False)
    pytest.skip(reason)


def host_address_for(sandbox: Sandbox) -> str:
    """Where a sandbox reaches a server on this machine: loopback, or for a container its default
    gateway, the bridge's address on the host (a container's 127.0.0.1 is its own)."""
    if not isinstance(sandbox, DockerSandbox):
        return "127.0.0.1"
    routes = sandbox.run("cat /proc/net/route", timeout=30).output.splitlines()
    gateway = next(line.split()[2] for line in routes[1:] if line.split()[1] == "00000000")
    return socket.inet_ntoa(struct.pack("<L", int(gateway, 16)))


def require_bwrap() -> None:
    if bwrap_path() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the bubblewrap isolation tests: install bubblewrap", pytrace=False)
        pytest.skip("bubblewrap (bwrap) is not installed")


@contextmanager
def sandbox_backend(kind: str, tmp_path: Path) -> Iterator[tuple[SandboxBackend, FakeE2BService | None]]:
    """A backend of `kind`; for e2b, the real SDK against a loopback fake service."""
    if kind == "e2b":
        with FakeE2BService(tmp_path / "e2b").start() as service:
            yield (
                E2BSandboxBackend(api_key=service.api_key, api_url=service.api_url, sandbox_url=service.sandbox_url),
                service,
            )
        return
    if kind == "docker":
        require_docker()
        yield DockerSandboxBackend(image=DOCKER_TEST_IMAGE), None
        return
    if kind == "local-bwrap":
        require_bwrap()
    isolation = "bwrap" if kind == "local-bwrap" else "none"
    yield LocalSandboxBackend(tmp_path / "sandboxes", isolation=isolation), None
    shutil.rmtree(tmp_path / "sandboxes", ignore_errors=True)


def runtime_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "database_url": database_url,
        "allow_local_repos": True,
        "allow_replay_models": True,
        "allow_unregistered_models": True,
        "allowed_http_hosts": ["127.0.0.1"],
        "sandbox_dir": tmp_path / "sandboxes",
    }
    return Settings(**(values | overrides))


def runtime(tmp_path: Path, database_url: str, **overrides: Any) -> Container:
    return build_container(runtime_settings(tmp_path, database_url, **overrides))


def start_solve(container: Container, **request: Any) -> SolveView:
    data: dict[str, Any] = {
        "issue": {"title": "Fix the bug", "body": "Details."},
        "limits": {"step_limit": 20, "cost_limit_usd": 1.0, "time_limit_s": 600},
    } | request
    policy = RequestPolicy.from_settings(container.settings)
    return container.solves.start("tester", SolveRequest.model_validate(data, context=policy)).solve


def command_running(token: str) -> bool:
    """Whether a shell on this machine (a local sandbox's command) is running a command line that names `token`:
    a step's event is written only once its command has finished, so a test that must act while one runs looks
    at the process table."""
    found = subprocess.run(
        ["pgrep", "-f", f"^bash (--noprofile --norc )?-l?c [^#]*{token}"], capture_output=True, check=False
    )
    return found.returncode == 0


def wait_for_command(token: str, *, running: bool = True, timeout_s: float = 60, what: str = "the command") -> None:
    """Wait until a command naming `token` runs (or, with `running=False`, no longer does)."""
    deadline = time.monotonic() + timeout_s
    while command_running(token) is not running:
        assert time.monotonic() < deadline, f"{what} {'never started' if running else 'still runs'}"
        time.sleep(0.05)


def write_replay(path: Path, *commands: str) -> str:
    """A replay file of shell actions; returns the `replay:` model name for it."""
    import yaml

    path.write_text(yaml.safe_dump({"actions": list(commands)}))
    return f"replay:{path}"
