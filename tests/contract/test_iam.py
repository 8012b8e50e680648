"""The IAM contract: every AWS call each Lambda function makes is allowed by its own execution role, as the SAM
translator turns template.yaml into CloudFormation, for the parameter sets of samconfig.toml (`dev` sets no optional
parameter) and with every optional parameter set (`everything`); the state machine's role may invoke every Task the
ASL names. The calls are recorded from the real handlers running against moto (tests/support/stack_scenario.py);
the policies are evaluated by moto's IAM policy evaluator (tests/support/deployment.py).

`test_unused_permissions_report` prints the permissions granted but never exercised (`make deploy-check`).
"""

from __future__ import annotations

import copy
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from solver_core.db.engine import make_engine
from tests.support.deployment import (
    asl_calls,
    denied,
    sam_template,
    samconfig_parameter_sets,
    translate,
    unused,
)
from tests.support.stack_scenario import DeployedStack, Recording

pytestmark = pytest.mark.contract

EVERYTHING = samconfig_parameter_sets()["prod"] | {
    "GitHubAppId": "123456",
    "GitHubAppPrivateKeySecretArn": "arn:aws:secretsmanager:us-east-1:ACCOUNT_ID:secret:solver/prod/app-key-AbCdEf",
    "VpcSubnetIds": "subnet-0a,subnet-0b",
    "VpcSecurityGroupIds": "sg-0a",
    "AlarmEmail": "oncall@example.com",
}
PARAMETER_SETS = {**samconfig_parameter_sets(), "everything": EVERYTHING}
# Permissions the platform uses on the function's behalf (its logs, traces, network interfaces, dead letters, the
# state machine's log delivery), never Solver's own code: reported apart.
PLATFORM = re.compile(r": (logs|xray|ec2):|: sqs:SendMessage ")


