"""Execute an ASL document under moto's Step Functions interpreter, its Lambda tasks calling Python handlers in-process.

moto 5.2.5; docs/notes/moto-stepfunctions.md records everything verified about the interpreter and what it means for
how Solver's ASL is written.

``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` switches moto to its ASL interpreter
(``moto.stepfunctions.parser``, a port of LocalStack's). An execution runs in daemon threads; Map iterations run in
parallel threads, one worker per ``MaxConcurrency`` slot. A Lambda task (direct function ARN or
``arn:aws:states:::lambda:invoke``) makes a real boto3 ``lambda.invoke`` call, which moto's botocore stubber routes to
``LambdaFunction.invoke`` and from there to ``LambdaFunction._invoke_lambda``, which normally runs Docker.

The harness patches three things in moto, each as narrowly as it could:

1. ``LambdaFunction._invoke_lambda`` (needed: no Docker). The replacement looks the handler up by function name and
   calls it in the interpreter's thread with a ``LambdaContext``. Error mapping needs nothing more: the method returns
   ``(payload, errored, logs)``; when ``errored`` is true moto's Lambda sets ``X-Amz-Function-Error`` and the
   interpreter takes ``errorType`` from the JSON payload as the state's ``Error`` and the whole payload (re-serialised
   as compact JSON) as ``Cause``. So for an exception the harness returns the payload real Lambda's Python runtime
   returns (``{"errorMessage", "errorType", "requestId", "stackTrace"}``), and Retry/Catch match on the exception
   class name (``ErrorEquals: ["SandboxCapacityExceeded"]``). moto reports ``FunctionError: "Handled"`` where real
   Lambda says ``"Unhandled"``; Step Functions ignores the value. A result that is not JSON-serialisable fails like
   real Lambda (``Runtime.MarshalError``). The function's ``Timeout`` is not enforced; a Task's ``TimeoutSeconds``
   gives ``States.Timeout`` (the handler thread then runs on and its result is dropped).
2. The ``time`` name inside ``moto.stepfunctions.parser.asl.component.common.retry.retrier_decl`` (optional in effect:
   the default ``retry_time_scale=1.0`` sleeps exactly as moto would). The retrier sleeps
   ``IntervalSeconds x BackoffRate^n`` (capped by ``MaxDelaySeconds``) with ``time.sleep``, and ``IntervalSeconds``
   must be >= 1 (moto, like AWS, rejects 0 at CreateStateMachine), so each retry costs at least a second. The shim
   records every requested interval in ``retry_sleeps`` and sleeps ``interval x retry_time_scale``; with ``0`` tests
   can keep production intervals and still run instantly. The global ``time.sleep`` is untouched. Wait states are not
   affected (drive them with ``SecondsPath``).
3. ``Environment.set_error`` (``fix_stop_in_map=True``, the default), for a moto bug: StopExecution while a Map is
   running ends the execution ``FAILED`` / ``States.Runtime`` / ``AttributeError('str' object has no attribute
   'get')`` instead of ``ABORTED``. Each aborted iteration raises a failure whose event details are the stop's error
   *string* (``IterationWorker._eval_job``), ``StateMap._eval_state`` calls ``.get`` on it, and the exception reaches
   ``Program._eval_body``, whose ``set_error`` unconditionally overwrites the stopped program state. The wrapper makes
   ``set_error`` a no-op once the program is stopped, so the execution ends ``ABORTED`` with ``ExecutionAborted`` as
   on AWS. ``fix_stop_in_map=False`` shows moto's own behaviour.

Lifecycle: use the harness as a context manager. Leaving it stops executions that are still RUNNING and waits
(``drain_timeout_s``) for them and for every in-flight handler, because a handler keeps running after StopExecution,
a Task timeout or an execution timeout, and must not outlive the mock (it could then reach real AWS with whatever
credentials the environment holds). Only one harness may be active at a time: the mock and the patches are
process-wide.
"""

from __future__ import annotations

import copy
import io
import json
import re
import threading
import time
import traceback
import uuid
import warnings
import zipfile
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

Handler = Callable[[dict[str, Any], Any], Any]

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
ROLE_NAME = "solver-stepfunctions-harness"
ASSUME_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


class UnsubstitutedPlaceholder(ValueError):
    """The ASL still contains ``${...}`` after substitution (SAM would deploy it verbatim and fail at run time)."""


class LambdaContext:
    """The parts of the AWS Lambda Python context object that our handlers use."""

    def __init__(self, function_name: str, function_arn: str, timeout_s: int, memory_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"harness/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    raise RuntimeError('runs in-process')\n")
    return buffer.getvalue()


