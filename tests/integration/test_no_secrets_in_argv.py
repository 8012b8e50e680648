"""No secret in any process's argv, which every local user can read in /proc/*/cmdline: not a
clone's auth header (bwrap, docker), not the server's token."""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from solver_core.sandbox import docker, repository
from solver_core.sandbox.base import CommandResult, SandboxEnvironmentConfig, SandboxSpec
from tests.fakes.git_server import GitHTTPServer
from tests.support.runtime import host_address_for, make_repo, sandbox_backend

pytestmark = pytest.mark.integration

TOKEN = "ghp_argvToken1234567890abcdefABCDEFxyz"


def all_cmdlines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue  # it ended meanwhile
    return found


class ArgvWatcher:
    """Reads every process's argv, over and over, while a block runs."""

    def __init__(self, *secrets: str) -> None:
        self.secrets = secrets
        self.leaks: list[str] = []
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for cmdline in all_cmdlines():
                self.seen.add(cmdline)
                if any(secret in cmdline for secret in self.secrets):
                    self.leaks.append(cmdline)

    def __enter__(self) -> ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.parametrize("kind", ["local-bwrap", "local-plain", "docker"])
def test_a_private_clone_puts_its_token_in_no_argv(kind: str, tmp_path: Path) -> None:
    """The processes on this machine (bwrap, git, the docker client) are watched during a clone
    from a slow private remote."""
    repo = make_repo(tmp_path / "origin", {"app.py": "print('v1')\n"})
    header = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    with sandbox_backend(kind, tmp_path) as (backend, _):
        box = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=300))
        host = host_address_for(box)
        with GitHTTPServer(tmp_path / "git", token=TOKEN, host=host, delay_s=0.3).start() as server:
            url = server.add_repo("org/private", repo)
            with ArgvWatcher(TOKEN, header) as watcher:
                prepared = repository.prepare(
                    box, repo=url, ref=None, setup_command=None, issue_text="# t\n", token=TOKEN
                )
        backend.kill(box.id)
    assert prepared.base_commit
    assert any(TOKEN in base64.b64decode(h.split()[-1]).decode() for h in server.auth_headers_seen if h)
    assert any("clone.sh" in cmdline for cmdline in watcher.seen)  # the watch did cover the clone
    assert watcher.leaks == []


def test_docker_commands_name_their_variables_and_pass_values_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The docker client reads `--env NAME`'s value from its own environment. The client process is
    captured here (no image can be pulled offline); the real engine honours the same flags."""
    captured: dict[str, Any] = {}

    def fake_run_process(argv: Sequence[str], *, env: Mapping[str, str], **_: Any) -> CommandResult:
        captured.update(argv=list(argv), env=dict(env))
        return CommandResult("", 0)

    monkeypatch.setattr(docker, "run_process", fake_run_process)
    box = docker.DockerSandbox("c0ffee", SandboxEnvironmentConfig())
    secret = f"Authorization: Basic {TOKEN}"
    box.run("git clone x", env={"GIT_CONFIG_VALUE_0": secret}, timeout=30)
    assert not any(TOKEN in arg for arg in captured["argv"])
    assert captured["argv"][captured["argv"].index("GIT_CONFIG_VALUE_0") - 1] == "--env"
    assert captured["env"]["GIT_CONFIG_VALUE_0"] == secret
    with pytest.raises(ValueError, match="DOCKER_HOST"):
        docker.env_by_name({"DOCKER_HOST": "tcp://elsewhere"})
