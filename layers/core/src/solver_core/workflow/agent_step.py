"""RunAgent: restore the checkpoint, run steps until the agent exits or must stop, checkpoint each.

It stops when the agent exits, the solve is being cancelled, the invocation's time budget is
nearly spent, or a chunk of steps is done; `run()` says whether the agent is done. After every
step: the partial diff, a checkpoint part, the run's counters and heartbeat, and a `step` event.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from solver_core.agent.checkpoint import AgentState, Checkpointer, Counters, trajectory, trajectory_bytes
from solver_core.agent.config import AgentSetup, agent_setup
from solver_core.agent.keys import DEPLOYED_FIX, DOCTOR_FIX, preflight_models
from solver_core.agent.models import build_model, header_values, merged_kwargs, redacted_kwargs
from solver_core.agent.redact import Redactor
from solver_core.agent.runner import Driver, SolverAgent, StepReport, StopReason
from solver_core.artifacts import keys
from solver_core.errors import ModelNotConfigured, ModelUnavailable, PatchTooLarge, RunCancelled, RunError, SolverError
from solver_core.messages import summarize_exception
from solver_core.models import RunKind
from solver_core.ports import ArtifactStore, Sandbox
from solver_core.sandbox import repository
from solver_core.services.runs import RunContext
from solver_core.status import RunStatus
from solver_core.store.outage import database_unavailable
from solver_core.workflow.steps import RunSteps, issue_text

log = logging.getLogger(__name__)

EVENT_OUTPUT_CHARS = 1500
PARTIAL_DIFF_INTERVAL_S = 1.0
_KEY_ERRORS = ("AuthenticationError", "PermissionDeniedError")
_RETRYABLE_MODEL_ERRORS = (
    "RateLimitError", "InternalServerError", "ServiceUnavailableError", "BadGatewayError", "Timeout",
    "APIConnectionError", "APIError",
)  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """How far one invocation may go: a monotonic deadline for starting steps, and/or a step count."""

    deadline: float | None = None
    max_steps: int | None = None

    @classmethod
    def from_remaining(cls, remaining_s: float, margin_s: float, max_steps: int | None = None) -> Budget:
        return cls(deadline=time.monotonic() + max(remaining_s - margin_s, 0), max_steps=max_steps)


def map_agent_error(exc: Exception) -> SolverError:
    """The agent loop's failures as typed errors, in one short line that keeps the provider's own
    error code: provider trouble is retryable, a refused key is ModelNotConfigured, the rest is not
    retryable. The full text goes to the run's log artifact (`AgentStep.record_detail`)."""
    if isinstance(exc, SolverError):
        return exc
    name = type(exc).__name__
    summary = summarize_exception(exc)
    if name in _KEY_ERRORS:
        hint = "check the provider key where the agent loop runs; `solver doctor` checks it"
        return ModelNotConfigured(f"the model provider refused the credentials: {summary}", hint=hint)
    if name in _RETRYABLE_MODEL_ERRORS:
        return ModelUnavailable(f"the model provider kept failing: {summary}")
    return RunError(f"the agent stopped: {summary}")