def error_payload(exc: BaseException, request_id: str) -> str:
    """The response payload real Lambda's Python runtime returns for an exception escaping the handler."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": request_id,
            # Like the Lambda runtime, leave out the frame that called the handler.
            "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
        }
    )


def substitute(definition: str | Mapping[str, Any], substitutions: Mapping[str, str] | None = None) -> str:
    """Textual ``${Key}`` replacement like SAM/CloudFormation ``DefinitionSubstitutions``; the result must be JSON.

    Replacement is on the JSON text, so ``"IntervalSeconds": ${RetryInterval}`` (a number) works when the definition
    is given as text. A dict definition is serialised first, so there a placeholder can only sit inside a string.
    """
    text = definition if isinstance(definition, str) else json.dumps(definition)
    values = dict(substitutions or {})

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        return values[key] if key in values else match.group(0)

    result = PLACEHOLDER.sub(replace, text)
    remaining = sorted(set(PLACEHOLDER.findall(result)))
    if remaining:
        raise UnsubstitutedPlaceholder(
            f"unsubstituted placeholder(s) in state machine definition: {', '.join('${' + k + '}' for k in remaining)}"
        )
    try:
        json.loads(result)
    except json.JSONDecodeError as exc:
        raise ValueError(f"state machine definition is not valid JSON after substitution: {exc}") from exc
    return result


_original_set_error = Environment.set_error


def _set_error_unless_stopped(env: Environment, error: Any) -> None:
    """``Environment.set_error`` that leaves a stopped program stopped (see the module docstring)."""
    if isinstance(env.program_state(), ProgramStopped):
        return
    _original_set_error(env, error)


class _ScaledRetryClock:
    """Stands in for the ``time`` module inside moto's retrier: records and scales the retry sleeps."""

    def __init__(self, harness: StepFunctionsHarness) -> None:
        self._harness = harness

    def sleep(self, seconds: float) -> None:
        self._harness._record_retry_sleep(seconds)
        scaled = seconds * self._harness.retry_time_scale
        if scaled > 0:
            time.sleep(scaled)


