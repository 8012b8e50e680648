"""The local orchestrator: the state machine's flow in-process, runs in a thread pool bounded by
the solve's max_parallel. Used by `solver solve`, `solver serve` and `solver demo`.

It mirrors the cloud: each run goes through the same steps with the same in-place retries; a run
that fails retryably is resumed from its checkpoint (what the sweeper does in the cloud) until its
attempts are used up; then PickChampion and FinishSolve. Cancelling goes through the database:
each run sees it at its next check, and the cancel service kills the sandboxes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from uuid import UUID

from solver_core.errors import IllegalTransition, SolverError
from solver_core.models import RunView, SolveView
from solver_core.status import RunStatus
from solver_core.store.outage import database_unavailable
from solver_core.workflow import process_ref
from solver_core.workflow.agent_step import Budget
from solver_core.workflow.champion import SolveFlow, will_retry
from solver_core.workflow.pipeline import RunPipeline
from solver_core.workflow.retry import LAUNCH_RULES, PICK_RULES, STEP_RULES, VERIFY_RULES, RetryRule, call_with_retries

log = logging.getLogger(__name__)

RESUME_BACKOFF_S = 2.0

AgentInvoker = Callable[[UUID], bool]
T = TypeVar("T")


class LocalOrchestrator:
    name = "local"

    def __init__(
        self,
        pipeline: RunPipeline,
        flow: SolveFlow,
        *,
        invoke_agent: AgentInvoker | None = None,
        retry_time_scale: float = 1.0,
    ) -> None:
        self.pipeline = pipeline
        self.flow = flow
        self._invoke_agent = invoke_agent
        self._time_scale = retry_time_scale
        self._threads: dict[UUID, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, solve_id: UUID) -> str:
        """Run the solve in a background thread; starting it twice is harmless."""
        return self._spawn(solve_id, None)

    def resume(self, solve_id: UUID, run_ids: list[UUID], attempt: int) -> str:
        """Run re-queued runs of a solve in a background thread (the sweeper's resume)."""
        return self._spawn(solve_id, run_ids)

    def is_running(self, execution_ref: str | None) -> bool:
        """Whether that execution still runs: in this process, its thread; in another process on
        this machine, that process (see workflow/process_ref.py)."""
        ref = process_ref.parse(execution_ref)
        if ref is None:
            return False
        if process_ref.is_this_process(ref):
            thread = self._threads.get(ref.solve_id)
            return thread is not None and thread.is_alive()
        return process_ref.process_alive(ref)

    def _spawn(self, solve_id: UUID, run_ids: list[UUID] | None) -> str:
        with self._lock:
            thread = self._threads.get(solve_id)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self.execute_or_fail, args=(solve_id, run_ids), name=f"solve-{solve_id}"
                )
                self._threads[solve_id] = thread
                thread.start()
        return process_ref.execution_ref(solve_id)

    def wait(self, solve_id: UUID, timeout: float | None = None) -> bool:
        """True once the solve's background execution has ended."""
        thread = self._threads.get(solve_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop(self, solve_id: UUID, execution_ref: str | None, reason: str) -> None:
        """Nothing to stop in-process: the runs notice the cancel in the database at their next check."""
        log.info("solve %s: stop requested (%s)", solve_id, reason)

    def check(self) -> None:
        return None

    def execute_or_fail(self, solve_id: UUID, run_ids: list[UUID] | None = None) -> None:
        """`execute`, and whatever breaks outside the runs fails the solve: a solve always ends."""
        try:
            self.execute(solve_id, run_ids)
        except Exception as exc:
            log.exception("solve %s failed outside its runs", solve_id)
            self.flow.fail(solve_id, type(exc).__name__, str(exc))

    def execute(self, solve_id: UUID, run_ids: list[UUID] | None = None) -> SolveView:
        """BeginSolve → every run (at most max_parallel at once) → PlanChecks (and the checks' runs) →
        PickChampion → FinishSolve → PublishResults when the solve asked for it (it never fails the solve)."""
        begun = self.flow.begin(solve_id, run_ids)
        # Names this process as the one running the solve: if it dies, others can tell.
        self.pipeline.deps.runs.set_solve_fields(solve_id, execution_ref=process_ref.execution_ref(solve_id))
        while begun["runs"]:  # the attempts (and baseline), then the reproduction checks if any
            ids = [UUID(item["run_id"]) for item in begun["runs"]]
            with ThreadPoolExecutor(max_workers=begun["max_parallel"], thread_name_prefix="run") as pool:
                list(pool.map(self._run_until_settled, ids))
            begun = self.flow.plan_checks(solve_id)
        call_with_retries(lambda: self.flow.pick(solve_id), PICK_RULES, time_scale=self._time_scale)
        done = self.flow.finish(solve_id)
        if not self.flow.wants_publish(done):
            return done
        try:
            self.flow.publish(solve_id)
        except Exception:  # as the state machine's catch-all does: publishing never fails a solve
            log.exception("publishing solve %s failed", solve_id)
        return self.pipeline.deps.runs.solve(solve_id)

    def _run_until_settled(self, run_id: UUID) -> None:
        while True:
            run = run_to_end(self.pipeline, run_id, invoke_agent=self._invoke_agent, retry_time_scale=self._time_scale)
            if not will_retry(run, self.flow.max_run_attempts) or self.pipeline.deps.runs.stop_reason(run_id):
                return
            time.sleep(RESUME_BACKOFF_S * (run.attempt + 1) * self._time_scale)
            with contextlib.suppress(IllegalTransition):  # cancelled meanwhile: stop here
                self.pipeline.deps.runs.move(run_id, RunStatus.QUEUED)
                continue
            return


def run_to_end(
    pipeline: RunPipeline, run_id: UUID, *, invoke_agent: AgentInvoker | None = None, retry_time_scale: float = 1.0
) -> RunView:
    """One run from launch to release, every step in order in this process, with the state machine's
    in-place retries; failures go through RecordRunFailure and the sandbox is always released.
    `invoke_agent` runs one RunAgent invocation (by default in-process, `agent_chunk_steps` at a
    time) and says whether the agent is done."""
    steps = pipeline.steps
    chunk = pipeline.deps.settings.agent_chunk_steps
    invoke = invoke_agent or (lambda rid: pipeline.agent.run(rid, Budget(max_steps=chunk)))

    def retried(step: Callable[[], T], rules: tuple[RetryRule, ...] = STEP_RULES) -> T:
        return call_with_retries(step, rules, time_scale=retry_time_scale)

    sandbox_id: str | None = None
    try:
        sandbox_id = retried(lambda: steps.launch(run_id), LAUNCH_RULES)
        # Without an invocation limit PrepareRepository and VerifyPatch wait for their commands
        # in one call; the loops are the state machine's, for the same code path.
        while not retried(lambda: steps.prepare(run_id)):
            pass
        while not retried(lambda: invoke(run_id)):
            pass
        retried(lambda: pipeline.collect(run_id))
        while not retried(lambda: steps.verify(run_id), VERIFY_RULES):
            pass
    except SolverError as exc:
        _record_failure(pipeline, run_id, type(exc).__name__, exc.message)
    except Exception as exc:
        log.exception("run %s failed unexpectedly", run_id)
        # A database that stayed down longer than the services wait is an outage: resumable.
        _record_failure(pipeline, run_id, type(exc).__name__, str(exc), retryable=database_unavailable(exc) or None)
    finally:
        _release(pipeline, run_id, sandbox_id)
    return pipeline.deps.runs.get(run_id)


def _record_failure(
    pipeline: RunPipeline, run_id: UUID, error: str, message: str, *, retryable: bool | None = None
) -> None:
    try:
        pipeline.record_failure(run_id, error, message, retryable=retryable)
    except Exception:  # the database is still down: the sweeper finds the run by its stale heartbeat
        log.exception("could not record the failure of run %s", run_id)


def _release(pipeline: RunPipeline, run_id: UUID, sandbox_id: str | None) -> None:
    """ReleaseSandbox, and if the database cannot say which sandbox, the one this run launched:
    a sandbox must not outlive its run because the database was down."""
    try:
        pipeline.steps.release(run_id)
    except Exception:
        log.exception("could not release the sandbox of run %s through the database", run_id)
        if sandbox_id is not None:
            with contextlib.suppress(SolverError):
                pipeline.deps.sandboxes.kill(sandbox_id)