class AgentStep:
    def __init__(self, steps: RunSteps) -> None:
        self.steps = steps
        self.deps = steps.deps

    def setup(self, ctx: RunContext) -> AgentSetup:
        return agent_setup(
            ctx.agent_base,
            ctx.agent_overrides,
            ctx.solve.limits,
            command_timeout_s=self.deps.settings.command_timeout_s,
        )

    def redactor(self, ctx: RunContext, setup: AgentSetup) -> Redactor:
        """The deployment's redactor plus the values of the headers this run's model sends."""
        return self.deps.redactor.with_secrets(header_values(merged_kwargs(ctx.model, setup.model)))

    def run(self, run_id: UUID, budget: Budget) -> bool:
        if self.deps.runs.stop_reason(run_id):
            raise RunCancelled("the solve is being cancelled")
        ctx = self.deps.runs.context(run_id)
        if ctx.run.status is not RunStatus.SOLVING:
            self.deps.runs.move(run_id, RunStatus.SOLVING)
        if ctx.run.kind is not RunKind.ATTEMPT:  # the baseline and the checks: no agent, VerifyPatch follows
            return True
        # A missing key fails here, in one line, not in litellm; in a deployment the keys come from a secret.
        deployed = self.deps.settings.llm_keys_secret_arn is not None
        preflight_models([ctx.model.name], hint=DEPLOYED_FIX if deployed else DOCTOR_FIX)
        try:
            driver, diffs = self._driver(ctx, budget)
        except Exception as exc:
            self.record_detail(ctx, exc)
            raise map_agent_error(exc) from exc
        try:
            reason = driver.run(budget.max_steps)
            if reason in {StopReason.CHUNK, StopReason.BUDGET}:
                diffs.cover(driver.state)  # the budget may have run out just after a step's own check
        except Exception as exc:
            # A failed run resumes in a new sandbox. While this one still answers (the model or the
            # database failed, not the sandbox), leave a diff of every step, so none is rewound.
            try:
                diffs.cover(driver.state)
            except Exception:
                log.info("run %s: no partial diff after its failure; a resume rewinds to the last one", run_id)
            self.keep_records_if_cancelled(run_id)  # the cancel killed the sandbox under the step
            if database_unavailable(exc):
                raise  # an outage, not the agent's doing: the caller records it as retryable
            if self.deps.runs.stop_reason(run_id):  # the step failed because the cancel killed its sandbox
                raise RunCancelled("the solve was cancelled") from exc
            self.record_detail(ctx, exc)
            raise map_agent_error(exc) from exc
        if reason is StopReason.CANCELLED:
            self.keep_records_if_cancelled(run_id)
            raise RunCancelled("the solve was cancelled")
        if reason is StopReason.EXITED:
            ended = driver.state.exit or {}
            self.deps.runs.set_fields(run_id, exit_status=str(ended.get("exit_status") or "unknown"))
            return True
        return False

    def _driver(self, ctx: RunContext, budget: Budget) -> tuple[Driver, PartialDiffs]:
        setup = self.setup(ctx)
        sandbox = self.steps.sandbox(ctx)
        sandbox.config = setup.environment
        agent = SolverAgent(build_model(ctx.model, setup.model), sandbox, **setup.agent)
        redactor = self.redactor(ctx, setup)
        checkpointer = Checkpointer(self.deps.artifacts, ctx.solve.id, ctx.run.id, redactor)
        restored = checkpointer.restore()
        diffs = PartialDiffs(
            self.deps.artifacts, sandbox, ctx, budget, checkpointer, max_patch_bytes=self.deps.settings.max_patch_bytes
        )
        # The cancel check rides on each step's own transaction (`record_step`); `run()` checked
        # before the first step.
        stop: list[str | None] = [None]

        def should_stop() -> StopReason | None:
            if stop[0]:
                return StopReason.CANCELLED
            if budget.deadline is not None and time.monotonic() >= budget.deadline:
                return StopReason.BUDGET
            return None

        def after_step(report: StepReport) -> None:
            stop[0] = self._after_step(ctx, report, redactor)

        driver = Driver(
            agent,
            restored or AgentState(counters=Counters(sandbox_id=sandbox.id)),
            checkpointer,
            should_stop=should_stop,
            before_checkpoint=diffs.maybe,
            after_step=after_step,
        )
        if restored is None:
            driver.start(issue_text(ctx))
        else:
            resumed_after_error = restored.drop_error_exit()
            restored.rewind_for(sandbox.id)
            agent.load(restored)
            if resumed_after_error and (answers := agent.close_interrupted_actions()):
                restored.messages.extend(answers)
                checkpointer.append(restored, answers)
        return driver, diffs

    def _after_step(self, ctx: RunContext, report: StepReport, redact: Redactor) -> str | None:
        """Counters, heartbeat and the `step` event in one transaction; returns the stop reason."""
        counters = report.state.counters
        actions = step_actions(report.messages)
        first = actions[0]["command"].splitlines()[0][:160] if actions else "(no command)"
        data = {"step": report.step, "cost_usd": counters.cost, "actions": actions}
        if report.state.exit:
            data["exit_status"] = report.state.exit.get("exit_status")
        return self.deps.runs.record_step(
            ctx.run.id,
            ctx.solve.id,
            steps=counters.n_calls,
            cost_usd=counters.cost,
            tokens=counters.tokens,
            message=redact.redact(f"step {report.step}: {first}"),
            data=redact.redact_data(data),
        )

    def store_records(self, ctx: RunContext) -> None:
        """Write the trajectory (from the checkpoint) and the run log; used on success and failure."""
        setup = self.setup(ctx)
        redactor = self.redactor(ctx, setup)
        state = Checkpointer(self.deps.artifacts, ctx.solve.id, ctx.run.id, redactor).restore()
        fields: dict[str, Any] = {}
        if state is not None:
            kwargs = redacted_kwargs(merged_kwargs(ctx.model, setup.model))
            config = {
                "agent": setup.agent,
                "agent_type": f"{SolverAgent.__module__}.{SolverAgent.__name__}",
                "model": {"model_name": ctx.model.name, "model_kwargs": kwargs},
                "environment": setup.environment.model_dump(mode="json"),
                "environment_type": self.deps.sandboxes.name,
            }
            key = keys.trajectory(ctx.solve.id, ctx.run.id)
            data = trajectory(state, config=config, exit_status=ctx.run.exit_status)
            self.deps.artifacts.put(key, trajectory_bytes(data, redactor), content_type="application/json")
            fields["trajectory_key"] = key
        fields["log_key"] = self._store_log(ctx, redactor)
        # Even on a run already cancelled or failed: a cancel marks runs cancelled before their own
        # thread (or Lambda) notices, and their trajectory was then never recorded.
        self.deps.runs.record_artifacts(ctx.run.id, **fields)

    def keep_records_if_cancelled(self, run_id: UUID) -> None:
        """A cancelled run's trajectory survives it. In the cloud nothing else writes
        it: the cancel stops the execution, so no RecordRunFailure follows this invocation."""
        try:
            if self.deps.runs.stop_reason(run_id):
                self.store_records(self.deps.runs.context(run_id))
        except Exception:
            log.exception("could not store the records of cancelled run %s", run_id)

    def record_detail(self, ctx: RunContext, exc: BaseException) -> None:
        """The full text of a failure, for the run's log artifact (events carry one line)."""
        detail = "".join(traceback.format_exception_only(exc)).strip()
        try:
            key = keys.error_detail(ctx.solve.id, ctx.run.id)
            self.deps.artifacts.put(key, self.deps.redactor.redact(detail).encode(), content_type="text/plain")
        except Exception:
            log.exception("could not store the error detail of run %s", ctx.run.id)

    def _store_log(self, ctx: RunContext, redactor: Redactor) -> str:
        events = self.deps.events.read(ctx.solve.owner, ctx.solve.id, limit=1000)
        lines = [f"{e.at.isoformat()} {e.kind.value:6} {e.message}" for e in events if e.run_id == ctx.run.id]
        prepare_key = keys.prepare_log(ctx.solve.id, ctx.run.id)
        if self.deps.artifacts.exists(prepare_key):
            lines += [
                "",
                "--- repository preparation ---",
                self.deps.artifacts.get(prepare_key).decode(errors="replace"),
            ]
        detail_key = keys.error_detail(ctx.solve.id, ctx.run.id)
        if self.deps.artifacts.exists(detail_key):
            lines += ["", "--- error detail ---", self.deps.artifacts.get(detail_key).decode(errors="replace")]
        key = keys.log(ctx.solve.id, ctx.run.id)
        self.deps.artifacts.put(key, redactor.redact("\n".join(lines)).encode(), content_type="text/plain")
        return key


