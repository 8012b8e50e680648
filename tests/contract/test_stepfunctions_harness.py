"""The Step Functions harness runs toy ASL documents under moto with in-process Lambda handlers.

These tests pin down what moto 5.2.5's interpreter actually does (docs/notes/moto-stepfunctions.md), so that the
contract tests for Solver's real state machine can rely on it: the loop, Map fan-out (concurrent), Retry and Catch on
handler exception class names, Task timeouts, StopExecution and the placeholder check.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.stepfunctions import LambdaContext, StepFunctionsHarness, UnsubstitutedPlaceholder

pytestmark = pytest.mark.contract

Event = dict[str, Any]


class SandboxCapacityExceeded(Exception):
    """Stands in for Solver's error of the same name."""


class Concurrency:
    """Counts handlers running at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.current -= 1


def task(resource: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, **fields}


def event_types(harness: StepFunctionsHarness, execution_arn: str) -> list[str]:
    return [event["type"] for event in harness.history(execution_arn)]


@pytest.fixture(autouse=True)
def _quiet_moto_interpreter(caplog: pytest.LogCaptureFixture) -> None:
    # moto logs every failure event it handles at ERROR, including the ones these tests provoke on purpose.
    caplog.set_level("CRITICAL", logger="moto.stepfunctions")


# -- Task → Choice loop ----------------------------------------------------------------------------------------------


def test_task_choice_loop_runs_until_the_handler_says_done() -> None:
    contexts: list[LambdaContext] = []

    def check(event: Event, context: LambdaContext) -> Event:
        contexts.append(context)
        rounds = event.get("check", {}).get("round", 0) + 1
        return {"done": rounds >= 3, "round": rounds}

    definition = {
        "StartAt": "Check",
        "States": {
            "Check": task("${Check}", ResultPath="$.check", Next="Done?"),
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.check.done", "BooleanEquals": True, "Next": "Finished"}],
                "Default": "Pause",
            },
            # A Wait driven by the input: production passes real seconds, tests pass 0 (accepted by moto).
            "Pause": {"Type": "Wait", "SecondsPath": "$.poll_seconds", "Next": "Check"},
            "Finished": {"Type": "Succeed", "OutputPath": "$.check"},
        },
    }
    with StepFunctionsHarness({"check": check}) as sfn:
        machine = sfn.create_state_machine(definition, {"Check": sfn.function_arn("check")})
        execution = sfn.start(machine, "loop-1", {"solve_id": "s-1", "poll_seconds": 0})
        result = sfn.wait(execution, timeout_s=10)

        assert result["status"] == "SUCCEEDED"
        assert result["output"] == {"done": True, "round": 3}
        assert result["error"] is None
        assert [name for name, _ in sfn.invocations] == ["check"] * 3
        # Each call sees the original input plus the previous round's result under $.check.
        assert sfn.invocations[0][1] == {"solve_id": "s-1", "poll_seconds": 0}
        assert sfn.invocations[2][1]["check"] == {"done": False, "round": 2}

        history = sfn.history(execution)
        types = [event["type"] for event in history]
        assert types.count("LambdaFunctionSucceeded") == 3
        assert types.count("ChoiceStateEntered") == 3
        assert types.count("WaitStateEntered") == 2
        assert types[0] == "ExecutionStarted"
        assert types[-1] == "ExecutionSucceeded"
        assert [event["id"] for event in history] == list(range(1, len(history) + 1))
        assert all("timestamp" in event and "previousEventId" in event for event in history)

    assert [c.function_name for c in contexts] == ["check"] * 3
    assert len({c.aws_request_id for c in contexts}) == 3
    assert 890_000 < contexts[0].get_remaining_time_in_millis() <= 900_000


# -- Map -------------------------------------------------------------------------------------------------------------


def map_definition(max_concurrency: int) -> dict[str, Any]:
    return {
        "StartAt": "Fan out",
        "States": {
            "Fan out": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": max_concurrency,
                "ItemSelector": {
                    "item.$": "$$.Map.Item.Value",
                    "index.$": "$$.Map.Item.Index",
                    "solve_id.$": "$.solve_id",
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "A",
                    "States": {"A": task("${A}", Next="B"), "B": task("${B}", End=True)},
                },
                "ResultPath": "$.results",
                "End": True,
            }
        },
    }


@pytest.mark.parametrize(
    ("max_concurrency", "sleep_s", "peak"),
    [
        pytest.param(3, 0.5, 3, id="max-concurrency-3"),
        pytest.param(1, 0.2, 1, id="max-concurrency-1"),
    ],
)
def test_map_runs_iterations_in_parallel_threads_up_to_max_concurrency(
    max_concurrency: int, sleep_s: float, peak: int
) -> None:
    running = Concurrency()

    def step(letter: str) -> Any:
        def handler(event: Event, context: LambdaContext) -> Event:
            with running:
                time.sleep(sleep_s)
            return {**event, letter: True}

        return handler

    with StepFunctionsHarness({"a": step("a"), "b": step("b")}) as sfn:
        machine = sfn.create_state_machine(
            map_definition(max_concurrency), {"A": sfn.function_arn("a"), "B": sfn.function_arn("b")}
        )
        started = time.monotonic()
        execution = sfn.start(machine, "map-1", {"solve_id": "s-1", "items": ["x", "y", "z"]})
        result = sfn.wait(execution, timeout_s=20)
        wall = time.monotonic() - started

    print(f"Map of 3 items x (A, B), {sleep_s} s each, MaxConcurrency {max_concurrency}: {wall:.2f} s wall")
    assert result["status"] == "SUCCEEDED"
    assert result["output"]["results"] == [
        {"item": item, "index": index, "solve_id": "s-1", "a": True, "b": True}
        for index, item in enumerate(["x", "y", "z"])
    ]
    assert running.peak == peak
    # 2 steps per item; the 3 items run together (MaxConcurrency 3) or one after another (MaxConcurrency 1).
    items_in_sequence = 3 // peak
    assert items_in_sequence * 2 * sleep_s <= wall < items_in_sequence * 2 * sleep_s + 0.8


def test_map_item_failure_caught_inside_the_iterator_leaves_the_others_alone() -> None:
    def work(event: Event, context: LambdaContext) -> Event:
        if event["item"] == "bad":
            raise ValueError(f"cannot work on {event['item']}")
        return {"item": event["item"], "ok": True}

    definition = {
        "StartAt": "Fan out",
        "States": {
            "Fan out": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 3,
                "ItemSelector": {"item.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Work",
                    "States": {
                        "Work": task(
                            "${Work}",
                            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Item failed"}],
                            End=True,
                        ),
                        "Item failed": {
                            "Type": "Pass",
                            "Parameters": {"item.$": "$.item", "ok": False, "error.$": "$.error.Error"},
                            "End": True,
                        },
                    },
                },
                "End": True,
            }
        },
    }
    with StepFunctionsHarness({"work": work}) as sfn:
        machine = sfn.create_state_machine(definition, {"Work": sfn.function_arn("work")})
        execution = sfn.start(machine, "map-catch-1", {"items": ["a", "bad", "c"]})
        result = sfn.wait(execution, timeout_s=10)

        assert result["status"] == "SUCCEEDED"
        assert result["output"] == [
            {"item": "a", "ok": True},
            {"item": "bad", "ok": False, "error": "ValueError"},
            {"item": "c", "ok": True},
        ]
        types = event_types(sfn, execution)
        assert types.count("MapIterationSucceeded") == 3
        assert "MapIterationFailed" not in types


def test_uncaught_map_iteration_failure_fails_the_map_with_the_handler_error_name() -> None:
    def work(event: Event, context: LambdaContext) -> Event:
        raise SandboxCapacityExceeded("no sandbox for item")

    definition = {
        "StartAt": "Fan out",
        "States": {
            "Fan out": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Work",
                    "States": {"Work": task("${Work}", End=True)},
                },
                "Catch": [{"ErrorEquals": ["SandboxCapacityExceeded"], "ResultPath": "$.error", "Next": "Caught"}],
                "ResultPath": "$.results",
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    with StepFunctionsHarness({"work": work}) as sfn:
        machine = sfn.create_state_machine(definition, {"Work": sfn.function_arn("work")})
        execution = sfn.start(machine, "map-fail-1", {"items": [1, 2, 3]})
        result = sfn.wait(execution, timeout_s=10)
        types = event_types(sfn, execution)

    assert result["status"] == "SUCCEEDED"
    assert result["output"]["error"]["Error"] == "SandboxCapacityExceeded"
    assert json.loads(result["output"]["error"]["Cause"])["errorMessage"] == "no sandbox for item"
    assert "results" not in result["output"]
    assert "MapIterationFailed" in types
    assert "MapStateFailed" in types
    assert len(sfn.invocations) == 1  # MaxConcurrency 1: the first failure ends the Map, no further items start


# -- Retry -----------------------------------------------------------------------------------------------------------

RETRY_DEFINITION = """{
  "StartAt": "Provision",
  "States": {
    "Provision": {
      "Type": "Task",
      "Resource": "${Provision}",
      "Retry": [
        {"ErrorEquals": ["SandboxCapacityExceeded"], "IntervalSeconds": ${RetryIntervalSeconds},
         "BackoffRate": ${RetryBackoffRate}, "MaxAttempts": 3}
      ],
      "End": true
    }
  }
}"""


def flaky(failures: int, error: type[Exception] = SandboxCapacityExceeded) -> Any:
    calls = {"n": 0}

    def provision(event: Event, context: LambdaContext) -> Event:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise error(f"no capacity (attempt {calls['n']})")
        return {"sandbox": "sb-1", "attempt": calls["n"]}

    return provision


def test_retry_matches_the_handler_exception_class_name_and_sleeps_for_real() -> None:
    with StepFunctionsHarness({"provision": flaky(failures=2)}) as sfn:
        machine = sfn.create_state_machine(
            RETRY_DEFINITION,
            {"Provision": sfn.function_arn("provision"), "RetryIntervalSeconds": "1", "RetryBackoffRate": "1"},
        )
        started = time.monotonic()
        execution = sfn.start(machine, "retry-1", {"solve_id": "s-1"})
        result = sfn.wait(execution, timeout_s=20)
        wall = time.monotonic() - started
        failures = [e["lambdaFunctionFailedEventDetails"] for e in sfn.history(execution) if "Failed" in e["type"]]

        assert result["status"] == "SUCCEEDED"
        assert result["output"] == {"sandbox": "sb-1", "attempt": 3}
        assert [name for name, _ in sfn.invocations] == ["provision"] * 3
        assert all(event == {"solve_id": "s-1"} for _, event in sfn.invocations)  # every attempt gets the same input
        assert sfn.retry_sleeps == [1.0, 1.0]
        assert 2.0 <= wall < 3.5
    assert [f["error"] for f in failures] == ["SandboxCapacityExceeded"] * 2
    cause = json.loads(failures[0]["cause"])
    assert cause["errorType"] == "SandboxCapacityExceeded"
    assert cause["errorMessage"] == "no capacity (attempt 1)"


def test_retry_interval_zero_is_rejected_when_the_state_machine_is_created() -> None:
    with (
        StepFunctionsHarness({"provision": flaky(failures=0)}) as sfn,
        pytest.raises(ClientError, match=r"IntervalSeconds value MUST be a positive integer between 1 and"),
    ):
        sfn.create_state_machine(
            RETRY_DEFINITION,
            {"Provision": sfn.function_arn("provision"), "RetryIntervalSeconds": "0", "RetryBackoffRate": "1"},
        )


def test_retry_time_scale_zero_keeps_production_intervals_without_waiting() -> None:
    with StepFunctionsHarness({"provision": flaky(failures=2)}, retry_time_scale=0) as sfn:
        machine = sfn.create_state_machine(
            RETRY_DEFINITION,
            {"Provision": sfn.function_arn("provision"), "RetryIntervalSeconds": "30", "RetryBackoffRate": "2"},
        )
        started = time.monotonic()
        result = sfn.wait(sfn.start(machine, "retry-2", {}), timeout_s=10)

        assert result["status"] == "SUCCEEDED"
        assert time.monotonic() - started < 1.5
        assert sfn.retry_sleeps == [30.0, 60.0]  # IntervalSeconds x BackoffRate^n


def test_retry_does_not_match_other_exception_names() -> None:
    with StepFunctionsHarness({"provision": flaky(failures=1, error=RuntimeError)}) as sfn:
        machine = sfn.create_state_machine(
            RETRY_DEFINITION,
            {"Provision": sfn.function_arn("provision"), "RetryIntervalSeconds": "1", "RetryBackoffRate": "1"},
        )
        result = sfn.wait(sfn.start(machine, "retry-3", {}), timeout_s=10)

        assert result["status"] == "FAILED"
        assert result["error"] == "RuntimeError"
        assert json.loads(result["cause"])["errorMessage"] == "no capacity (attempt 1)"
        assert len(sfn.invocations) == 1
        assert sfn.retry_sleeps == []


# -- Catch -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("integration", ["direct-arn", "lambda-invoke"])
def test_catch_all_hands_error_and_cause_to_the_recovery_task(integration: str) -> None:
    def validate(event: Event, context: LambdaContext) -> Event:
        raise ValueError("bad input: " + event["solve_id"])

    def recover(event: Event, context: LambdaContext) -> Event:
        return {"recovered": True}

    if integration == "direct-arn":
        validate_state = task("${Validate}")
    else:  # the optimised integration returns {"StatusCode", "Payload", ...}; ResultSelector keeps the payload
        validate_state = task(
            "arn:aws:states:::lambda:invoke",
            Parameters={"FunctionName": "${Validate}", "Payload.$": "$"},
            ResultSelector={"result.$": "$.Payload"},
        )
    definition = {
        "StartAt": "Validate",
        "States": {
            "Validate": {
                **validate_state,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
                "End": True,
            },
            "Recover": task("${Recover}", ResultPath="$.recovery", End=True),
        },
    }
    with StepFunctionsHarness({"validate": validate, "recover": recover}) as sfn:
        machine = sfn.create_state_machine(
            definition, {"Validate": sfn.function_arn("validate"), "Recover": sfn.function_arn("recover")}
        )
        result = sfn.wait(sfn.start(machine, "catch-1", {"solve_id": "s-1"}), timeout_s=10)
        recovery_event = sfn.invocations[1]

    assert result["status"] == "SUCCEEDED"
    assert recovery_event[0] == "recover"
    received = recovery_event[1]
    assert received["solve_id"] == "s-1"
    assert set(received["error"]) == {"Error", "Cause"}
    assert received["error"]["Error"] == "ValueError"
    # Cause is the Lambda error payload as a (compact) JSON string, as on AWS.
    cause = json.loads(received["error"]["Cause"])
    assert set(cause) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert cause["errorMessage"] == "bad input: s-1"
    assert cause["errorType"] == "ValueError"
    assert "in validate" in cause["stackTrace"][-1]
    assert result["output"]["recovery"] == {"recovered": True}


def test_task_timeout_is_states_timeout_and_the_handler_runs_on() -> None:
    finished = threading.Event()

    def slow(event: Event, context: LambdaContext) -> Event:
        time.sleep(1.5)
        finished.set()
        return {}

    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": task(
                "${Slow}",
                TimeoutSeconds=1,
                Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Timed out"}],
                End=True,
            ),
            "Timed out": {"Type": "Pass", "End": True},
        },
    }
    with StepFunctionsHarness({"slow": slow}) as sfn:
        machine = sfn.create_state_machine(definition, {"Slow": sfn.function_arn("slow")})
        execution = sfn.start(machine, "timeout-1", {})
        result = sfn.wait(execution, timeout_s=10)

        assert result["status"] == "SUCCEEDED"
        assert result["output"]["error"] == {"Error": "States.Timeout", "Cause": ""}
        assert "LambdaFunctionTimedOut" in event_types(sfn, execution)
        assert not finished.is_set()  # the handler is still running; leaving the harness waits for it
    assert finished.is_set()


# -- StopExecution ---------------------------------------------------------------------------------------------------


def test_stop_while_a_handler_sleeps_aborts_after_the_handler_returns() -> None:
    started, finished = threading.Event(), threading.Event()

    def solve(event: Event, context: LambdaContext) -> Event:
        started.set()
        time.sleep(1.0)
        finished.set()
        return {"solved": True}

    def publish(event: Event, context: LambdaContext) -> Event:
        return {}

    definition = {
        "StartAt": "Solve",
        "States": {"Solve": task("${Solve}", Next="Publish"), "Publish": task("${Publish}", End=True)},
    }
    with StepFunctionsHarness({"solve": solve, "publish": publish}) as sfn:
        machine = sfn.create_state_machine(
            definition, {"Solve": sfn.function_arn("solve"), "Publish": sfn.function_arn("publish")}
        )
        execution = sfn.start(machine, "stop-1", {})
        assert started.wait(5)
        sfn.stop(execution, error="Cancelled", cause="user asked")

        # moto keeps reporting RUNNING until the state in flight returns (AWS reports ABORTED at once).
        assert sfn.describe(execution)["status"] == "RUNNING"
        result = sfn.wait(execution, timeout_s=10)

        assert result["status"] == "ABORTED"
        assert finished.is_set()  # the handler ran to completion
        assert [name for name, _ in sfn.invocations] == ["solve"]  # nothing after it ran
        history = sfn.history(execution)
        assert [e["type"] for e in history][-2:] == ["LambdaFunctionSucceeded", "ExecutionAborted"]
        # moto drops StopExecution's error and cause.
        assert history[-1]["executionAbortedEventDetails"] == {"error": "", "cause": ""}
        assert result["error"] is None
        assert result["cause"] is None


@pytest.mark.parametrize(("fix", "status"), [(True, "ABORTED"), (False, "FAILED")], ids=["fixed", "moto-as-is"])
def test_stop_during_a_map(fix: bool, status: str) -> None:
    definition = {
        "StartAt": "Fan out",
        "States": {
            "Fan out": {
                "Type": "Map",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Wait",
                    "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}},
                },
                "End": True,
            }
        },
    }
    with StepFunctionsHarness({}, fix_stop_in_map=fix) as sfn:
        machine = sfn.create_state_machine(definition)
        execution = sfn.start(machine, "stop-map-1", [1, 2, 3])
        deadline = time.monotonic() + 5
        while event_types(sfn, execution).count("WaitStateEntered") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        sfn.stop(execution)
        result = sfn.wait(execution, timeout_s=5)  # Wait states are interrupted at once
        # Iteration threads may write MapIterationAborted after the execution's final event: wait for both.
        while event_types(sfn, execution).count("MapIterationAborted") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        types = event_types(sfn, execution)

    assert result["status"] == status
    assert types.count("MapIterationAborted") == 2
    if fix:
        assert "ExecutionAborted" in types
        assert "ExecutionFailed" not in types
    else:  # moto 5.2.5 bug: see tests/support/stepfunctions.py
        assert result["error"] == "States.Runtime"
        assert "AttributeError" in result["cause"]


# -- Definition substitution -----------------------------------------------------------------------------------------


def test_unsubstituted_placeholders_fail_loudly() -> None:
    definition = {
        "StartAt": "A",
        "States": {"A": task("${A}", Next="B"), "B": task("${B}", TimeoutSeconds="${Timeout}", End=True)},
    }
    with StepFunctionsHarness({"a": lambda event, context: event}) as sfn:
        with pytest.raises(UnsubstitutedPlaceholder, match=r"\$\{B\}, \$\{Timeout\}"):
            sfn.create_state_machine(definition, {"A": sfn.function_arn("a")})
        with pytest.raises(UnsubstitutedPlaceholder, match=r"\$\{A\}"):
            sfn.create_state_machine(json.dumps(definition), {"B": "x", "Timeout": "1"})
        # Substituted text that is no longer JSON is reported as such.
        with pytest.raises(ValueError, match="not valid JSON"):
            sfn.create_state_machine('{"StartAt": ${Start}}', {"Start": "A"})
