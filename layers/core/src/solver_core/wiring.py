"""The composition root: builds engines, stores, services, the solve flow, the orchestrators, the
sweeper and the notifier, once per process (per warm Lambda). Callers ask the `Container` for them
and construct none themselves (tests/unit/test_composition_root.py checks it).

Nothing here runs at import time; adapters are imported when first built; `container()` builds on
first use and caches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from solver_core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from solver_core.agent.redact import Redactor
    from solver_core.orchestrators.local import AgentInvoker, LocalOrchestrator
    from solver_core.orchestrators.stepfunctions import SfnOrchestrator
    from solver_core.ports import ArtifactStore, BatchOrchestrator, Notifier, Orchestrator, SandboxBackend
    from solver_core.publish.service import PublishService
    from solver_core.secrets import SecretNeeds
    from solver_core.services.allowlist import AllowlistService
    from solver_core.services.batches import BatchService
    from solver_core.services.cancel import CancelService
    from solver_core.services.catalog import CatalogService
    from solver_core.services.events import EventService
    from solver_core.services.runs import RunService
    from solver_core.services.solves import SolveService
    from solver_core.store.run_queries import RunQueries
    from solver_core.workflow.champion import SolveFlow
    from solver_core.workflow.pipeline import RunPipeline
    from solver_core.workflow.sweeper import Resumer, Sweeper


@dataclass(frozen=True)
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    artifacts: ArtifactStore
    solves: SolveService
    events: EventService
    runs: RunService

    def close(self) -> None:
        self.engine.dispose()

    def redactor(self) -> Redactor:
        return redactor_of(self.settings)

    def pipeline(self, sandboxes: SandboxBackend | None = None) -> RunPipeline:
        """The run steps on the configured sandbox provider (built once), or on the one given."""
        return self._pipeline if sandboxes is None else self._build_pipeline(sandboxes)

    @cached_property
    def _pipeline(self) -> RunPipeline:
        return self._build_pipeline(self.sandboxes)

    @cached_property
    def sandboxes(self) -> SandboxBackend:
        """The configured sandbox provider, built on first use (its SDK is imported then)."""
        return build_sandbox_backend(self.settings)

    def _build_pipeline(self, sandboxes: SandboxBackend) -> RunPipeline:
        from solver_core.workflow.pipeline import RunPipeline
        from solver_core.workflow.steps import StepDeps

        deps = StepDeps(
            settings=self.settings,
            runs=self.runs,
            events=self.events,
            artifacts=self.artifacts,
            sandboxes=sandboxes,
            redactor=self.redactor(),
            allowlist=self.allowlist,
        )
        return RunPipeline(deps)

    @cached_property
    def allowlist(self) -> AllowlistService:
        from solver_core.services.allowlist import AllowlistService

        return AllowlistService(self.sessions, trusted_owner=self.settings.trusted_owner)

    def local_orchestrator(
        self, *, invoke_agent: AgentInvoker | None = None, retry_time_scale: float = 1.0
    ) -> LocalOrchestrator:
        """A thread-pool orchestrator over this container's pipeline and solve flow; `invoke_agent`
        runs one RunAgent invocation elsewhere (`solver solve` runs the agent in a child process)."""
        from solver_core.orchestrators.local import LocalOrchestrator

        return LocalOrchestrator(
            self.pipeline(), self.flow(), invoke_agent=invoke_agent, retry_time_scale=retry_time_scale
        )

    def flow(self) -> SolveFlow:
        """BeginSolve, PickChampion, FinishSolve, FailSolve and publishing, with the deployment's
        attempts per run, notifier and publisher: the one solve flow every caller uses."""
        return self._flow

    @cached_property
    def _flow(self) -> SolveFlow:
        from solver_core.workflow.champion import SolveFlow

        return SolveFlow(
            self.runs,
            self.events,
            self.artifacts,
            max_run_attempts=self.settings.max_run_attempts,
            notify=self.notifier.solve_changed,
            publish=self.publishing.publish,
        )

    @cached_property
    def orchestrator(self) -> SfnOrchestrator | LocalOrchestrator:
        """Step Functions when a state machine is configured, otherwise the in-process orchestrator."""
        if self.settings.state_machine_arn:
            import boto3

            from solver_core.orchestrators.stepfunctions import SfnOrchestrator

            client = boto3.client("stepfunctions", region_name=self.settings.aws_region)
            return SfnOrchestrator(client, self.settings.state_machine_arn)
        return self.local_orchestrator()

    @cached_property
    def batch_orchestrator(self) -> BatchOrchestrator | None:
        """The batch state machine when one is configured; threads over the local orchestrator when
        solves run in this process; otherwise none (POST /batches answers 503)."""
        settings = self.settings
        if settings.batch_state_machine_arn and settings.artifacts_bucket:
            import boto3

            from solver_core.orchestrators.stepfunctions import SfnBatchOrchestrator

            client = boto3.client("stepfunctions", region_name=settings.aws_region)
            return SfnBatchOrchestrator(
                client, settings.batch_state_machine_arn, settings.artifacts_bucket, settings.artifacts_prefix
            )
        if settings.state_machine_arn:  # solves run in Step Functions, and no batch state machine is configured
            return None
        from solver_core.orchestrators.local import LocalOrchestrator
        from solver_core.orchestrators.local_batch import LocalBatchOrchestrator

        orchestrator = self.orchestrator
        assert isinstance(orchestrator, LocalOrchestrator)
        return LocalBatchOrchestrator(orchestrator, self.batches, self.artifacts)

    def cancel_service(
        self, orchestrator: Orchestrator | None = None, sandboxes: SandboxBackend | None = None
    ) -> CancelService:
        """Cancelling through this container's solve flow; the orchestrator and sandbox provider are
        the container's unless the caller runs its own (`solver solve`'s local orchestrator)."""
        from solver_core.services.cancel import CancelService

        return CancelService(
            solves=self.solves,
            runs=self.runs,
            events=self.events,
            sandboxes=sandboxes or self.sandboxes,
            orchestrator=orchestrator or self.orchestrator,
            champion=self.flow(),
        )

    def sweeper(self, orchestrator: Resumer | None = None) -> Sweeper:
        """The retry sweeper and execution reconciler over the container's orchestrator (or the given
        one, which must be able to resume runs)."""
        from solver_core.workflow.sweeper import Sweeper

        return Sweeper(
            pipeline=self.pipeline(),
            flow=self.flow(),
            orchestrator=orchestrator or self.orchestrator,
            settings=self.settings,
            queries=self.run_queries,
        )

    @cached_property
    def run_queries(self) -> RunQueries:
        from solver_core.store.run_queries import RunQueries

        return RunQueries(self.sessions)

    @cached_property
    def batches(self) -> BatchService:
        from solver_core.services.batches import BatchService

        return BatchService(self.sessions, self.solves)

    @cached_property
    def catalog(self) -> CatalogService:
        from solver_core.services.catalog import CatalogService

        return CatalogService(self.sessions)

    @cached_property
    def publishing(self) -> PublishService:
        """PublishResults; the GitHub publisher is built on first use (no credentials: an event)."""
        from solver_core.publish.github import build_publisher
        from solver_core.publish.service import PublishService

        return PublishService(
            self.sessions,
            self.events,
            self.artifacts,
            lambda: build_publisher(self.settings),
            allowlist=self.allowlist,
            api_url=self.settings.api_url,
        )

    @cached_property
    def notifier(self) -> Notifier:
        from solver_core.notify import build_notifier

        return build_notifier(self.settings)


def redactor_of(settings: Settings) -> Redactor:
    """Every secret Solver knows of: its own settings, and the values of secret-looking variables in
    its environment (LLM provider keys that litellm reads, say)."""
    from solver_core.agent.redact import Redactor

    return Redactor.from_environment(os.environ, extra=settings.configured_secrets())


def build_artifact_store(settings: Settings) -> ArtifactStore:
    if not settings.artifacts_bucket:
        from solver_core.artifacts.local import LocalArtifactStore

        return LocalArtifactStore(settings.resolved_artifacts_dir)
    # Only deployments with a bucket need boto3.
    from solver_core.artifacts.s3 import S3ArtifactStore, make_s3_client

    return S3ArtifactStore(
        make_s3_client(settings.aws_region, settings.s3_endpoint_url),
        settings.artifacts_bucket,
        prefix=settings.artifacts_prefix,
        kms_key_id=settings.s3_kms_key_id,
        presign_expiry_s=settings.presign_expiry_s,
    )


def build_sandbox_backend(settings: Settings) -> SandboxBackend:
    """The configured sandbox provider; each adapter is imported only when chosen."""
    if settings.sandbox == "e2b":
        from solver_core.sandbox.e2b import E2BSandboxBackend

        key = settings.e2b_api_key.get_secret_value() if settings.e2b_api_key else None
        return E2BSandboxBackend(
            api_key=key,
            template=settings.sandbox_template,
            api_url=settings.e2b_api_url,
            sandbox_url=settings.e2b_sandbox_url,
        )
    if settings.sandbox == "docker":
        from solver_core.sandbox.docker import DockerSandboxBackend

        return DockerSandboxBackend(image=settings.docker_image)
    from solver_core.sandbox.local import LocalSandboxBackend

    return LocalSandboxBackend(
        settings.resolved_sandbox_dir,
        isolation=settings.sandbox_isolation,
        hidden_paths=(settings.home,),
        read_paths=tuple(Path(p) for p in settings.sandbox_read_paths),
        agent_network=settings.sandbox_network == "on",
    )


def build_container(settings: Settings) -> Container:
    from solver_core.db.engine import make_engine, make_sessions
    from solver_core.rules import RequestPolicy
    from solver_core.services.events import EventService
    from solver_core.services.runs import RunService
    from solver_core.services.solves import SolveService

    engine = make_engine(settings.resolved_database_url, pool_size=settings.db_pool_size, echo=settings.db_echo)
    sessions = make_sessions(engine)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        artifacts=build_artifact_store(settings),
        solves=SolveService(sessions, RequestPolicy.from_settings(settings)),
        events=EventService(sessions),
        runs=RunService(sessions),
    )


@cache
def container(needs: SecretNeeds) -> Container:
    """The process-wide container of one Lambda function, built from the environment on first use
    with the secrets that function declares (`solver_core.secrets.FUNCTION_SECRETS`) resolved."""
    from solver_core.secrets import resolve_secrets

    return build_container(resolve_secrets(Settings(), needs))
