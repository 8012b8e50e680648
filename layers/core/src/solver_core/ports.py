"""The ports: what services need from the outside world, as Protocols. Adapters are named by
technology (`LocalArtifactStore`, `S3ArtifactStore`, …); test fakes live in tests/fakes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from uuid import UUID

    from solver_core.models import PublishedComment, PublishedPull, SolveView
    from solver_core.publish.report import SolveReport
    from solver_core.sandbox.base import CommandResult, SandboxInfo, SandboxSpec
    from solver_core.sandbox.jobs import JobStatus


class ArtifactStore(Protocol):
    """Write-once blobs addressed by keys from `solver_core.artifacts.keys`."""

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises ArtifactNotFound when there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted."""
        ...

    def delete_prefix(self, prefix: str) -> int: ...

    def url(self, key: str) -> str:
        """A link a user can open: a presigned GET URL on S3, a file:// URL locally."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes; raises ArtifactNotFound when there is none."""
        ...

    def download_url(self, key: str) -> str | None:
        """An https link anyone holding it can download the object from (presigned), or None when the
        store has no such links (files on disk)."""
        ...

    def check(self) -> None:
        """Raise ArtifactError when the store cannot be reached (health checks)."""
        ...


class Sandbox(Protocol):
    """A live sandbox. It satisfies mini-swe-agent's Environment protocol (execute, get_template_vars,
    serialize, config) and adds what preparation and collection need."""

    id: str
    home: str
    config: Any

    @property
    def workdir(self) -> str: ...

    def execute(self, action: dict[str, Any], cwd: str = "", *, timeout: int | None = None) -> dict[str, Any]: ...

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]: ...

    def serialize(self) -> dict[str, Any]: ...

    def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float,
        login: bool = False,
    ) -> CommandResult:
        """`login=False` (Solver's own commands) reads no shell startup file of the sandbox's HOME;
        the agent's commands run with `login=True`, as the agent's own shell."""
        ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        """The file's bytes; with `limit`, at most `limit + 1` of them are read (the caller tells
        "too large" by the length), so a huge file never reaches memory."""
        ...

    def start_job(
        self, job_id: str, command: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None, timeout: float
    ) -> None:
        """Start a detached command that outlives this call and this process (idempotent per job id)."""
        ...

    def job_status(self, job_id: str) -> JobStatus: ...

    def stop_job(self, job_id: str) -> None: ...

    def kill(self) -> bool: ...


class SandboxBackend(Protocol):
    """Opens sandboxes (or reconnects by id), kills them by id and finds them by metadata."""

    name: str

    def create(self, spec: SandboxSpec) -> Sandbox: ...

    def connect(self, sandbox_id: str) -> Sandbox: ...

    def kill(self, sandbox_id: str) -> bool:
        """True when a live sandbox was killed, False when it was already gone."""
        ...

    def list(self, metadata: Mapping[str, str]) -> list[SandboxInfo]: ...

    def check(self) -> None: ...


class Orchestrator(Protocol):
    """Runs a solve's steps: Step Functions in the cloud, a thread pool on one machine."""

    name: str

    def start(self, solve_id: UUID) -> str:
        """Start (or find already started) the solve's execution; returns its reference."""
        ...

    def stop(self, solve_id: UUID, execution_ref: str | None, reason: str) -> None:
        """Stop the execution; steps already running notice the cancel at their next check."""
        ...

    def check(self) -> None:
        """Raise when the orchestrator cannot be reached (health checks)."""
        ...


class CancelFinisher(Protocol):
    """Settles a solve being cancelled: what is left of it is marked cancelled (the workflow's SolveFlow)."""

    def finish_cancel(self, solve_id: UUID) -> SolveView:
        """Mark the runs not yet finished and the solve cancelled; returns the solve."""
        ...


class BatchOrchestrator(Protocol):
    """Runs a cloud batch: each of its solves, at most `max_concurrency` at once, then FinishBatch.
    The batch state machine in the cloud (statemachine/batch.asl.json), threads on one machine."""

    name: str

    def start(self, batch_id: UUID, items_key: str, max_concurrency: int) -> str:
        """Start (or find already started) the batch's execution over the items file; its reference."""
        ...

    def stop(self, batch_id: UUID, execution_ref: str | None, reason: str) -> None:
        """Stop starting solves; the solves already started are cancelled by the caller."""
        ...


class Notifier(Protocol):
    """Tells the outside world that a solve's status changed (EventBridge, webhooks)."""

    def solve_changed(self, solve: SolveView) -> None:
        """Deliver, or log the failure: never raises, never fails the solve."""
        ...


class Publisher(Protocol):
    """Puts a finished solve's result where its issue lives (GitHub). Publishing again updates what
    the previous attempt left (given as `previous`) instead of adding more. Raises PublishError."""

    def pull_request(self, report: SolveReport, previous: PublishedPull | None) -> PublishedPull:
        """Create or update the draft pull request with the champion patch."""
        ...

    def comment(
        self, report: SolveReport, previous: PublishedComment | None, pull: PublishedPull | None
    ) -> PublishedComment:
        """Create or update the issue comment (runs, champion diff, links; the pull request if any)."""
        ...
