"""A solve's world for fault tests: the real services over a test database, an artifact store, a
sandbox provider (the local backend, or the real e2b SDK against the loopback fake service) and
the local orchestrator, which runs the same steps and retry rules as the state machine and resumes
retryable failures at once, as the sweeper does in the cloud.

Canary secrets sit in the environment and in the settings; the invariants grep for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from solver_core.db.migrate import upgrade
from solver_core.models import SolveView
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.ports import ArtifactStore, SandboxBackend
from solver_core.sandbox.e2b import E2BSandboxBackend
from solver_core.sandbox.local import LocalSandboxBackend
from solver_core.services.cancel import CancelOutcome, CancelService
from solver_core.wiring import Container, build_container
from solver_core.workflow.pipeline import RunPipeline
from tests.fakes.e2b import FakeE2BService
from tests.fakes.sandboxes import WatchedSandboxes
from tests.faults import invariants
from tests.support.runtime import make_repo, runtime_settings, start_solve, write_replay

# Retry and resume waits as configured, 100 times shorter.
TIME_SCALE = 0.01
MAX_ATTEMPTS = 3
OWNER = "tester"  # tests.support.runtime.start_solve's owner

BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5, mean([1, 2])\nprint('ok')\n"
FIX = "sed -i 's|//|/|' calc.py"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
TEST_COMMAND = "python3 test_calc.py"

CANARY_ENV = {
    "OPENAI_API_KEY": "sk-canaryOpenAI0000111122223333444455556666",
    "ANTHROPIC_API_KEY": "sk-ant-canaryAnthropic7777888899990000aaaa",
    "AWS_SECRET_ACCESS_KEY": "canaryAwsSecretKey/0123456789abcdefghijABCD",
    "SOLVER_GITHUB_TOKEN": "ghp_canaryGithubToken0123456789abcdefABCDEF",
    "SOLVER_WEBHOOK_SECRET": "canary-webhook-secret-5f4dcc3b5aa765d61d83",
}
CANARY_E2B_KEY = "e2b_canary0123456789abcdef0123456789abcdef"
# Commands a curious (or hijacked) agent might send: the environment, and the secrets spelled out.
NOSY_ACTIONS = (
    "env | sort",
    "echo $OPENAI_API_KEY $ANTHROPIC_API_KEY $SOLVER_GITHUB_TOKEN $AWS_SECRET_ACCESS_KEY",
    f"echo leaked {CANARY_ENV['OPENAI_API_KEY']} {CANARY_E2B_KEY}",
)


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Canary secrets in the environment (settings read SOLVER_*; litellm reads the provider keys)."""
    for name, value in CANARY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return [*CANARY_ENV.values(), CANARY_E2B_KEY]


@dataclass
class FaultWorld:
    container: Container
    sandboxes: WatchedSandboxes
    inner: SandboxBackend
    pipeline: RunPipeline
    orchestrator: LocalOrchestrator
    secrets: list[str]
    tmp: Path
    e2b: FakeE2BService | None = None
    markers: list[str] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def repo(self, name: str = "calc") -> Path:
        return make_repo(self.tmp / name, {"calc.py": BUGGY, "test_calc.py": TESTS})

    def replay(self, name: str, *commands: str) -> str:
        return write_replay(self.tmp / f"{name}.yaml", *commands)

    def marker(self, seconds: float) -> str:
        """A `sleep` whose command line is unique to this test, so leftovers can be found."""
        # Extra decimals make the command line unique without changing the duration noticeably.
        token = f"{float(seconds):.1f}00{len(self.markers)}{id(self) % 1000:03d}1"
        self.markers.append(f"sleep {token}")
        return f"sleep {token}"

    def start(self, **request: Any) -> SolveView:
        request.setdefault("repo_url", str(self.repo()))
        request.setdefault("test_command", TEST_COMMAND)
        return start_solve(self.container, **request)

    def run(self, solve: SolveView) -> SolveView:
        """The solve's execution as `solver solve` runs it: whatever breaks outside the runs fails it."""
        try:
            return self.orchestrator.execute(solve.id)
        except Exception as exc:
            self.errors.append(exc)
            return self.container.flow().fail(solve.id, type(exc).__name__, str(exc))

    def run_in_background(self, solve: SolveView) -> threading.Thread:
        """The solve's execution in a thread; what escapes it lands in `errors`."""

        def execute() -> None:
            try:
                self.orchestrator.execute(solve.id)
            except Exception as exc:
                self.errors.append(exc)

        worker = threading.Thread(target=execute, name=f"faults-{solve.id}")
        worker.start()
        return worker

    def wait_for_step(self, solve: SolveView, step: int, *, run: int = 0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.container.runs.get(solve.runs[run].id).steps >= step:
                return
            time.sleep(0.02)
        raise AssertionError(f"run {run} never reached step {step}")

    def cancel(self, solve_id: UUID) -> CancelOutcome:
        return CancelService(
            solves=self.container.solves, runs=self.container.runs, events=self.container.events,
            sandboxes=self.sandboxes, orchestrator=self.orchestrator, champion=self.container.flow(),
        ).cancel(OWNER, solve_id)  # fmt: skip

    def live_sandboxes(self) -> list[str]:
        if self.e2b is not None:
            return self.e2b.live_sandbox_ids()
        return [info.id for info in self.inner.list({"app": "solver"})]

    def check(self, solve: SolveView) -> SolveView:
        return invariants.check(
            self.container,
            solve.id,
            secrets=self.secrets,
            live_sandboxes=self.live_sandboxes,
            max_attempts=MAX_ATTEMPTS,
            markers=self.markers,
        )


@contextlib.contextmanager
def fault_world(
    tmp: Path,
    database_url: str,
    secrets: list[str],
    *,
    backend: str = "local",
    artifacts: Callable[[ArtifactStore], ArtifactStore] | None = None,
    **settings: Any,
) -> Iterator[FaultWorld]:
    """A world on `backend` ("local": plain subprocesses; "e2b": the SDK against the fake service);
    `artifacts` wraps the artifact store (to inject faults into it)."""
    with contextlib.ExitStack() as stack:
        e2b = None
        # The e2b key is a configured secret on every backend: the nosy actions spell it out.
        values: dict[str, Any] = {"max_run_attempts": MAX_ATTEMPTS, "e2b_api_key": CANARY_E2B_KEY} | settings
        if backend == "e2b":
            e2b = stack.enter_context(FakeE2BService(tmp / "e2b", api_key=CANARY_E2B_KEY).start())
        container = build_container(runtime_settings(tmp, database_url, **values))
        stack.callback(container.close)
        upgrade(container.engine)
        if artifacts is not None:
            container = dataclasses.replace(container, artifacts=artifacts(container.artifacts))
        inner: SandboxBackend
        if e2b is not None:
            inner = E2BSandboxBackend(api_key=e2b.api_key, api_url=e2b.api_url, sandbox_url=e2b.sandbox_url)
        else:
            inner = LocalSandboxBackend(tmp / "sandboxes", isolation="none")
        sandboxes = WatchedSandboxes(inner)
        pipeline = container.pipeline(sandboxes)
        orchestrator = LocalOrchestrator(pipeline, container.flow(), retry_time_scale=TIME_SCALE)
        yield FaultWorld(container, sandboxes, inner, pipeline, orchestrator, secrets, tmp, e2b)
