"""Secrets Manager at cold start: the Lambda functions get ARNs, never secret values, in their
environment; this resolves them once per execution environment.

- The database URL may be a plain URL or an RDS-style JSON secret (username, password, host, port,
  dbname), which is turned into a PostgreSQL URL.
- LLM provider keys are a JSON object of environment variable names to values (for example
  {"ANTHROPIC_API_KEY": "..."}); they are exported to this process's environment, where litellm reads
  them. They never reach a sandbox: sandboxes get a scrubbed environment of their own.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import SecretStr

from solver_core.errors import ConfigurationError
from solver_core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,127}$")


def resolve_secrets(settings: Settings, client: SecretsManagerClient | None = None) -> Settings:
    """Settings with every configured secret ARN replaced by its value."""
    arns = settings.secret_arns
    if not arns:
        return settings
    if client is None:
        import boto3

        client = boto3.client("secretsmanager", region_name=settings.aws_region)
    updates: dict[str, Any] = {}
    for field, arn in arns.items():
        value = _fetch(client, arn)
        if field == "llm_keys":
            export_llm_keys(value)
        elif field == "database_url":
            updates[field] = SecretStr(database_url(value))
        else:
            updates[field] = SecretStr(value.strip())
    return settings.model_copy(update=updates)


def _fetch(client: SecretsManagerClient, arn: str) -> str:
    try:
        return client.get_secret_value(SecretId=arn)["SecretString"]
    except Exception as exc:  # boto's errors carry the ARN, never the value
        raise ConfigurationError(f"could not read secret {arn}: {exc}") from exc


def database_url(value: str) -> str:
    text = value.strip()
    if not text.startswith("{"):
        return text
    data = json.loads(text)
    try:
        user, password, host = (
            quote(str(data["username"]), safe=""),
            quote(str(data["password"]), safe=""),
            data["host"],
        )
    except KeyError as exc:
        raise ConfigurationError(f"the database secret lacks {exc}") from exc
    return f"postgresql://{user}:{password}@{host}:{data.get('port', 5432)}/{data.get('dbname', 'solver')}"


def export_llm_keys(value: str) -> None:
    try:
        keys = json.loads(value)
    except ValueError as exc:
        raise ConfigurationError("the LLM keys secret must be a JSON object of variable names to keys") from exc
    if not isinstance(keys, dict):
        raise ConfigurationError("the LLM keys secret must be a JSON object of variable names to keys")
    for name, key in keys.items():
        if not _ENV_NAME.match(str(name)):
            raise ConfigurationError(f"{name!r} is not an environment variable name")
        os.environ[str(name)] = str(key)  # litellm reads provider keys from the environment
