"""What the API routes need, built once per process and injected: the Lambda handlers take it from
the environment on first use (`current_deps`); `solver serve` and the tests install their own
(`use_deps`). Nothing here connects at import time."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from solver_core.rules import RequestPolicy
from solver_core.services.events import EventService
from solver_core.services.runs import RunService
from solver_core.services.solves import SolveService
from solver_core.settings import Settings

if TYPE_CHECKING:
    from uuid import UUID

    from solver_core.ports import ArtifactStore, BatchOrchestrator, Orchestrator, SandboxBackend
    from solver_core.secrets import SecretNeeds
    from solver_core.services.allowlist import AllowlistService
    from solver_core.services.batches import BatchService
    from solver_core.services.cancel import CancelService
    from solver_core.services.catalog import CatalogService
    from solver_core.wiring import Container

# Far above the largest valid request (a 64 KiB issue body, two 4 KiB commands, a few URLs), with
# room for JSON escaping; far below API Gateway's own 10 MB.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_BATCH_BODY_BYTES = 6 * 1000 * 1000
DEFAULT_MAX_ACTIVE_SOLVES = 10
DEFAULT_RETRY_AFTER_S = 30
# Lambda's limit on a synchronous invocation's response (the whole JSON envelope API Gateway receives).
LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class ApiLimits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_active_solves_per_owner: int = DEFAULT_MAX_ACTIVE_SOLVES
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    # A body that would not fit in a response this large is sent as a redirect to a download link instead
    # (when the artifact store has such links).
    max_response_bytes: int = LAMBDA_RESPONSE_BYTES
    owner_daily_cost_usd: float | None = None
    # POST /batches: up to 500 instances inline, within Lambda's 6 MB request payload.
    max_batch_body_bytes: int = DEFAULT_MAX_BATCH_BODY_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiLimits:
        return cls(
            max_body_bytes=settings.max_request_bytes,
            max_active_solves_per_owner=settings.max_active_solves_per_owner,
            owner_daily_cost_usd=settings.owner_daily_cost_usd,
        )


@dataclass(frozen=True)
class ApiDeps:
    """What the routes use: the container's services, and what differs per server (the orchestrator
    runs' sandboxes, limits, background publishing, the model key check)."""

    container: Container
    settings: Settings
    sessions: sessionmaker[Session]
    solves: SolveService
    events: EventService
    runs: RunService
    artifacts: ArtifactStore
    orchestrator: Orchestrator
    # A factory: only cancel and health need a sandbox backend, and building one imports its SDK.
    sandboxes: Callable[[], SandboxBackend]
    limits: ApiLimits = field(default_factory=ApiLimits)
    # Publishes a finished solve again, in the background (`solver serve`); None where the API
    # cannot reach GitHub's credentials (the Lambda API functions: the state machine publishes).
    publish: Callable[[UUID], None] | None = None
    # Where runs execute in this process (`solver serve`), their models' keys are checked at
    # request time: raises ModelNotConfigured (422). In the cloud the keys live in the run function.
    check_models: Callable[[Sequence[str]], None] | None = None
    # Runs cloud batches (POST /batches): the batch state machine, or threads under `solver serve`;
    # None where none is configured (503).
    batch_orchestrator: BatchOrchestrator | None = None

    @classmethod
    def from_container(
        cls,
        container: Container,
        orchestrator: Orchestrator | None = None,
        *,
        sandboxes: Callable[[], SandboxBackend] | None = None,
        limits: ApiLimits | None = None,
        publish: Callable[[UUID], None] | None = None,
        check_models: Callable[[Sequence[str]], None] | None = None,
        batch_orchestrator: BatchOrchestrator | None = None,
    ) -> ApiDeps:
        """The container's services; the orchestrator and the batch orchestrator are the container's
        unless given; the sandbox provider is built on first use unless given."""
        return cls(
            container=container,
            settings=container.settings,
            sessions=container.sessions,
            solves=container.solves,
            events=container.events,
            runs=container.runs,
            artifacts=container.artifacts,
            orchestrator=orchestrator or container.orchestrator,
            sandboxes=sandboxes or (lambda: container.sandboxes),
            limits=limits or ApiLimits.from_settings(container.settings),
            publish=publish,
            check_models=check_models,
            batch_orchestrator=batch_orchestrator,
        )

    @cached_property
    def policy(self) -> RequestPolicy:
        return RequestPolicy.from_settings(self.settings)

    @property
    def allowlist(self) -> AllowlistService:
        return self.container.allowlist

    @property
    def batches(self) -> BatchService:
        return self.container.batches

    @property
    def catalog(self) -> CatalogService:
        return self.container.catalog

    def cancel_service(self) -> CancelService:
        """The container's cancel service, over this server's orchestrator and sandbox provider."""
        return self.container.cancel_service(self.orchestrator, self.sandboxes())


_installed: ApiDeps | None = None
_built: dict[SecretNeeds, ApiDeps] = {}
_lock = threading.Lock()


def use_deps(deps: ApiDeps | None) -> None:
    """Install the dependencies every route uses (None: build them from the environment again)."""
    global _installed  # noqa: PLW0603 - the one process-wide slot, like wiring.container()
    with _lock:
        _installed = deps
        if deps is None:
            _built.clear()


def current_deps(needs: SecretNeeds | None = None) -> ApiDeps:
    """The installed dependencies, or (in a Lambda) the environment's, built on first use with the
    secrets the function declares."""
    with _lock:
        if _installed is not None:
            return _installed
        if needs is None:
            raise RuntimeError("no API dependencies installed (use_deps) and no function to build them for")
        if needs not in _built:
            from solver_core.wiring import container

            built = container(needs)
            _built[needs] = ApiDeps.from_container(built, batch_orchestrator=built.batch_orchestrator)
            # What the process has built so far (modules, clients, these dependencies) lives as long as
            # it does. Frozen, the garbage collector's full passes skip it: they took ~30 ms in a
            # handler's process and set the list route's p99 (BENCHMARKS.md).
            gc.freeze()
        return _built[needs]


def lambda_deps(function: str) -> Callable[[], ApiDeps]:
    """The dependencies of the API function `function` (its logical id in template.yaml), built from
    the environment on first use with only the secrets it declares (`FUNCTION_SECRETS`)."""
    from solver_core.secrets import FUNCTION_SECRETS

    needs = FUNCTION_SECRETS[function]
    return lambda: current_deps(needs)