class StepFunctionsHarness:
    """moto Step Functions executing an ASL document whose Lambda tasks call Python handlers in-process."""

    _active_lock = threading.Lock()
    _active: StepFunctionsHarness | None = None

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        region: str = "us-east-1",
        function_timeout_s: int = 900,
        drain_timeout_s: float = 10.0,
        retry_time_scale: float = 1.0,
        fix_stop_in_map: bool = True,
    ) -> None:
        self.region = region
        self.retry_time_scale = retry_time_scale
        self.function_timeout_s = function_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self._handlers: dict[str, Handler] = dict(handlers)
        self._function_arns: dict[str, str] = {}
        self._invocations: list[tuple[str, dict[str, Any]]] = []
        self._retry_sleeps: list[float] = []
        self._lock = threading.Lock()
        self._executions: list[str] = []
        self._role_arn = ""
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._patches: list[Any] = [
            mock.patch.object(LambdaFunction, "_invoke_lambda", self._make_invoke()),
            mock.patch.object(retrier_decl, "time", _ScaledRetryClock(self)),
        ]
        if fix_stop_in_map:
            self._patches.append(mock.patch.object(Environment, "set_error", _set_error_unless_stopped))
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self._open = False
        self._sfn: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def __enter__(self) -> StepFunctionsHarness:
        with StepFunctionsHarness._active_lock:
            if StepFunctionsHarness._active is not None:
                raise RuntimeError("another StepFunctionsHarness is active; moto's mock and the patch are process-wide")
            StepFunctionsHarness._active = self
        try:
            self._mock.start()
            self._open = True
            for patch in self._patches:
                patch.start()
            self._sfn = boto3.client("stepfunctions", region_name=self.region)
            iam = boto3.client("iam", region_name=self.region)
            self._role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=ASSUME_ROLE_POLICY)["Role"][
                "Arn"
            ]
            lam = boto3.client("lambda", region_name=self.region)
            code = _dummy_zip()
            for name in self._handlers:
                created = lam.create_function(
                    FunctionName=name,
                    Runtime="python3.11",
                    Role=self._role_arn,
                    Handler="index.handler",
                    Code={"ZipFile": code},
                    Timeout=self.function_timeout_s,
                )
                self._function_arns[name] = created["FunctionArn"]
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._drain()
        finally:
            self._close()

    def _drain(self) -> None:
        """Stop executions still RUNNING, then wait for them and for in-flight handlers (so none outlives the mock)."""
        if not self._open:
            return
        running = [arn for arn in self.executions if self._status_or_none(arn) == "RUNNING"]
        for arn in running:
            try:
                self._sfn.stop_execution(executionArn=arn, error="HarnessClosed", cause="harness exited")
            except Exception:  # noqa: S112 - best effort; what is still running is reported below
                continue
        deadline = time.monotonic() + self.drain_timeout_s
        for arn in running:
            while self._status_or_none(arn) == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.02)
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=max(0.0, deadline - time.monotonic()))
            inflight = self._inflight
        still_running = [arn for arn in running if self._status_or_none(arn) == "RUNNING"]
        if inflight or still_running:
            warnings.warn(
                f"StepFunctionsHarness exiting with {inflight} handler(s) still running and executions {still_running}"
                f" still RUNNING after {self.drain_timeout_s} s",
                RuntimeWarning,
                stacklevel=3,
            )

    def _close(self) -> None:
        if self._open:
            self._open = False
            for patch in reversed(self._patches):
                patch.stop()
            self._mock.stop()
        with StepFunctionsHarness._active_lock:
            if StepFunctionsHarness._active is self:
                StepFunctionsHarness._active = None

    # -- Lambda ----------------------------------------------------------------------------------------------------

    def _make_invoke(self) -> Callable[..., tuple[str, bool, str]]:
        harness = self

        def _invoke_lambda(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            return harness._invoke(function, event)

        return _invoke_lambda

    def _invoke(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        name = str(function.function_name)
        context = LambdaContext(name, str(function.function_arn), int(function.timeout), int(function.memory_size))
        if event is None or event == "{}":  # moto substitutes the string "{}" for an empty request body
            event = {}
        handler = self._handlers.get(name)
        with self._lock:
            self._invocations.append((name, copy.deepcopy(event)))
            if handler is None or not self._open:
                problem = RuntimeError(f"no in-process handler for Lambda function {name!r} (or the harness is closed)")
                return error_payload(problem, context.aws_request_id), True, ""
            self._inflight += 1
        try:
            return self._call(handler, event, context)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    @staticmethod
    def _call(handler: Handler, event: Any, context: LambdaContext) -> tuple[str, bool, str]:
        try:
            result = handler(event, context)
        except Exception as exc:
            return error_payload(exc, context.aws_request_id), True, ""
        try:
            return json.dumps(result), False, ""
        except (TypeError, ValueError) as exc:
            marshal = json.dumps(
                {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": context.aws_request_id,
                    "stackTrace": [],
                }
            )
            return marshal, True, ""

    @property
    def invocations(self) -> list[tuple[str, dict[str, Any]]]:
        """(function name, event) for every handler call so far, in call order (a snapshot)."""
        with self._lock:
            return list(self._invocations)

    @property
    def retry_sleeps(self) -> list[float]:
        """Every retry interval moto asked to sleep, in seconds, before ``retry_time_scale`` (a snapshot)."""
        with self._lock:
            return list(self._retry_sleeps)

    def _record_retry_sleep(self, seconds: float) -> None:
        with self._lock:
            self._retry_sleeps.append(float(seconds))

    @property
    def executions(self) -> list[str]:
        """ARNs of the executions started through ``start``, in order."""
        with self._lock:
            return list(self._executions)

    def function_arn(self, name: str) -> str:
        return self._function_arns[name]

    # -- Step Functions --------------------------------------------------------------------------------------------

    def create_state_machine(
        self,
        definition: str | Mapping[str, Any],
        substitutions: Mapping[str, str] | None = None,
        name: str = "solve",
    ) -> str:
        """Create a STANDARD state machine after ``${Key}`` substitution; raises if a placeholder remains."""
        text = substitute(definition, substitutions)
        created = self._sfn.create_state_machine(name=name, definition=text, roleArn=self._role_arn, type="STANDARD")
        return str(created["stateMachineArn"])

    def start(self, state_machine_arn: str, name: str, input: Any) -> str:
        """StartExecution with ``input`` (any JSON value) serialised; name executions, as production does."""
        started = self._sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(input))
        arn = str(started["executionArn"])
        with self._lock:
            self._executions.append(arn)
        return arn

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """DescribeExecution with ``output`` parsed from JSON and ``output``/``error``/``cause`` always present."""
        raw = dict(self._sfn.describe_execution(executionArn=execution_arn))
        raw.pop("ResponseMetadata", None)
        output = raw.get("output")
        raw["output"] = json.loads(output) if output is not None else None
        raw.setdefault("error", None)
        raw.setdefault("cause", None)
        return raw

    def _status_or_none(self, execution_arn: str) -> str | None:
        try:
            return str(self._sfn.describe_execution(executionArn=execution_arn)["status"])
        except Exception:  # e.g. moto cannot serialise an output holding $$.Execution.StartTime (a datetime)
            return None

    def wait(self, execution_arn: str, timeout_s: float = 60) -> dict[str, Any]:
        """Poll DescribeExecution until the status is no longer RUNNING; return the description (see ``describe``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            description = self.describe(execution_arn)
            if description["status"] != "RUNNING":
                return description
            if time.monotonic() >= deadline:
                steps = [event["type"] for event in self.history(execution_arn)]
                raise TimeoutError(f"execution still RUNNING after {timeout_s} s; history so far: {steps}")
            time.sleep(0.02)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """GetExecutionHistory events, all pages, oldest first."""
        events: list[dict[str, Any]] = []
        for page in self._sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def stop(self, execution_arn: str, error: str = "Cancelled", cause: str = "") -> None:
        """StopExecution; returns at once. The execution stays RUNNING until the state in flight returns.

        moto drops ``error`` and ``cause`` (its ExecutionAborted event carries empty strings); they are sent anyway so
        the call is the one production makes.
        """
        # moto's StopExecution fails (AttributeError in the worker) if it lands before the interpreter thread has set
        # up its environment; the first history event is written right after that.
        deadline = time.monotonic() + 5
        while not self.history(execution_arn) and time.monotonic() < deadline:
            time.sleep(0.005)
        self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
