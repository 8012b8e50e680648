"""`solver db upgrade` applies the migrations to whichever database the settings name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from solver_core.db.engine import make_engine
from solver_core.db.migrate import current_revision, head_revision

pytestmark = pytest.mark.integration


def solver(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from solver_core.cli import main; main()", *args]
    return subprocess.run(command, env=os.environ | env, capture_output=True, text=True, timeout=120, check=False)


def test_db_upgrade_migrates_the_configured_database(empty_database_url: str, tmp_path: Path) -> None:
    result = solver("db", "upgrade", env={"SOLVER_HOME": str(tmp_path), "SOLVER_DATABASE_URL": empty_database_url})
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stderr
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) == head_revision()
        assert "solves" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    again = solver("db", "current", env={"SOLVER_HOME": str(tmp_path), "SOLVER_DATABASE_URL": empty_database_url})
    assert f"current: {head_revision()}" in again.stdout


def test_db_upgrade_on_embedded_defaults_creates_the_sqlite_file(tmp_path: Path) -> None:
    result = solver("db", "upgrade", env={"SOLVER_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / "solver.db").is_file()
