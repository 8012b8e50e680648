"""Secrets Manager at cold start: the Lambda functions get ARNs, never secret values, in their
environment; this resolves them once per execution environment.

- Each function declares the secrets it needs (`FUNCTION_SECRETS`, keyed by the function's logical
  id in template.yaml) and resolves only those: an ARN it does not declare is never read, so a
  function's role needs no access to it. A required secret that is configured neither as a value
  nor as an ARN fails the cold start with the name of the setting to set.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import SecretStr

from solver_core.errors import ConfigurationError
from solver_core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,127}$")


SecretName = Literal[
    "database_url", "e2b_api_key", "llm_keys", "github_token", "webhook_secret", "github_app_private_key"
]


# The Settings field that holds each secret's ARN.
ARN_FIELDS: dict[SecretName, str] = {
    "database_url": "database_url_secret_arn",
    "e2b_api_key": "e2b_api_key_secret_arn",
    "llm_keys": "llm_keys_secret_arn",
    "github_token": "github_token_secret_arn",
    "webhook_secret": "webhook_secret_arn",
    "github_app_private_key": "github_app_private_key_secret_arn",
}


def arn_setting(name: SecretName) -> str:
    """The environment variable that carries a secret's ARN."""
    return f"SOLVER_{ARN_FIELDS[name].upper()}"


@dataclass(frozen=True)
class SecretNeeds:
    """The secrets one Lambda function reads: `required` must be configured, `optional` are read when
    their ARN is set (template.yaml sets it only with the optional parameter)."""

    function: str
    required: frozenset[SecretName]
    optional: frozenset[SecretName] = frozenset()

    @property
    def names(self) -> frozenset[SecretName]:
        return self.required | self.optional

    def check(self, settings: Settings) -> None:
        """Raise, naming the setting, when a required secret is configured neither as value nor ARN."""
        missing = sorted(name for name in self.required if not _configured(settings, name))
        if missing:
            names = ", ".join(arn_setting(name) for name in missing)
            raise ConfigurationError(f"{self.function} needs {names}: the setting is missing")


def _needs(function: str, required: set[SecretName], optional: set[SecretName] | None = None) -> SecretNeeds:
    return SecretNeeds(function, frozenset(required), frozenset(optional or ()))


# Webhooks are signed with the webhook secret wherever a solve's status changes (the run steps'
# FinishSolve, a cancel, the sweeper and the reconciler finishing solves); the GitHub token clones
# private repositories and publishes, as the GitHub App does (the run steps' PublishResults, and the
# sweeper and reconciler publishing the solves they finish); the e2b key reaches sandboxes (launch,
# kill, the health check). template.yaml grants each function exactly these (tests/contract/test_iam.py).
PUBLISHING: set[SecretName] = {"github_token", "webhook_secret", "github_app_private_key"}
FUNCTION_SECRETS: dict[str, SecretNeeds] = {
    needs.function: needs
    for needs in (
        _needs("StartSolveFunction", {"database_url"}),
        _needs("StatusFunction", {"database_url", "e2b_api_key"}),
        _needs("CancelFunction", {"database_url", "e2b_api_key"}, {"webhook_secret"}),
        _needs("BatchesFunction", {"database_url", "e2b_api_key"}, {"webhook_secret"}),
        _needs("RunSolverFunction", {"database_url", "e2b_api_key", "llm_keys"}, PUBLISHING),
        _needs("SweeperFunction", {"database_url", "e2b_api_key"}, PUBLISHING),
        _needs("ReconcilerFunction", {"database_url", "e2b_api_key"}, PUBLISHING),
        _needs("MigrateFunction", {"database_url"}),
    )
}


def _configured(settings: Settings, name: SecretName) -> bool:
    if getattr(settings, ARN_FIELDS[name]):
        return True
    return name != "llm_keys" and getattr(settings, name) is not None


def resolve_secrets(settings: Settings, needs: SecretNeeds, client: SecretsManagerClient | None = None) -> Settings:
    """Settings with the ARNs of the secrets `needs` names replaced by their values (others untouched)."""
    needs.check(settings)
    arns = {name: arn for name, arn in settings.secret_arns.items() if name in needs.names}
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
