"""A sandbox backend wrapper that injects faults and watches how many sandboxes live at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from solver_core.errors import SandboxUnavailable
from solver_core.ports import Sandbox, SandboxBackend
from solver_core.sandbox.base import SandboxInfo, SandboxSpec


class WatchedSandboxes:
    def __init__(self, inner: SandboxBackend, *, fail_connects: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self._lock = threading.Lock()
        self._fail_connects = fail_connects
        self.failed_connects = 0
        self.live: set[str] = set()
        self.peak_live = 0
        self.created = 0
        self.kill_delay_s = 0.0  # how long a kill takes to answer after the sandbox is gone

    def create(self, spec: SandboxSpec) -> Sandbox:
        box = self.inner.create(spec)
        with self._lock:
            self.created += 1
            self.live.add(box.id)
            self.peak_live = max(self.peak_live, len(self.live))
        return box

    def connect(self, sandbox_id: str) -> Sandbox:
        with self._lock:
            if self.failed_connects < self._fail_connects:
                self.failed_connects += 1
                raise SandboxUnavailable("injected: the provider did not answer")
        return self.inner.connect(sandbox_id)

    def kill(self, sandbox_id: str) -> bool:
        with self._lock:
            self.live.discard(sandbox_id)
        killed = self.inner.kill(sandbox_id)
        time.sleep(self.kill_delay_s)
        return killed

    def list(self, metadata: Mapping[str, str]) -> list[SandboxInfo]:
        return self.inner.list(metadata)

    def check(self) -> None:
        self.inner.check()
