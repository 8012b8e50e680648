"""Sandboxes of the fake service and their lifecycle (create, timeout, kill, expiry)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .procs import ProcessRecord

ENVD_VERSION = "0.6.4"
DEFAULT_TIMEOUT_S = 300


def _now() -> float:
    return time.time()


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Sandbox:
    sandbox_id: str
    template: str
    metadata: dict[str, str]
    envs: dict[str, str]
    home: Path
    started_at: float
    end_at: float
    envd_access_token: str = field(default_factory=lambda: secrets.token_hex(16))
    alive: bool = True
    processes: dict[int, ProcessRecord] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_process(self, record: ProcessRecord) -> bool:
        """Register a started process; False if the sandbox died meanwhile (caller kills it)."""
        with self.lock:
            if not self.alive:
                return False
            self.processes[record.pid] = record
            return True

    def process(self, pid: int) -> ProcessRecord | None:
        with self.lock:
            return self.processes.get(pid)

    def running_processes(self) -> list[ProcessRecord]:
        with self.lock:
            return [p for p in self.processes.values() if not p.finished]

    def terminate(self) -> bool:
        """Kill every process group and mark the sandbox gone; False if it already was."""
        with self.lock:
            if not self.alive:
                return False
            self.alive = False
            processes = list(self.processes.values())
        for record in processes:
            record.kill_group()
            record.poke()
        return True

    def created_body(self) -> dict[str, object]:
        return {
            "templateID": self.template,
            "sandboxID": self.sandbox_id,
            "clientID": "fake-client",
            "envdVersion": ENVD_VERSION,
            "envdAccessToken": self.envd_access_token,
        }

    def listed_body(self) -> dict[str, object]:
        """A ``ListedSandbox``; ``GET /sandboxes/{id}`` adds the envd token and domain to it."""
        return {
            "templateID": self.template,
            "sandboxID": self.sandbox_id,
            "clientID": "fake-client",
            "envdVersion": ENVD_VERSION,
            "startedAt": iso(self.started_at),
            "endAt": iso(self.end_at),
            "cpuCount": 2,
            "memoryMB": 512,
            "diskSizeMB": 1024,
            "state": "running",
            "metadata": dict(self.metadata),
        }


class CapacityExceeded(Exception):
    pass


class IdempotencyMismatch(Exception):
    pass


@dataclass
class _IdempotentCreate:
    body: Mapping[str, object]
    sandbox_id: str


class Registry:
    """All sandboxes ever created (dead ones are kept so they can answer "not found")."""

    def __init__(self, root: Path, capacity: int | None) -> None:
        self._root = root
        self._capacity = capacity
        self._lock = threading.Lock()
        self._sandboxes: dict[str, Sandbox] = {}
        self._idempotent: dict[str, _IdempotentCreate] = {}

    def create(self, body: Mapping[str, object], idempotency_key: str | None) -> Sandbox:
        with self._lock:
            if idempotency_key is not None and idempotency_key in self._idempotent:
                return self._replay(idempotency_key, body)
            if self._capacity is not None and self._count_alive() >= self._capacity:
                raise CapacityExceeded(self._capacity)
            sandbox = self._new_sandbox(body)
            self._sandboxes[sandbox.sandbox_id] = sandbox
            if idempotency_key is not None:
                self._idempotent[idempotency_key] = _IdempotentCreate(dict(body), sandbox.sandbox_id)
            return sandbox

    def _replay(self, key: str, body: Mapping[str, object]) -> Sandbox:
        # Like the real API, a key replays the recorded outcome, and only for the same request.
        previous = self._idempotent[key]
        if dict(body) != previous.body:
            raise IdempotencyMismatch(key)
        return self._sandboxes[previous.sandbox_id]

    def _new_sandbox(self, body: Mapping[str, object]) -> Sandbox:
        sandbox_id = "i" + secrets.token_hex(10)
        home = self._root / sandbox_id
        home.mkdir(parents=True, exist_ok=False)
        timeout = _int_or(body.get("timeout"), DEFAULT_TIMEOUT_S)
        started = _now()
        return Sandbox(
            sandbox_id=sandbox_id,
            template=str(body.get("templateID") or "base"),
            metadata=_str_map(body.get("metadata")),
            envs=_str_map(body.get("envVars")),
            home=home,
            started_at=started,
            end_at=started + timeout,
        )

    def _count_alive(self) -> int:
        return sum(1 for s in self._sandboxes.values() if s.alive)

    def get(self, sandbox_id: str) -> Sandbox | None:
        with self._lock:
            return self._sandboxes.get(sandbox_id)

    def live(self, sandbox_id: str) -> Sandbox | None:
        sandbox = self.get(sandbox_id)
        return sandbox if sandbox is not None and sandbox.alive else None

    def all_live(self) -> list[Sandbox]:
        with self._lock:
            alive = [s for s in self._sandboxes.values() if s.alive]
        return sorted(alive, key=lambda s: s.started_at)

    def kill(self, sandbox_id: str) -> bool:
        sandbox = self.get(sandbox_id)
        return sandbox is not None and sandbox.terminate()

    def set_timeout(self, sandbox_id: str, timeout_s: int, *, extend_only: bool = False) -> bool:
        sandbox = self.live(sandbox_id)
        if sandbox is None:
            return False
        new_end = _now() + timeout_s
        with sandbox.lock:
            # connect() only ever extends a running sandbox's lifetime; set_timeout may shorten it.
            sandbox.end_at = max(sandbox.end_at, new_end) if extend_only else new_end
        return True

    def reap_expired(self) -> None:
        now = _now()
        for sandbox in self.all_live():
            if sandbox.end_at <= now:
                sandbox.terminate()

    def kill_all(self) -> None:
        for sandbox in self.all_live():
            sandbox.terminate()


def _int_or(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}
