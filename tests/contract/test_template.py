"""template.yaml agrees with the code: build targets, handlers, routes, permissions, outputs."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from solver_core.api.app import openapi_document
from solver_core.secrets import FUNCTION_SECRETS, arn_setting
from tests.contract.test_state_machine_structure import template

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()
FUNCTION_DIRS = {
    "StartSolveFunction": "start_solve",
    "StatusFunction": "status",
    "CancelFunction": "cancel",
    "BatchesFunction": "batches",
    "MigrateFunction": "migrate",
    "RunSolverFunction": "run_solver",
    "SweeperFunction": "run_solver",
    "ReconcilerFunction": "run_solver",
}


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template()["Resources"].items() if r["Type"] == kind}


def test_every_makefile_built_resource_has_its_build_target() -> None:
    built = {**resources("AWS::Serverless::Function"), **resources("AWS::Serverless::LayerVersion")}
    assert set(built) == {*FUNCTION_DIRS, "CoreLayer"}
    for name, resource in built.items():
        assert resource["Metadata"]["BuildMethod"] == "makefile", name
        assert re.search(rf"^[\w\- ]*build-{name}\b[\w\- ]*:", MAKEFILE, re.MULTILINE), f"no build-{name} target"


def test_every_handler_exists_in_its_function_module() -> None:
    for name, resource in resources("AWS::Serverless::Function").items():
        module, function = resource["Properties"]["Handler"].split(".")
        source = ROOT / "functions" / FUNCTION_DIRS[name] / f"{module}.py"
        assert function in top_level_names(source), f"{name}: {function} is not defined in {source}"


def top_level_names(source: Path) -> set[str]:
    """Functions defined and names assigned at a module's top level (`app, deps, handler = api_function(...)`)."""
    names: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update(e.id for e in elements if isinstance(e, ast.Name))
    return names


def test_the_api_serves_every_documented_route() -> None:
    routed = set()
    for resource in resources("AWS::Serverless::Function").values():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                path = re.sub(r"\{(\w+)\}", r"{\1}", event["Properties"]["Path"])
                routed.add((event["Properties"]["Method"].lower(), path))
    documented = {(method, path) for path, ops in openapi_document()["paths"].items() for method in ops}
    assert documented <= routed, f"documented but not routed: {documented - routed}"


def test_the_api_functions_carry_no_agent_and_run_solver_no_layer() -> None:
    functions = resources("AWS::Serverless::Function")
    for name in ("StartSolveFunction", "StatusFunction", "CancelFunction", "MigrateFunction"):
        assert functions[name]["Properties"]["Layers"] == [{"Ref": "CoreLayer"}]
    for name in ("RunSolverFunction", "SweeperFunction", "ReconcilerFunction"):
        assert "Layers" not in functions[name]["Properties"]  # the run_solver bundle carries solver_core itself


def test_secrets_are_arns_and_never_values() -> None:
    variables = dict(template()["Globals"]["Function"]["Environment"]["Variables"])
    for resource in resources("AWS::Serverless::Function").values():
        variables |= resource["Properties"].get("Environment", {}).get("Variables", {})
    for name in variables:
        assert not re.search(r"(KEY|TOKEN|PASSWORD|SECRET)$", name) or name.endswith("_SECRET_ARN"), name
    parameters = template()["Parameters"]
    for name in ("DatabaseUrlSecretArn", "E2BApiKeySecretArn", "LlmKeysSecretArn", "GitHubTokenSecretArn"):
        assert name in parameters


def test_the_bucket_is_encrypted_private_tls_only_and_expires() -> None:
    bucket = template()["Resources"]["ArtifactsBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == {"Ref": "ArtifactsExpirationDays"}
    policy = template()["Resources"]["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny"
    assert policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_migrations_run_on_deploy_and_outputs_name_the_entry_points() -> None:
    schema = template()["Resources"]["DatabaseSchema"]
    assert schema["Type"] == "AWS::CloudFormation::CustomResource"
    assert set(template()["Outputs"]) >= {"ApiUrl", "StateMachineArn", "ArtifactsBucketName"}


def test_each_function_is_handed_exactly_the_secret_arns_it_declares() -> None:
    """A function gets the ARN of a secret it declares (required: always; optional: only with its
    parameter, through Fn::If) and of no other: one it could not read would fail its cold start."""
    globals_ = template()["Globals"]["Function"]["Environment"]["Variables"]
    for name, resource in resources("AWS::Serverless::Function").items():
        needs = FUNCTION_SECRETS[name]
        local = resource["Properties"].get("Environment", {}).get("Variables", {})
        handed = {key: value for key, value in (globals_ | local).items() if key.endswith("_SECRET_ARN")}
        expected = {arn_setting(secret) for secret in needs.names}
        assert set(handed) == expected, name
        for secret in needs.names:
            conditional = isinstance(handed[arn_setting(secret)], dict) and "If" in handed[arn_setting(secret)]
            assert conditional == (secret in needs.optional), f"{name}: {arn_setting(secret)}"
