"""template.yaml as CloudFormation would deploy it, offline: translated by the SAM translator (the library `sam`
itself runs), with the intrinsic functions of the result resolved to concrete values, and the IAM policies of each
function's execution role and of the state machine's role, evaluated by moto's IAM policy evaluator.

The SAM translator needs what `sam package` provides: code locations in S3 (any) and the state machine definition
inline. Resolving intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join, conditions) to concrete values for the
resources a test creates in moto is the one thing done here by hand: no maintained library resolves a translated
template outside CloudFormation. Matching a call against a policy is moto's (`moto.iam.access_control.IAMPolicy`).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.aws_managed_policies import aws_managed_policies_data
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
ASL = ROOT / "statemachine" / "solve.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
NO_VALUE = object()


def sam_template(text: str | None = None) -> dict[str, Any]:
    """template.yaml (or `text`) parsed with the long form of every intrinsic (`!Ref` → `Ref`, `!If` → `Fn::If`)."""
    parsed: dict[str, Any] = yaml_parse(text if text is not None else TEMPLATE.read_text())
    return parsed


def packaged(template: Mapping[str, Any]) -> dict[str, Any]:
    """What `sam package` hands CloudFormation: code in S3, the state machine's definition inline."""
    result = copy.deepcopy(dict(template))
    for name, resource in result["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = f"s3://solver-packages/{name}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"s3://solver-packages/{name}.zip"
        elif resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            uri = properties.pop("DefinitionUri")
            properties["Definition"] = json.loads((ROOT / uri).read_text())
    return result


def translate(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """The CloudFormation template the SAM transform produces for these parameter values."""
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    translator = Translator(None, Parser(), boto_session=session)
    values = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION, **parameters}
    translated: dict[str, Any] = translator.translate(packaged(template), parameter_values=dict(values))
    return translated


def samconfig_parameter_sets() -> dict[str, dict[str, str]]:
    """Each `samconfig.toml` environment's `parameter_overrides`, as a dict."""
    config = tomllib.loads(SAMCONFIG.read_text())
    sets: dict[str, dict[str, str]] = {}
    for env, sections in config.items():
        if not isinstance(sections, dict):  # `version = 0.1`
            continue
        overrides = sections.get("deploy", {}).get("parameters", {}).get("parameter_overrides")
        if overrides is None:
            continue
        items = overrides if isinstance(overrides, list) else overrides.split()
        sets[env] = dict(item.split("=", 1) for item in items)
    return sets


# ---------------------------------------------------------------------------------------------------- resolution


@dataclass
class Stack:
    """A translated template with concrete values: parameters (with defaults), and a physical name and ARN for
    every resource (the test creates those it exercises in moto under the same names)."""

    translated: dict[str, Any]
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, spec in self.translated.get("Parameters", {}).items():
            if name not in self.parameters and "Default" in spec:
                default = spec["Default"]
                self.parameters[name] = ",".join(default) if isinstance(default, list) else str(default)
        self.parameters |= {
            "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
            "AWS::StackName": "solver-test", "AWS::URLSuffix": "amazonaws.com",
        }  # fmt: skip
        self.conditions = {
            name: bool(self.resolve(expr)) for name, expr in self.translated.get("Conditions", {}).items()
        }

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return {
            name: resource
            for name, resource in self.translated["Resources"].items()
            if "Condition" not in resource or self.conditions[resource["Condition"]]
        }

    def name_of(self, logical_id: str) -> str:
        return self.physical.get(logical_id, f"solver-test-{logical_id}")

    def ref(self, logical_id: str) -> str:
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        kind = self.translated["Resources"][logical_id]["Type"]
        name = self.name_of(logical_id)
        if kind == "AWS::StepFunctions::StateMachine":
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
        return name

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.translated["Resources"][logical_id]["Type"]
        name = self.name_of(logical_id)
        arns = {
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if attribute in ("Name", "QueueName"):
            return name
        return f"{name}.{attribute}"

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic
        """`value` with every intrinsic function replaced by its value; AWS::NoValue entries disappear."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.conditions[condition] else when_false)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                resolved = self.resolve(items)
                return separator.join(resolved if isinstance(resolved, list) else resolved.split(","))
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(arg)[0]
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Condition":
                return self.conditions[arg]
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.translated["Resources"]:
                logical, attribute = name.split(".", 1)
                return self.get_att(logical, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    # -------------------------------------------------------------------------------------------- roles

    def functions(self) -> dict[str, dict[str, Any]]:
        """Each Lambda function's resolved properties, by logical id."""
        return {
            name: self.resolve(resource["Properties"])
            for name, resource in self.resources.items()
            if resource["Type"] == "AWS::Lambda::Function"
        }

    def environment(self, function: str) -> dict[str, str]:
        variables: dict[str, Any] = self.functions()[function].get("Environment", {}).get("Variables", {})
        return {key: str(value) for key, value in variables.items()}

    def role_of(self, logical_id: str) -> Role:
        """The execution role of a function, or the state machine's role, with its policy documents."""
        resource = self.translated["Resources"][logical_id]
        key = "Role" if resource["Type"] == "AWS::Lambda::Function" else "RoleArn"
        role_ref = resource["Properties"][key]
        role_id = (
            role_ref["Fn::GetAtt"][0]
            if isinstance(role_ref["Fn::GetAtt"], list)
            else role_ref["Fn::GetAtt"].split(".")[0]
        )
        role = self.resolve(self.translated["Resources"][role_id]["Properties"])
        documents: list[tuple[str, dict[str, Any]]] = [
            (policy["PolicyName"], policy["PolicyDocument"]) for policy in role.get("Policies", [])
        ]
        for arn in role.get("ManagedPolicyArns", []):
            managed = arn.rsplit("/", 1)[-1]
            data = json.loads(aws_managed_policies_data)
            documents.append((managed, data[managed]["Document"]))
        return Role(logical_id, documents)


@dataclass
class Call:
    """One AWS API call as IAM sees it."""

    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource}"


@dataclass
class Role:
    owner: str
    documents: list[tuple[str, dict[str, Any]]]

    def allows(self, action: str, resource: str) -> bool:
        """IAM's rule, evaluated by moto: an explicit Deny wins, else some Allow must match."""
        results = [
            IAMPolicy(json.dumps(document)).is_action_permitted(action, resource) for _, document in self.documents
        ]
        return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results

    def without(self, policy_name: str) -> Role:
        return Role(self.owner, [(name, doc) for name, doc in self.documents if name != policy_name])

    def grants(self) -> list[tuple[str, str, list[str]]]:
        """(policy, action pattern, resources) of every Allow statement."""
        found = []
        for name, document in self.documents:
            statements = document["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                if statement.get("Effect") != "Allow":
                    continue
                actions = statement.get("Action", [])
                resources = statement.get("Resource", "*")
                for action in actions if isinstance(actions, list) else [actions]:
                    found.append((name, action, resources if isinstance(resources, list) else [resources]))
        return found


def denied(calls: Iterable[Call], roles: Mapping[str, Role]) -> list[str]:
    """Every call its function's role does not allow, as 'Function: action on resource'."""
    return sorted({str(call) for call in calls if not roles[call.function].allows(call.action, call.resource)})


def unused(calls: Iterable[Call], roles: Mapping[str, Role]) -> list[str]:
    """Every granted action pattern that no recorded call of that role exercised (a report, not a failure)."""
    by_owner: dict[str, list[Call]] = {}
    for call in calls:
        by_owner.setdefault(call.function, []).append(call)
    report = []
    for owner, role in sorted(roles.items()):
        for policy, action, resources in role.grants():
            single = Role(
                owner, [(policy, {"Statement": [{"Effect": "Allow", "Action": action, "Resource": resources}]})]
            )
            if not any(single.allows(c.action, c.resource) for c in by_owner.get(owner, [])):
                report.append(f"{owner}: {action} on {', '.join(resources)} ({policy})")
    return report


# ------------------------------------------------------------------------------------------------- the state machine

# Optimised integrations (`arn:aws:states:::<service>:<api>`) whose IAM action is not `<service>:<Api>`.
_INTEGRATION_ACTIONS = {"lambda:invoke": "lambda:InvokeFunction", "states:startExecution.sync": "states:StartExecution"}


def asl_calls(
    definition: Mapping[str, Any], owner: str = "SolveStateMachine", own_arn: str | None = None
) -> list[Call]:
    """What a state machine's role must be allowed, from every Task of the definition (Map and Parallel states
    included): a Lambda ARN is lambda:InvokeFunction on it; `arn:aws:states:::lambda:invoke` on its FunctionName;
    `arn:aws:states:::aws-sdk:<service>:<api>` is `<service>:<Api>` on `*` (the SDK integrations name no resource);
    `states:startExecution.sync(:2)` starts, follows and stops the child execution through Step Functions' managed
    EventBridge rule; a Distributed Map starts its iterations as child executions of the state machine itself
    (`own_arn`)."""
    calls: list[Call] = []
    for state in _states(definition):
        config = state.get("ItemProcessor", {}).get("ProcessorConfig", {})
        if state.get("Type") == "Map" and config.get("Mode") == "DISTRIBUTED":
            if own_arn is None:
                raise ValueError("a Distributed Map needs the state machine's own ARN")
            child = own_arn.replace(":stateMachine:", ":execution:", 1) + "/Instances:example"
            calls += [Call(owner, "states:StartExecution", own_arn), Call(owner, "states:DescribeExecution", child),
                      Call(owner, "states:StopExecution", child)]  # fmt: skip
        if state.get("Type") != "Task":
            continue
        resource = str(state["Resource"])
        parameters = state.get("Parameters", {})
        if resource.startswith("arn:aws:lambda:"):
            calls.append(Call(owner, "lambda:InvokeFunction", resource))
        elif resource.startswith("arn:aws:states:::aws-sdk:"):
            service, api = resource.split(":")[-2:]
            calls.append(Call(owner, f"{service}:{api[:1].upper()}{api[1:]}", "*"))
        elif resource in (
            "arn:aws:states:::states:startExecution.sync",
            "arn:aws:states:::states:startExecution.sync:2",
        ):
            machine = str(parameters["StateMachineArn"])
            execution = machine.replace(":stateMachine:", ":execution:", 1) + ":example"
            rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"
            calls += [Call(owner, "states:StartExecution", machine), Call(owner, "states:DescribeExecution", execution),
                      Call(owner, "states:StopExecution", execution)]  # fmt: skip
            calls += [Call(owner, f"events:{action}", rule) for action in ("PutTargets", "PutRule", "DescribeRule")]
        elif resource.startswith("arn:aws:states:::"):
            integration = resource.removeprefix("arn:aws:states:::").removesuffix(".waitForTaskToken")
            if integration not in _INTEGRATION_ACTIONS or "FunctionName" not in parameters:
                raise ValueError(f"no IAM rule for the Task resource {resource} (state {state.get('Comment', '')!r})")
            calls.append(Call(owner, _INTEGRATION_ACTIONS[integration], str(parameters["FunctionName"])))
        else:
            raise ValueError(f"no IAM rule for the Task resource {resource}")
    return calls


def _states(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for state in definition.get("States", {}).values():
        yield state
        for nested in ("Iterator", "ItemProcessor"):
            if nested in state:
                yield from _states(state[nested])
        for branch in state.get("Branches", []):
            yield from _states(branch)
