"""The state machine's shape: reachable names, Retry and Catch on every Task, placeholders that the
template substitutes, and Retry rules that agree with the local orchestrator's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from solver_core.workflow.retry import (
    CAPACITY,
    LAMBDA_TRANSIENT,
    PICK_RULES,
    UNAVAILABLE,
    VERIFY_RULES,
    RetryRule,
)

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "solve.asl.json"
TEMPLATE = ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !GetAtt) as plain values."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


CfnLoader.add_multi_constructor("!", _tag)


def definition() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASL.read_text())
    return loaded


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    return loaded


def state_blocks(block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the block it lives in) for every state, nested Map processors included."""
    for name, state in block["States"].items():
        yield name, state, block
        if state["Type"] == "Map":
            yield from state_blocks(state["ItemProcessor"])


def test_the_definition_is_plain_json_with_string_placeholders_only() -> None:
    text = ASL.read_text()
    json.loads(text)  # tools that read the file before substitution need valid JSON
    for match in re.finditer(r"\$\{[^}]+\}", text):
        assert text[match.start() - 1] == '"', f"unquoted placeholder {match.group()}"


def test_every_next_and_default_names_a_state_in_its_block_and_every_state_is_reachable() -> None:
    for name, state, block in state_blocks(definition()):
        targets = [state.get("Next"), state.get("Default")]
        targets += [choice["Next"] for choice in state.get("Choices", [])]
        targets += [catch["Next"] for catch in state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in block["States"], f"{name} → {target} does not exist"
        assert state.get("End") or state["Type"] in {"Choice", "Succeed", "Fail"} or state.get("Next"), name
    for block in [definition()] + [s["ItemProcessor"] for _, s, _ in state_blocks(definition()) if s["Type"] == "Map"]:
        reached, pending = set(), [block["StartAt"]]
        while pending:
            current = pending.pop()
            if current in reached:
                continue
            reached.add(current)
            state = block["States"][current]
            pending += [t for t in [state.get("Next"), state.get("Default")] if t]
            pending += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
        assert reached == set(block["States"]), f"unreachable: {set(block['States']) - reached}"


def test_every_task_and_map_has_retry_and_a_catch_all() -> None:
    for name, state, _ in state_blocks(definition()):
        if state["Type"] in {"Task", "Map"}:
            assert state.get("Retry"), f"{name} has no Retry"
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), f"{name} has no catch-all"
            if state["Type"] == "Task":
                assert state["Parameters"]["step"], name
                assert state["Resource"] == "${RunSolverFunctionArn}", name


def test_a_failing_run_is_caught_inside_the_map_and_never_fails_the_others() -> None:
    processor = definition()["States"]["RunAttempts"]["ItemProcessor"]["States"]
    for name in ("LaunchSandbox", "PrepareRepository", "RunAgent", "CollectArtifacts", "VerifyPatch"):
        assert processor[name]["Catch"][0]["Next"] == "RecordRunFailure"
    assert definition()["States"]["RunAttempts"]["MaxConcurrencyPath"] == "$.begin.max_parallel"


def as_rule(retry: dict[str, Any]) -> RetryRule:
    return RetryRule(tuple(retry["ErrorEquals"]), retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"])


def test_retry_rules_agree_with_the_local_orchestrator() -> None:
    states = dict((name, state) for name, state, _ in state_blocks(definition()))
    assert [as_rule(r) for r in states["LaunchSandbox"]["Retry"]] == [LAMBDA_TRANSIENT, CAPACITY, UNAVAILABLE]
    assert [as_rule(r) for r in states["VerifyPatch"]["Retry"]] == [LAMBDA_TRANSIENT, *VERIFY_RULES]
    for name in ("PrepareRepository", "RunAgent", "CollectArtifacts", "ReleaseSandbox"):
        assert [as_rule(r) for r in states[name]["Retry"]] == [LAMBDA_TRANSIENT, UNAVAILABLE], name
    assert [as_rule(r) for r in states["PickChampion"]["Retry"]] == [LAMBDA_TRANSIENT, *PICK_RULES]


def test_placeholders_match_the_templates_substitutions() -> None:
    used = set(re.findall(r"\$\{([^}]+)\}", ASL.read_text()))
    machine = template()["Resources"]["SolveStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachine/solve.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == used


def test_state_names_read_well_in_the_console() -> None:
    for name, _, _ in state_blocks(definition()):
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name
