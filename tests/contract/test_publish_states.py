"""The publishing part of the state machine: FinishSolve says whether to publish, ShouldPublish skips
PublishResults otherwise, and PublishResults can never fail the execution."""

from __future__ import annotations

from typing import Any

import pytest

from solver_core.workflow.retry import LAMBDA_TRANSIENT
from tests.contract.test_state_machine_structure import as_rule, definition

pytestmark = pytest.mark.contract


def states() -> dict[str, Any]:
    found: dict[str, Any] = definition()["States"]
    return found


def test_finish_solve_hands_its_answer_to_the_choice() -> None:
    finish = states()["FinishSolve"]
    assert (finish["ResultPath"], finish["Next"]) == ("$.finish", "ShouldPublish")
    assert finish["Catch"][0]["Next"] == "FailSolve"


def test_should_publish_goes_to_publish_results_only_when_finish_said_so() -> None:
    choice = states()["ShouldPublish"]
    assert choice["Type"] == "Choice"
    assert choice["Default"] == "SolveDone"
    (rule,) = choice["Choices"]
    assert rule["Next"] == "PublishResults"
    assert {"Variable": "$.finish.publish", "BooleanEquals": True} in rule["And"]
    assert {"Variable": "$.finish.publish", "IsPresent": True} in rule["And"]  # an old handler's answer skips


def test_publish_results_retries_lambda_hiccups_and_catches_everything_into_success() -> None:
    task = states()["PublishResults"]
    assert task["Parameters"] == {"step": "publish", "solve_id.$": "$.solve_id"}
    assert [as_rule(r) for r in task["Retry"]] == [LAMBDA_TRANSIENT]
    (catch,) = task["Catch"]
    assert (catch["ErrorEquals"], catch["Next"]) == (["States.ALL"], "SolveDone")
    assert task["Next"] == "SolveDone"
    assert states()["SolveDone"]["Type"] == "Succeed"
    assert catch["ResultPath"] != "$"
    assert task["ResultPath"] != "$"
