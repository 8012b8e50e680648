"""The provider → key variables table that the preflight reads instead of importing litellm
(agent/provider_keys.json, written by tools/provider_keys.py) says what litellm says."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import pytest

from solver_core.agent.keys import key_problem, provider_table

pytestmark = pytest.mark.integration  # imports litellm: seconds


def generator() -> ModuleType:
    path = Path(__file__).parents[2] / "tools" / "provider_keys.py"
    spec = importlib.util.spec_from_file_location("provider_keys", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_was_made_from_the_installed_litellm() -> None:
    import litellm

    table = provider_table()
    assert table["litellm"] == version("litellm"), "run `python tools/provider_keys.py` after upgrading litellm"
    assert sorted(table["providers"]) == sorted(str(getattr(p, "value", p)) for p in litellm.provider_list)


def test_each_providers_variables_are_what_litellm_asks_for() -> None:
    tool = generator()
    table = provider_table()
    assert len(table["keys"]) > 20
    for provider, alternatives in table["keys"].items():
        assert tool.alternatives(provider) == alternatives, provider


@pytest.mark.parametrize(
    ("model", "env", "expected"),
    [
        ("anthropic/claude-sonnet-4-5", {}, ("anthropic", ["ANTHROPIC_API_KEY"])),
        ("anthropic/claude-sonnet-4-5", {"ANTHROPIC_API_KEY": "k"}, None),
        ("gemini/gemini-2.5-pro", {"GOOGLE_API_KEY": "k"}, None),  # either of two variables
        ("azure/gpt-4o", {"AZURE_API_KEY": "k"}, ("azure", ["AZURE_API_BASE", "AZURE_API_VERSION"])),
        ("bedrock/anthropic.claude-3", {}, None),  # an AWS role may hold the credentials
        ("replay:/tmp/fix.yaml", {}, None),
        ("openai/gpt-5", {"OPENAI_API_KEY": ""}, ("openai", ["OPENAI_API_KEY"])),  # empty is not set
    ],
)
def test_the_fast_check_reads_the_table_and_the_environment(
    model: str, env: dict[str, str], expected: tuple[str, list[str]] | None
) -> None:
    assert key_problem(model, env, thorough=False) == expected