class PartialDiffs:
    """The run's partial diff (`git diff` of the working tree against the base commit), stored
    when it changed. Each one is a sandbox command (about 10 ms locally, a round trip on e2b), which
    on fast steps cost more than the steps themselves: one is taken at most every
    PARTIAL_DIFF_INTERVAL_S (on LLM steps, that is every step), after the last step of an
    invocation (whose sandbox the next one may find gone), and after a failure while the sandbox
    still answers. The counters record how many messages it covers, so a resume in a new sandbox
    knows where to rewind."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        sandbox: Sandbox,
        ctx: RunContext,
        budget: Budget,
        checkpointer: Checkpointer,
        *,
        max_patch_bytes: int,
    ) -> None:
        self._artifacts = artifacts
        self._checkpointer = checkpointer
        self._sandbox = sandbox
        self._base = ctx.run.base_commit or ""
        self._key = keys.partial_diff(ctx.solve.id, ctx.run.id)
        self._budget = budget
        self._max_bytes = max_patch_bytes
        self._steps = 0
        self._last = time.monotonic()

    def maybe(self, state: AgentState) -> None:
        self._steps += 1
        now = time.monotonic()
        budget = self._budget
        last_step = (budget.max_steps is not None and self._steps >= budget.max_steps) or (
            budget.deadline is not None and now >= budget.deadline
        )
        if last_step or now - self._last >= PARTIAL_DIFF_INTERVAL_S:
            self.take(state)

    def cover(self, state: AgentState) -> None:
        """Make the stored diff cover every step taken; one more checkpoint part records that."""
        if state.counters.partial_diff_messages != len(state.messages):
            self.take(state)
            self._checkpointer.append(state, [])

    def take(self, state: AgentState) -> None:
        try:
            digest, data = repository.diff_if_changed(
                self._sandbox, self._base, state.counters.partial_diff_digest, max_bytes=self._max_bytes
            )
        except PatchTooLarge:
            # The stored diff stays the last one that fitted, and the counters say which steps it
            # covers: a resume rewinds to it. CollectArtifacts fails the run if the patch stays too large.
            self._last = time.monotonic()
            return
        if data is not None:
            self._artifacts.put(self._key, data, content_type="text/x-diff")
        state.counters.partial_diff_digest = digest
        state.counters.partial_diff_messages = len(state.messages)
        self._last = time.monotonic()


def step_actions(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commands of a step with the start of their output, for the live feed."""
    outputs = {m.get("tool_call_id"): m.get("extra") or {} for m in messages if m.get("role") in {"tool", "user"}}
    actions = []
    for message in messages:
        for action in (message.get("extra") or {}).get("actions", []) if message.get("role") == "assistant" else []:
            result = outputs.get(action.get("tool_call_id"), {})
            actions.append(
                {
                    "command": str(action.get("command", ""))[:EVENT_OUTPUT_CHARS],
                    "returncode": result.get("returncode"),
                    "output": str(result.get("raw_output", ""))[:EVENT_OUTPUT_CHARS],
                }
            )
    return actions
