"""`solver template build`: the e2b template's contents and how it is built. e2b's template build
service has no local stand-in (the fake e2b service covers sandboxes only), so `Template.build`
itself is replaced here; everything up to that call is the real SDK."""

from __future__ import annotations

from typing import Any

import pytest
from e2b import Template
from typer.testing import CliRunner

from solver_core.cli import app
from solver_core.errors import SandboxUnavailable
from solver_core.sandbox import template

pytestmark = pytest.mark.unit


def test_the_template_has_what_preparation_needs() -> None:
    dockerfile = template.dockerfile()
    assert dockerfile.startswith("FROM python:3.12")
    for tool in ("git", "ripgrep", "build-essential", "nodejs", "npm"):
        assert tool in dockerfile
    assert "WORKDIR /home/user" in dockerfile


def test_the_dry_run_prints_the_dockerfile() -> None:
    result = CliRunner().invoke(app, ["template", "build", "--dry-run"])
    assert result.exit_code == 0
    assert "ripgrep" in result.output


def test_build_sends_the_template_with_its_name_and_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_build(built: Any, **kwargs: Any) -> str:
        calls.append({"dockerfile": Template.to_dockerfile(built), **kwargs})
        return "template-id"

    monkeypatch.setattr(Template, "build", staticmethod(fake_build))
    monkeypatch.setenv("SOLVER_E2B_API_KEY", "e2b_test_key_0123456789")
    result = CliRunner().invoke(app, ["template", "build", "--name", "solver:v2", "--cpu", "4"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert (call["name"], call["cpu_count"], call["memory_mb"]) == ("solver:v2", 4, 4096)
    assert call["api_key"] == "e2b_test_key_0123456789"
    assert "nodejs" in call["dockerfile"]


def test_building_without_a_key_is_refused() -> None:
    with pytest.raises(SandboxUnavailable, match="SOLVER_E2B_API_KEY"):
        template.build("solver", api_key=None)
