"""The local sandbox: a scratch directory on this machine, isolated with bubblewrap when it exists.

Under bwrap the host is read-only, the sandbox directory is the only writable place, /tmp is
private, credentials directories of the host are hidden, and everything dies with its parent.
Without bwrap commands run as plain subprocesses, with a visible warning. Either way commands get a
scrubbed environment: PATH, HOME and LANG plus what the caller passes — no AWS or LLM variables.

A sandbox's state lives on disk (`<root>/<id>/state`), so another process can reconnect to it,
list it by metadata or kill it, like the cloud providers' control planes allow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from solver_core.errors import SandboxGone
from solver_core.sandbox.base import (
    BASE_ENV,
    SOLVER_SHELL,
    STARTUP_VARIABLES,
    CommandResult,
    SandboxEnvironment,
    SandboxEnvironmentConfig,
    SandboxInfo,
    SandboxSpec,
)
from solver_core.sandbox.process import kill_group, run_process

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Credential stores of the host user that a sandboxed command must never read.
HIDDEN_HOME_ENTRIES = (
    ".ssh", ".aws", ".gnupg", ".config", ".azure", ".kube", ".docker", ".netrc", ".git-credentials",
    ".pgpass", ".npmrc", ".pypirc", ".e2b", ".local/share/solver",
)  # fmt: skip


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


class LocalSandboxBackend:
    name = "local"

    def __init__(
        self,
        root: Path,
        *,
        isolation: str = "auto",
        hidden_paths: tuple[Path, ...] = (),
        env_config: SandboxEnvironmentConfig | None = None,
    ) -> None:
        self.root = root
        self.bwrap = bwrap_path() if isolation in {"auto", "bwrap"} else None
        if isolation == "bwrap" and self.bwrap is None:
            raise SandboxGone("bubblewrap isolation was requested but `bwrap` is not installed")
        self.hidden_paths = hidden_paths
        self.env_config = env_config or SandboxEnvironmentConfig()
        if self.bwrap is None and isolation == "auto":
            log.warning("bubblewrap (bwrap) not found: local sandboxes run as plain subprocesses without isolation")
        elif self.bwrap is None:
            log.warning("sandbox isolation is off: commands run as plain subprocesses on this machine")

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    def create(self, spec: SandboxSpec) -> LocalSandbox:
        sandbox_id = _sandbox_id(spec.idempotency_key)
        directory = self.root / sandbox_id
        if (directory / "state" / "meta.json").is_file():
            return self.connect(sandbox_id)  # the same idempotency key: the same sandbox
        (directory / "state" / "pids").mkdir(parents=True, exist_ok=True)
        (directory / "home").mkdir(exist_ok=True)
        meta = {
            "id": sandbox_id,
            "metadata": dict(spec.metadata),
            "envs": dict(spec.envs),
            "created_at": time.time(),
            "expires_at": time.time() + spec.lifetime_s,
        }
        (directory / "state" / "meta.json").write_text(json.dumps(meta))
        return LocalSandbox(self, sandbox_id, meta)

    def connect(self, sandbox_id: str) -> LocalSandbox:
        meta = self._meta(sandbox_id)
        if meta is None:
            raise SandboxGone(f"sandbox {sandbox_id} not found")
        sandbox = LocalSandbox(self, sandbox_id, meta)
        sandbox.ensure_alive()
        return sandbox

    def kill(self, sandbox_id: str) -> bool:
        directory = self.root / _safe(sandbox_id)
        if not directory.is_dir():
            return False
        state = directory / "state"
        with contextlib.suppress(OSError):
            (state / "killed").touch()
        for pid_file in (state / "pids").glob("*"):
            kill_group(int(pid_file.name))
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def list(self, metadata: Mapping[str, str]) -> list[SandboxInfo]:
        found = []
        for meta_file in sorted(self.root.glob("*/state/meta.json")):
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(meta_file.read_text())
                if all(meta["metadata"].get(k) == v for k, v in metadata.items()):
                    found.append(SandboxInfo(meta["id"], meta["metadata"]))
        return found

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _meta(self, sandbox_id: str) -> dict[str, object] | None:
        path = self.root / _safe(sandbox_id) / "state" / "meta.json"
        try:
            meta: dict[str, object] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return meta


class LocalSandbox(SandboxEnvironment):
    backend_name = "local"

    def __init__(self, backend: LocalSandboxBackend, sandbox_id: str, meta: Mapping[str, object]) -> None:
        self._backend = backend
        self.id = sandbox_id
        self._dir = backend.root / sandbox_id
        self.home = str(self._dir / "home")
        self._state = self._dir / "state"
        self._envs = {str(k): str(v) for k, v in dict(meta.get("envs") or {}).items()}  # type: ignore[call-overload]
        self._expires_at = float(meta["expires_at"])  # type: ignore[arg-type]
        self.config = backend.env_config
        self._hidden_paths: list[Path] | None = None

    def ensure_alive(self) -> None:
        if (self._state / "killed").exists() or not self._state.is_dir():
            raise SandboxGone(f"sandbox {self.id} was killed")
        if time.time() > self._expires_at:
            self._backend.kill(self.id)
            raise SandboxGone(f"sandbox {self.id} reached the end of its lifetime")

    def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float,
        login: bool = False,
    ) -> CommandResult:
        self.ensure_alive()
        environment = {
            "PATH": os.environ.get("PATH", DEFAULT_PATH),
            "HOME": self.home,
            **BASE_ENV,
            **self._envs,
            **(env or {}),
        }
        if not login:
            for name in STARTUP_VARIABLES:
                environment.pop(name, None)
        directory = cwd or self.home
        shell = ["bash", "-c"] if login else list(SOLVER_SHELL)
        argv = self._argv([*shell, command], environment, directory)
        pids = self._state / "pids"
        result = run_process(
            argv,
            env={} if self._backend.bwrap else environment,
            cwd=None if self._backend.bwrap else directory,
            timeout=timeout,
            max_output_bytes=self.config.max_output_bytes,
            on_start=lambda pid: (pids / str(pid)).touch(),
            on_exit=lambda pid: (pids / str(pid)).unlink(missing_ok=True),
        )
        self.ensure_alive()  # a kill during the command surfaces as SandboxGone, not as its output
        return result

    def _argv(self, command: list[str], environment: Mapping[str, str], cwd: str) -> list[str]:
        if not self._backend.bwrap:
            return command
        argv = [self._backend.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc"]
        argv += ["--unshare-uts", "--unshare-cgroup-try", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        argv += ["--tmpfs", "/tmp"]  # noqa: S108 - a private /tmp, mounted before the sandbox (often under /tmp)
        if self._hidden_paths is None:  # once per connection: globbing /home took ~0.5 ms per command
            self._hidden_paths = self._hidden()
        for hidden in self._hidden_paths:
            argv += ["--tmpfs", str(hidden)] if hidden.is_dir() else ["--ro-bind", "/dev/null", str(hidden)]
        argv += ["--bind", str(self._dir / "home"), self.home, "--clearenv"]
        for key, value in environment.items():
            argv += ["--setenv", key, value]
        return [*argv, "--chdir", cwd, "--", *command]

    def _hidden(self) -> list[Path]:
        homes = {Path.home(), *Path("/home").glob("*")}
        candidates = [h / entry for h in homes for entry in HIDDEN_HOME_ENTRIES] + list(self._backend.hidden_paths)
        sandbox = self._dir.resolve()
        # Never hide a directory that contains this sandbox (the sandbox itself is bound afterwards).
        return [p for p in candidates if p.exists() and not sandbox.is_relative_to(p.resolve())]

    def write_file(self, path: str, data: bytes) -> None:
        self.ensure_alive()
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        self.ensure_alive()
        with self._inside(path).open("rb") as stream:
            return stream.read() if limit is None else stream.read(limit + 1)

    def _inside(self, path: str) -> Path:
        target = Path(path if path.startswith("/") else f"{self.home}/{path}").resolve()
        if not target.is_relative_to(Path(self.home).resolve()):
            raise ValueError(f"{path} is outside the sandbox")
        return target

    def kill(self) -> bool:
        return self._backend.kill(self.id)


def _sandbox_id(idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"local-{uuid.uuid4().hex[:16]}"
    return f"local-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"


def _safe(sandbox_id: str) -> str:
    if not sandbox_id.startswith("local-") or not sandbox_id[6:].isalnum():
        raise SandboxGone(f"sandbox {sandbox_id!r} is not a local sandbox id")
    return sandbox_id
