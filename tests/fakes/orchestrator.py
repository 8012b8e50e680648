"""An Orchestrator that runs nothing: it records what it was asked and can be told to fail."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from uuid import UUID

from solver_core.errors import SolverError


class OrchestratorDown(SolverError):
    code = "orchestrator_down"
    status = 503


@dataclass
class FakeOrchestrator:
    name: str = "fake"
    started: list[UUID] = field(default_factory=list)
    stopped: list[tuple[UUID, str | None, str]] = field(default_factory=list)
    fail_start: bool = False
    healthy: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, solve_id: UUID) -> str:
        if self.fail_start:
            raise OrchestratorDown("the orchestrator is down")
        with self._lock:
            self.started.append(solve_id)
        return f"fake-execution:{solve_id}"

    def stop(self, solve_id: UUID, execution_ref: str | None, reason: str) -> None:
        with self._lock:
            self.stopped.append((solve_id, execution_ref, reason))

    def check(self) -> None:
        if not self.healthy:
            raise OrchestratorDown("the state machine cannot be described")
