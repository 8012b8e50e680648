"""The one reader of the environment.

Every knob is a `SOLVER_*` variable. With nothing set, Solver runs on embedded defaults: a SQLite
file and an artifact folder under `SOLVER_HOME` (a per-user data directory), a local sandbox and
an in-process orchestrator. Setting a PostgreSQL URL or an S3 bucket switches those parts over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_REPO_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")

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
    stack_name: str = "solver-local"
    log_level: str = "INFO"

    @field_validator("allowed_repo_hosts", "allowed_http_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
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
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def local_cli_settings(**overrides: object) -> Settings:
    """Settings for the `solver` command on the user's own machine: local paths and replays allowed."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    permissive = {"allow_local_repos": True, "allow_replay_models": True, "allow_unregistered_models": True}
    # An explicit SOLVER_ALLOW_* in the environment still wins over the CLI's permissive default.
    return settings.model_copy(update={k: v for k, v in permissive.items() if k not in settings.model_fields_set})
