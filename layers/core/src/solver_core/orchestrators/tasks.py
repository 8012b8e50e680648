"""The state machine's Task handlers: one entry point that validates the payload (ids only) and calls
the step. Errors propagate with their class names, which the state machine's Retry and Catch match.

Every state's input and output must stay under Step Functions' 256 KB. The results are ids and flags;
an error becomes the `Cause` a Catch puts into the next state's input (Lambda's error payload: the
message and the stack trace), so an error leaves here with its message cut to `MAX_ERROR_CHARS` and
its trace to the last `MAX_ERROR_FRAMES` frames (the whole error is logged first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from solver_core.services.batches import BatchService, finish_batch
from solver_core.settings import Settings
from solver_core.workflow.agent_step import Budget
from solver_core.workflow.champion import SolveFlow
from solver_core.workflow.commands import Window
from solver_core.workflow.pipeline import RunPipeline

Step = Literal[
    "begin", "launch", "prepare", "run_agent", "collect", "verify", "release", "record_failure",
    "plan_checks", "pick_champion", "finish", "publish", "fail",
]  # fmt: skip


class CaughtError(BaseModel):
    """What a Catch puts under ResultPath: the error name and its cause (Lambda's JSON error payload)."""

    model_config = ConfigDict(extra="ignore")

    Error: str = "Unknown"
    Cause: str | None = ""

    def message(self) -> str:
        try:
            payload = json.loads(self.Cause or "")
        except ValueError:
            return self.Cause or self.Error
        if isinstance(payload, dict):
            return str(payload.get("errorMessage") or payload.get("message") or self.Cause)
        return str(self.Cause)


class BatchTaskEvent(BaseModel):
    """A state of the batch state machine (statemachine/batch.asl.json): ids only, like TaskEvent."""

    model_config = ConfigDict(extra="forbid")

    step: Literal["finish_batch"]
    batch_id: UUID
    error: CaughtError | None = None


class TaskEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Step
    solve_id: UUID
    run_id: UUID | None = None
    run_ids: list[UUID] | None = None
    error: CaughtError | None = None


@dataclass(frozen=True)
class TaskContext:
    pipeline: RunPipeline
    flow: SolveFlow
    settings: Settings
    remaining_ms: Callable[[], int]
    batches: BatchService | None = None  # the batch state machine's FinishBatch


log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 8192
MAX_ERROR_FRAMES = 40


def handle(raw: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    if raw.get("step") == "finish_batch":
        try:
            return _finish_batch(BatchTaskEvent.model_validate(raw), ctx)
        except Exception as exc:
            raise bounded(exc) from exc.__cause__
    event = TaskEvent.model_validate(raw)
    try:
        return _HANDLERS[event.step](event, ctx)
    except Exception as exc:
        raise bounded(exc) from exc.__cause__


def _finish_batch(event: BatchTaskEvent, ctx: TaskContext) -> dict[str, Any]:
    """FinishBatch: solves the Map never started are cancelled; the batch ends (failed with the
    Map's error when one was caught)."""
    if ctx.batches is None:
        raise ValueError("finish_batch needs the batch service")
    error = f"{event.error.Error}: {event.error.message()}" if event.error is not None else None
    done = finish_batch(ctx.batches, ctx.pipeline.deps.runs, ctx.flow, event.batch_id, error)
    return {"status": done.status, "done": done.counts.done, "total": done.counts.total}


def bounded(exc: Exception) -> Exception:
    """`exc` (the same class name, for Retry and Catch) with a message and a trace that fit a state."""
    text, frames = str(exc), _frames(exc)
    if len(text) <= MAX_ERROR_CHARS and frames <= MAX_ERROR_FRAMES:
        return exc
    log.error("a step failed with a long error; the state machine gets it shortened", exc_info=exc)
    short = (
        f"{text[:MAX_ERROR_CHARS]}... ({len(text) - MAX_ERROR_CHARS} more characters)"
        if len(text) > MAX_ERROR_CHARS
        else text
    )
    tail = exc.__traceback__
    for _ in range(max(frames - MAX_ERROR_FRAMES, 0)):
        tail = tail.tb_next if tail is not None else None
    exc.args = (short,)
    if len(str(exc)) > len(short):  # a class whose text is not its arguments: same name, plain message
        exc = type(type(exc).__name__, (Exception,), {"__module__": type(exc).__module__})(short)
    return exc.with_traceback(tail)


def _frames(exc: BaseException) -> int:
    count, tb = 0, exc.__traceback__
    while tb is not None:
        count, tb = count + 1, tb.tb_next
    return count


def _run(event: TaskEvent) -> UUID:
    if event.run_id is None:
        raise ValueError(f"step {event.step} needs a run_id")
    return event.run_id


def _begin(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    return ctx.flow.begin(event.solve_id, event.run_ids)


def _launch(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    return {"sandbox_id": ctx.pipeline.steps.launch(_run(event))}


def _window(ctx: TaskContext) -> Window:
    """This invocation's share: its remaining time less the margin, and the wait for a command."""
    remaining_s = ctx.remaining_ms() / 1000
    return Window.from_remaining(remaining_s, ctx.settings.budget_margin_s, max_wait_s=ctx.settings.command_wait_s)


def _prepare(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    """`done: false` sends the state machine to wait `wait_s` and call again (a long setup)."""
    return {"done": ctx.pipeline.steps.prepare(_run(event), _window(ctx)), "wait_s": ctx.settings.command_poll_s}


def _run_agent(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    budget = Budget.from_remaining(
        ctx.remaining_ms() / 1000, ctx.settings.budget_margin_s, max_steps=ctx.settings.agent_chunk_steps
    )
    return {"done": ctx.pipeline.agent.run(_run(event), budget)}


def _collect(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    return {"has_patch": ctx.pipeline.collect(_run(event))}


def _verify(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    """Like `_prepare` while setup and tests run; once done, the run's verdict."""
    if not ctx.pipeline.steps.verify(_run(event), _window(ctx)):
        return {"done": False, "wait_s": ctx.settings.command_poll_s}
    run = ctx.pipeline.deps.runs.get(_run(event))
    passed = None if run.tests is None else run.tests.passed
    return {"done": True, "passed": passed, "status": run.status.value, "cost_usd": run.cost_usd}


def _release(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    return {"killed": ctx.pipeline.steps.release(_run(event))}


def _record_failure(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    caught = event.error or CaughtError()
    status = ctx.pipeline.record_failure(_run(event), caught.Error, caught.message())
    return {"status": status.value, "cost_usd": ctx.pipeline.deps.runs.get(_run(event)).cost_usd}


def _plan_checks(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    return ctx.flow.plan_checks(event.solve_id)


def _pick(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    choice = ctx.flow.pick(event.solve_id)
    return {"champion_run_id": str(choice.run.id) if choice.run else None}


def _finish(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    done = ctx.flow.finish(event.solve_id)
    return {"status": done.status.value, "publish": ctx.flow.wants_publish(done)}


def _publish(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    """Ids and links only (payloads stay small); errors are recorded on the solve, never raised."""
    done = ctx.flow.publish(event.solve_id)
    return {
        "comment_url": done.comment.url if done and done.comment else None,
        "pull_request_url": done.pull_request.url if done and done.pull_request else None,
        "errors": len(done.errors) if done else 1,
    }


def _fail(event: TaskEvent, ctx: TaskContext) -> dict[str, Any]:
    caught = event.error or CaughtError()
    return {"status": ctx.flow.fail(event.solve_id, caught.Error, caught.message()).status.value}


_HANDLERS: dict[str, Callable[[TaskEvent, TaskContext], dict[str, Any]]] = {
    "begin": _begin,
    "launch": _launch,
    "prepare": _prepare,
    "run_agent": _run_agent,
    "collect": _collect,
    "verify": _verify,
    "release": _release,
    "record_failure": _record_failure,
    "plan_checks": _plan_checks,
    "pick_champion": _pick,
    "finish": _finish,
    "publish": _publish,
    "fail": _fail,
}
