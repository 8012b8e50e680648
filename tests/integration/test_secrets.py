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
from solver_core.secrets import resolve_secrets
from solver_core.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
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
    resolved = resolve_secrets(settings, secrets)
    assert resolved.resolved_database_url == "postgresql://u:p@db/solver"
    assert resolved.e2b_api_key is not None
    assert resolved.e2b_api_key.get_secret_value() == "e2b_0123456789abcdef0123"
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-canary-123456"
    assert "sk-ant-canary-123456" in resolved.secret_values()  # and so it is redacted everywhere
    assert "e2b_0123456789abcdef0123" not in repr(resolved)


def test_an_rds_style_database_secret_becomes_a_url(secrets: Any) -> None:
    rds = json.dumps(
        {"username": "solver", "password": "p@ss/word", "host": "db.internal", "port": 5433, "dbname": "s"}
    )
    resolved = resolve_secrets(Settings(database_url_secret_arn=arn(secrets, "rds", rds)), secrets)
    assert resolved.resolved_database_url == "postgresql://solver:p%40ss%2Fword@db.internal:5433/s"


def test_unreadable_or_malformed_secrets_are_configuration_errors(secrets: Any) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    with pytest.raises(ConfigurationError, match="could not read secret"):
        resolve_secrets(Settings(e2b_api_key_secret_arn=missing), secrets)
    with pytest.raises(ConfigurationError, match="JSON object"):
        resolve_secrets(Settings(llm_keys_secret_arn=arn(secrets, "bad", "not json")), secrets)
    with pytest.raises(ConfigurationError, match="environment variable name"):
        resolve_secrets(Settings(llm_keys_secret_arn=arn(secrets, "bad2", json.dumps({"lower case": "x"}))), secrets)


def test_no_arns_means_no_calls() -> None:
    settings = Settings()
    assert resolve_secrets(settings, client=None) is settings  # no boto3 client is even built