@pytest.fixture(scope="module", params=sorted(PARAMETER_SETS))
def recording(
    request: pytest.FixtureRequest, postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recording]:
    names = [f"iam_{uuid.uuid4().hex[:12]}"]
    admin = make_engine(postgres_admin_url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"CREATE DATABASE {name}"))
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {key: os.environ.get(key) for key in credentials}
    os.environ.update(credentials)
    try:
        yield _record(request.param, postgres_admin_url.rsplit("/", 1)[0] + "/" + names[0], tmp_path_factory)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _record(label: str, url: str, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """The scenario once, on its own database. (It used to be run a second time when the first run
    broke; the cause, a cancel that raced the step it meant to stop, is fixed, so a failure now fails.)"""
    return DeployedStack(PARAMETER_SETS[label], url, tmp_path_factory.mktemp(label)).record(label=label)


def test_every_call_is_allowed_by_its_functions_role(recording: Recording) -> None:
    assert recording.unmapped == [], "calls the recorder could not name a resource for"
    failures = denied(recording.calls, recording.roles())
    assert failures == [], "not allowed by the function's role:\n" + "\n".join(failures)


def test_every_function_and_the_state_machine_made_calls(recording: Recording) -> None:
    """The scenario reached every function (a function that made no call would pass the check vacuously)."""
    made = {call.function for call in recording.calls}
    assert made == set(recording.roles()), f"no calls recorded for {set(recording.roles()) - made}"


def test_the_state_machine_role_may_invoke_every_task_the_asl_names(recording: Recording) -> None:
    expected = asl_calls(recording.definition)
    assert expected, "the definition names no Task"
    failures = denied(expected, recording.roles())
    assert failures == [], "the state machine's role does not allow:\n" + "\n".join(failures)


def test_the_batch_state_machine_role_may_do_every_task_the_asl_names(recording: Recording) -> None:
    """Its Lambda task, the solve executions it starts with startExecution.sync:2 (moto cannot make those calls, so
    they are derived from the ASL), and the child executions of its Distributed Map."""
    own = recording.stack.ref("BatchStateMachine")
    expected = asl_calls(recording.batch_definition, owner="BatchStateMachine", own_arn=own)
    assert {c.action for c in expected} >= {"lambda:InvokeFunction", "states:StartExecution", "events:PutRule"}
    failures = denied(expected, recording.roles())
    assert failures == [], "the batch state machine's role does not allow:\n" + "\n".join(failures)


def test_removing_a_needed_permission_fails_the_check(recording: Recording) -> None:
    """Proof it bites: without the policy that lets StartSolve start executions, its calls are refused, by name."""
    roles = recording.roles()
    start = next(
        c for c in recording.calls if c.function == "StartSolveFunction" and c.action == "states:StartExecution"
    )
    role = roles["StartSolveFunction"]
    granting = [name for name, _ in role.documents if not role.without(name).allows(start.action, start.resource)]
    assert len(granting) == 1, granting
    roles["StartSolveFunction"] = role.without(granting[0])
    assert denied(recording.calls, roles) == [str(start)]


def test_every_secret_policy_is_needed_by_its_function(recording: Recording) -> None:
    """Each GetSecretValue grant is exercised: without it, its function's cold start is refused (so no function is
    granted a secret it does not read, and none reads one it is not granted)."""
    roles = recording.roles()
    for owner, role in roles.items():
        for policy, action, _ in role.grants():
            if action != "secretsmanager:GetSecretValue":
                continue
            failures = denied(recording.calls, {**roles, owner: role.without(policy)})
            assert failures, f"{owner}: {policy} is never needed"
            assert all(f.startswith(f"{owner}: secretsmanager:GetSecretValue on ") for f in failures), failures


def _without_policy(template: dict[str, Any], function: str, index: int) -> dict[str, Any]:
    edited = copy.deepcopy(template)
    del edited["Resources"][function]["Properties"]["Policies"][index]
    return edited


def test_deleting_a_secret_read_policy_of_start_solve_from_the_template_fails(recording: Recording) -> None:
    template = sam_template()
    policies = template["Resources"]["StartSolveFunction"]["Properties"]["Policies"]
    secret_policies = [i for i, p in enumerate(policies) if "AWSSecretsManagerGetSecretValuePolicy" in p]
    assert secret_policies
    for index in secret_policies:
        stack = recording.restack(
            translate(_without_policy(template, "StartSolveFunction", index), recording.parameters)
        )
        failures = denied(recording.calls, recording.roles(stack))
        assert failures
        assert all(f.startswith("StartSolveFunction: secretsmanager:GetSecretValue on ") for f in failures)


def test_unused_permissions_report(recording: Recording, capsys: pytest.CaptureFixture[str]) -> None:
    """Granted but never exercised in the scenario: a report on the terminal, not a failure."""
    report = unused(recording.calls, recording.roles())
    ours = [line for line in report if not PLATFORM.search(line)]
    platform = sorted({line.split(": ", 1)[1].split(" (")[0] for line in report if PLATFORM.search(line)})
    with capsys.disabled():
        print(f"\n[IAM report, parameter set {recording.label}]")
        print("granted to Solver's code, never exercised:", *ours, sep="\n  ")
        print(
            "for the platform (logs, traces, ENIs, dead letters), not exercised by Solver's code:",
            *platform,
            sep="\n  ",
        )


def test_samconfig_gives_complete_secret_arns() -> None:
    """A policy template grants exactly the ARN it is given and IAM compares it with the secret's complete ARN
    (name + '-' + six characters): a partial ARN in samconfig.toml would deny every read."""
    for env, parameters in samconfig_parameter_sets().items():
        for name, value in parameters.items():
            if name.endswith("SecretArn"):
                assert re.search(r":secret:.+-[A-Za-z0-9]{6}$", value), f"{env}: {name}={value}"


def test_the_cognito_variant_translates_with_the_same_roles() -> None:
    """docs/deploy.md's Cognito edit (the SAM transform takes no intrinsic function for the default authorizer)."""
    parameters = {k: v.replace("ACCOUNT_ID", "123456789012") for k, v in samconfig_parameter_sets()["dev"].items()}
    shipped = translate(sam_template(), parameters)
    cognito = sam_template()
    cognito["Resources"]["Api"]["Properties"]["Auth"] = {
        "DefaultAuthorizer": "CognitoAuthorizer",
        "Authorizers": {
            "CognitoAuthorizer": {"UserPoolArn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_x"}
        },
    }
    translated = translate(cognito, parameters)
    authorizers = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert "CognitoAuthorizer" in str(authorizers)
    roles = {k: v for k, v in shipped["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == {k: v for k, v in translated["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
