"""A SandboxBackend that holds no sandboxes: it records kills, for cancel and health tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solver_core.errors import SandboxUnavailable


@dataclass
class RecordingSandboxBackend:
    name: str = "recording"
    killed: list[str] = field(default_factory=list)
    healthy: bool = True

    def create(self, spec: Any) -> Any:
        raise AssertionError("the API only kills and lists sandboxes; it never opens one")

    def connect(self, sandbox_id: str) -> Any:
        raise AssertionError("the API only kills and lists sandboxes; it never opens one")

    def kill(self, sandbox_id: str) -> bool:
        self.killed.append(sandbox_id)
        return True

    def list(self, metadata: Mapping[str, str]) -> list[Any]:
        return []

    def check(self) -> None:
        if not self.healthy:
            raise SandboxUnavailable("e2b rejected the API key")
