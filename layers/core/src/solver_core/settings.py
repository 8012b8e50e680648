"""The one reader of the environment.

Every knob is a `SOLVER_*` variable. With nothing set, Solver runs on embedded defaults: a SQLite
file and an artifact folder under `SOLVER_HOME` (a per-user data directory), a local sandbox and
an in-process orchestrator. Setting a PostgreSQL URL or an S3 bucket switches those parts over.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_REPO_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")
# SWE-bench's public per-instance images, the ones a batch names by default.
DEFAULT_SANDBOX_IMAGES = ("swebench/sweb.eval.*",)

CommaList = Annotated[list[str], NoDecode]


def _default_home() -> Path:
    return Path(user_data_dir("solver", appauthor=False))


class Settings(BaseSettings):
    """Configuration, read once from `SOLVER_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SOLVER_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home)
    database_url: SecretStr | None = None
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_echo: bool = False

    artifacts_bucket: str | None = None
    artifacts_prefix: str = ""
    artifacts_dir: Path | None = None
    s3_kms_key_id: str | None = None
    presign_expiry_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    aws_region: str | None = None
    s3_endpoint_url: str | None = None

    # Request policy. The API refuses local paths and replay models unless these are on; the CLI
    # turns them on because it runs on the user's own machine.
    allowed_repo_hosts: CommaList = Field(default_factory=lambda: list(DEFAULT_REPO_HOSTS))
    allowed_http_hosts: CommaList = Field(default_factory=list)
    allow_local_repos: bool = False
    allow_replay_models: bool = False
    allow_unregistered_models: bool = False
    max_runs_per_solve: int = Field(default=16, ge=1, le=64)
    max_parallel: int = Field(default=8, ge=1, le=64)

    sandbox: Literal["local", "docker", "e2b"] = "local"
    sandbox_dir: Path | None = None
    sandbox_isolation: Literal["auto", "bwrap", "none"] = "auto"
    # The local sandbox: whether agent commands reach the network (setup always does), and host
    # paths inside the hidden home directories that commands may read (toolchains).
    sandbox_network: Literal["on", "off"] = "on"
    sandbox_read_paths: CommaList = Field(default_factory=list)
    sandbox_template: str | None = None
    docker_image: str = "python:3.12"
    max_live_sandboxes: int = Field(default=20, ge=1, le=10_000)
    # The share of max_live_sandboxes one owner may hold (at least one sandbox), so that one owner
    # cannot take every slot. The CLI and `solver serve` have a single owner and default to all.
    owner_sandbox_share: float = Field(default=0.5, gt=0, le=1)
    # The images (docker) or templates (e2b) a caller may name (`sandbox_image`, a batch instance's
    # `image`), as glob patterns (`*` allows any). The deployment's own (sandbox_template,
    # docker_image) is always allowed, and any is for the trusted owner (the CLI's and serve's user).
    allowed_sandbox_images: CommaList = Field(default_factory=lambda: list(DEFAULT_SANDBOX_IMAGES))
    # More patterns for particular owners, e.g. the templates built for one team's repositories:
    # {"owner": ["pattern", ...]} (JSON in the environment).
    owner_sandbox_images: dict[str, list[str]] = Field(default_factory=dict)
    e2b_api_key: SecretStr | None = None
    e2b_api_url: str | None = None
    e2b_sandbox_url: str | None = None

    # On Lambda, secrets arrive as Secrets Manager ARNs, resolved once per cold start (secrets.py).
    database_url_secret_arn: str | None = None
    e2b_api_key_secret_arn: str | None = None
    github_token_secret_arn: str | None = None
    webhook_secret_arn: str | None = None
    llm_keys_secret_arn: str | None = None
    github_app_private_key_secret_arn: str | None = None

    # Tokens for private repositories, by host; each is only ever sent to its own host, and only for
    # repositories on the solve's owner's allowlist (`solver owners`).
    git_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    github_token: SecretStr | None = None

    command_timeout_s: int = Field(default=120, ge=1, le=3600)
    clone_timeout_s: int = Field(default=600, ge=10, le=7200)
    setup_timeout_s: int = Field(default=1200, ge=10, le=7200)
    verify_timeout_s: int = Field(default=1800, ge=10, le=7200)
    reproduce_timeout_s: int = Field(default=300, ge=1)  # each reproduction script, in a check
    # A run whose patch is larger fails with PatchTooLarge; the size is measured in the sandbox.
    max_patch_bytes: int = Field(default=5_000_000, ge=1024, le=1_000_000_000)
    # A RunAgent invocation stops this long before its time budget ends (a step must fit in it).
    budget_margin_s: int = Field(default=180, ge=0, le=3600)
    # At most this many agent steps per RunAgent invocation (None: as many as the budget allows).
    agent_chunk_steps: int | None = Field(default=None, ge=1)
    # Setup and tests run detached in the sandbox: a PrepareRepository or VerifyPatch invocation waits
    # for them at most command_wait_s, then the state machine waits command_poll_s and checks again.
    command_wait_s: int = Field(default=20, ge=0, le=900)
    command_poll_s: int = Field(default=30, ge=0, le=3600)

    # Orchestration: Step Functions when a state machine is configured, in-process otherwise.
    state_machine_arn: str | None = None
    batch_state_machine_arn: str | None = None  # runs cloud batches (POST /batches)
    max_run_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_s: int = Field(default=60, ge=0, le=86_400)
    stale_heartbeat_s: int = Field(default=1200, ge=60, le=86_400)

    # `solver serve`: its bearer token (never on the command line), and how often it sweeps.
    serve_token: SecretStr | None = None
    serve_sweep_interval_s: int = Field(default=60, ge=5, le=3600)

    # The HTTP API.
    max_request_bytes: int = Field(default=262_144, ge=1024, le=10_485_760)
    max_active_solves_per_owner: int = Field(default=10, ge=1, le=10_000)
    # New solves are refused (429) while the owner's solves created in the last 24 hours have cost this much.
    owner_daily_cost_usd: float | None = Field(default=None, gt=0)

    # Notifications: EventBridge status-change events, signed callback_url webhooks.
    event_bus_name: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_attempts: int = Field(default=4, ge=1, le=10)

    # `solver serve --remote URL --remote-auth cognito`: the Cognito ID token sent upstream.
    remote_id_token: SecretStr | None = None

    # Publishing results to GitHub (issue comment, draft pull request; solver_core/publish). Credentials:
    # a GitHub App (id + PEM private key; the installation is looked up per repository unless given),
    # else the github.com token above. Rate limits are waited out up to publish_max_wait_s per request.
    github_api_url: str = "https://api.github.com"
    # The Solver API's base URL (https://…/stage): issue comments link to its authenticated routes.
    api_url: str | None = None
    github_app_id: int | None = Field(default=None, ge=1)
    github_app_private_key: SecretStr | None = None
    github_app_installation_id: int | None = Field(default=None, ge=1)
    publish_attempts: int = Field(default=4, ge=1, le=10)
    publish_max_wait_s: int = Field(default=60, ge=0, le=900)

    # An owner allowed every repository without allowlist entries: the machine's user, which the
    # CLI and `solver serve` set (they serve nobody else).
    trusted_owner: str | None = Field(default=None, max_length=200)

    stack_name: str = "solver-local"
    log_level: str = "INFO"

    @field_validator("allowed_repo_hosts", "allowed_http_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sandbox_read_paths", "allowed_sandbox_images", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sandbox_read_paths")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        if relative := [p for p in value if not p.startswith("/")]:
            raise ValueError(f"must be absolute paths: {', '.join(relative)}")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.home / 'solver.db'}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.home / "artifacts"

    @property
    def resolved_sandbox_dir(self) -> Path:
        # Under the temp dir: a bubblewrapped command mounts a private /tmp, which hides every other
        # sandbox from it.
        return self.sandbox_dir or Path(tempfile.gettempdir()) / f"solver-sandboxes-{os.getuid()}"

    def host_token(self, url: str) -> str | None:
        """The deployment's token for this URL's host. It is any owner's to use only where that
        owner's allowlist covers the repository (services/allowlist.py): never call this for a
        caller's URL without that check."""
        host = (urlsplit(url).hostname or "").lower()
        token = self.git_tokens.get(host) or (self.github_token if host == "github.com" else None)
        return token.get_secret_value() if token else None

    def configured_secrets(self) -> list[str]:
        """The secrets among these settings, for redaction (with the secret-looking variables of the
        environment: LLM provider keys that litellm reads, say; see wiring.redactor_of)."""
        found = [
            self.e2b_api_key, self.github_token, self.database_url, self.webhook_secret,
            self.github_app_private_key, self.serve_token, *self.git_tokens.values(),
        ]  # fmt: skip
        return [s.get_secret_value() for s in found if s is not None]

    @property
    def secret_arns(self) -> dict[str, str]:
        """Settings field → ARN of the secrets to resolve at start-up."""
        arns = {
            "database_url": self.database_url_secret_arn,
            "e2b_api_key": self.e2b_api_key_secret_arn,
            "github_token": self.github_token_secret_arn,
            "webhook_secret": self.webhook_secret_arn,
            "llm_keys": self.llm_keys_secret_arn,
            "github_app_private_key": self.github_app_private_key_secret_arn,
        }
        return {field: arn for field, arn in arns.items() if arn}

    @property
    def max_live_sandboxes_per_owner(self) -> int:
        return max(1, int(self.max_live_sandboxes * self.owner_sandbox_share))

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def local_owner() -> str:
    """Solves started from this machine (the CLI, `solver serve`) belong to its user."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:user"


def local_cli_settings(**overrides: object) -> Settings:
    """Settings for the `solver` command on the user's own machine: local paths and replays allowed."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    permissive = {
        "allow_local_repos": True, "allow_replay_models": True, "allow_unregistered_models": True,
        "owner_sandbox_share": 1.0,  # one owner: the machine's user, allowed every repository
        "trusted_owner": local_owner(),
    }  # fmt: skip
    # An explicit SOLVER_ALLOW_* in the environment still wins over the CLI's permissive default.
    return settings.model_copy(update={k: v for k, v in permissive.items() if k not in settings.model_fields_set})
