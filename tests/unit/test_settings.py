"""Settings: embedded defaults with nothing configured, SOLVER_* variables otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver_core.rules import RequestPolicy
from solver_core.settings import Settings, local_cli_settings
from solver_core.wiring import build_artifact_store

pytestmark = pytest.mark.unit


def test_nothing_configured_means_sqlite_and_a_folder_under_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOLVER_HOME", str(tmp_path))
    settings = Settings()
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'solver.db'}"
    assert settings.resolved_artifacts_dir == tmp_path / "artifacts"
    assert settings.uses_sqlite
    assert type(build_artifact_store(settings)).__name__ == "LocalArtifactStore"


def test_the_default_home_is_a_per_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().home == tmp_path / "xdg" / "solver"


def test_configured_services_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLVER_DATABASE_URL", "postgresql://u:pg-pass-1234@db:5432/solver")
    monkeypatch.setenv("SOLVER_ARTIFACTS_BUCKET", "my-bucket")
    monkeypatch.setenv("SOLVER_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("SOLVER_ALLOWED_REPO_HOSTS", "github.com, git.example.org")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql://u:pg-pass-1234@db:5432/solver"
    assert "pg-pass-1234" not in repr(settings)  # the URL carries a password: never printed
    assert settings.allowed_repo_hosts == ["github.com", "git.example.org"]
    assert type(build_artifact_store(settings)).__name__ == "S3ArtifactStore"


def test_the_api_is_strict_and_the_cli_permissive_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    api = RequestPolicy.from_settings(Settings())
    assert not api.allow_local_repos
    assert not api.allow_replay_models
    cli = RequestPolicy.from_settings(local_cli_settings())
    assert cli.allow_local_repos
    assert cli.allow_replay_models


def test_an_explicit_setting_beats_the_cli_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLVER_ALLOW_REPLAY_MODELS", "false")
    assert not local_cli_settings().allow_replay_models
    assert local_cli_settings().allow_local_repos


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLVER_PRESIGN_EXPIRY_S", "5")
    with pytest.raises(ValueError, match="presign_expiry_s"):
        Settings()


def test_the_local_sandbox_reads_its_network_switch_and_read_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from solver_core.sandbox.local import LocalSandboxBackend, bwrap_path
    from solver_core.wiring import build_sandbox_backend

    if bwrap_path() is None:
        pytest.skip("bubblewrap (bwrap) is not installed")  # the integration tests fail CI without it
    monkeypatch.setenv("SOLVER_SANDBOX_NETWORK", "off")
    monkeypatch.setenv("SOLVER_SANDBOX_READ_PATHS", f"{tmp_path}/sdk, /opt/tool")
    monkeypatch.setenv("SOLVER_SANDBOX_DIR", str(tmp_path / "sandboxes"))
    backend = build_sandbox_backend(Settings())
    assert isinstance(backend, LocalSandboxBackend)
    assert backend.agent_network is False
    assert backend.read_paths == (tmp_path / "sdk", Path("/opt/tool"))
    monkeypatch.setenv("SOLVER_SANDBOX_READ_PATHS", "relative/path")
    with pytest.raises(ValueError, match="absolute"):
        Settings()
