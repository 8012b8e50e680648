"""Secrets Manager ARNs resolved at cold start (moto)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from solver_core.errors import ConfigurationError
from solver_core.secrets import FUNCTION_SECRETS, SecretNeeds, resolve_secrets
from solver_core.settings import Settings
from solver_core.wiring import redactor_of
from tests.support.aws import use_fake_credentials

pytestmark = pytest.mark.integration

EVERYTHING = SecretNeeds(
    "AnyFunction",
    required=frozenset(),
    optional=frozenset({"database_url", "e2b_api_key", "llm_keys", "github_token", "webhook_secret"}),
)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def arn(client: Any, name: str, value: str) -> str:
    created: str = client.create_secret(Name=name, SecretString=value)["ARN"]
    return created


def test_arns_become_values_and_llm_keys_reach_the_environment(secrets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        database_url_secret_arn=arn(secrets, "db", "postgresql://u:p@db/solver"),
        e2b_api_key_secret_arn=arn(secrets, "e2b", "e2b_0123456789abcdef0123\n"),
        llm_keys_secret_arn=arn(secrets, "llm", json.dumps({"ANTHROPIC_API_KEY": "sk-ant-canary-123456"})),
    )
    monkeypatch.setattr(os, "environ", os.environ.copy())  # the export below must not leak into other tests
    resolved = resolve_secrets(settings, EVERYTHING, secrets)
    assert resolved.resolved_database_url == "postgresql://u:p@db/solver"
    assert resolved.e2b_api_key is not None
    assert resolved.e2b_api_key.get_secret_value() == "e2b_0123456789abcdef0123"
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-canary-123456"
    assert "sk-ant-canary-123456" in redactor_of(resolved).secrets  # and so it is redacted everywhere
    assert "e2b_0123456789abcdef0123" not in repr(resolved)


def test_an_rds_style_database_secret_becomes_a_url(secrets: Any) -> None:
    rds = json.dumps(
        {"username": "solver", "password": "p@ss/word", "host": "db.internal", "port": 5433, "dbname": "s"}
    )
    resolved = resolve_secrets(Settings(database_url_secret_arn=arn(secrets, "rds", rds)), EVERYTHING, secrets)
    assert resolved.resolved_database_url == "postgresql://solver:p%40ss%2Fword@db.internal:5433/s"


def test_unreadable_or_malformed_secrets_are_configuration_errors(secrets: Any) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    with pytest.raises(ConfigurationError, match="could not read secret"):
        resolve_secrets(Settings(e2b_api_key_secret_arn=missing), EVERYTHING, secrets)
    with pytest.raises(ConfigurationError, match="JSON object"):
        resolve_secrets(Settings(llm_keys_secret_arn=arn(secrets, "bad", "not json")), EVERYTHING, secrets)
    with pytest.raises(ConfigurationError, match="environment variable name"):
        resolve_secrets(
            Settings(llm_keys_secret_arn=arn(secrets, "bad2", json.dumps({"lower case": "x"}))), EVERYTHING, secrets
        )


def test_no_arns_means_no_calls() -> None:
    settings = Settings()
    assert resolve_secrets(settings, EVERYTHING, client=None) is settings  # no boto3 client is even built


def test_a_function_reads_only_the_secrets_it_declares(secrets: Any) -> None:
    """The API's start function may read the database secret only: an e2b or webhook ARN in its
    environment is never fetched (its role could not read it)."""
    database = arn(secrets, "db", "postgresql://u:p@db/solver")
    settings = Settings(
        database_url_secret_arn=database,
        e2b_api_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:forbidden-AbCdEf",
        webhook_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:also-forbidden-AbCdEf",
    )
    fetched: list[str] = []
    original = secrets.get_secret_value

    def recording(**kwargs: Any) -> Any:
        fetched.append(kwargs["SecretId"])
        return original(**kwargs)

    secrets.get_secret_value = recording
    resolved = resolve_secrets(settings, FUNCTION_SECRETS["StartSolveFunction"], secrets)
    assert fetched == [database]
    assert resolved.resolved_database_url == "postgresql://u:p@db/solver"
    assert resolved.e2b_api_key is None
    assert resolved.webhook_secret is None


@pytest.mark.parametrize(
    ("function", "setting"),
    [
        ("StartSolveFunction", "SOLVER_DATABASE_URL_SECRET_ARN"),
        ("MigrateFunction", "SOLVER_DATABASE_URL_SECRET_ARN"),
        ("StatusFunction", "SOLVER_E2B_API_KEY_SECRET_ARN"),
        ("RunSolverFunction", "SOLVER_LLM_KEYS_SECRET_ARN"),
        ("SweeperFunction", "SOLVER_E2B_API_KEY_SECRET_ARN"),
    ],
)
def test_a_missing_required_secret_fails_the_cold_start_naming_the_setting(function: str, setting: str) -> None:
    present = {
        "database_url_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
        "e2b_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:e2b-AbCdEf",
        "llm_keys_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-AbCdEf",
    }
    field = setting.removeprefix("SOLVER_").lower()
    settings = Settings(**{k: v for k, v in present.items() if k != field})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=f"{function} needs {setting}"):
        resolve_secrets(settings, FUNCTION_SECRETS[function], client=None)


def test_a_value_given_directly_satisfies_a_required_secret() -> None:
    settings = Settings(database_url="postgresql://u:p@db/solver")
    assert resolve_secrets(settings, FUNCTION_SECRETS["MigrateFunction"], client=None) is settings


def test_a_lambda_handler_without_its_secret_fails_its_first_invocation_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the real handler, as a cold start in AWS would go: no database secret configured for the start
    function, so its first invocation fails (Lambda logs the error, API Gateway answers 502) with the setting's
    name, before connecting anywhere."""
    from functions.start_solve import app as start_app
    from solver_core.api import use_deps
    from tests.support.api import LambdaContextStub, rest_event, solve_body

    monkeypatch.setenv("SOLVER_E2B_API_KEY_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:e-AbCdEf")
    use_deps(None)
    try:
        with pytest.raises(ConfigurationError, match="StartSolveFunction needs SOLVER_DATABASE_URL_SECRET_ARN"):
            start_app.handler(rest_event("POST", "/solves", body=solve_body()), LambdaContextStub())
    finally:
        use_deps(None)
