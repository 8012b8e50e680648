"""Building a run's model: keys never in model kwargs, prices from the registry, replays."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver_core.agent.config import agent_setup, bundled_config
from solver_core.agent.models import build_model, header_values, redacted_kwargs
from solver_core.agent.redact import Redactor
from solver_core.agent.replay import ReplayModel
from solver_core.errors import ConfigurationError
from solver_core.models import Limits, ModelSpec

pytestmark = pytest.mark.unit

SECTION = agent_setup("mini.yaml", {}, Limits()).model


@pytest.mark.parametrize("key", ["api_key", "API_KEY", "aws_secret_access_key", "client_secret"])
def test_credentials_in_model_kwargs_are_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="credentials"):
        build_model(ModelSpec(name="openai/gpt-5", model_kwargs={key: "sk-x"}), SECTION)


def test_registry_prices_turn_on_cost_tracking_and_unknown_models_do_not_fail_calls() -> None:
    priced = build_model(
        ModelSpec(name="acme/priced-model", input_cost_per_token=1e-6, output_cost_per_token=2e-6), SECTION
    )
    assert priced.config.cost_tracking == "default"
    unknown = build_model(ModelSpec(name="acme/unknown-model"), SECTION)
    assert unknown.config.cost_tracking == "ignore_errors"
    known = build_model(ModelSpec(name="anthropic/claude-sonnet-4-5", model_kwargs={"temperature": 0}), SECTION)
    assert known.config.cost_tracking == "default"
    assert known.config.model_kwargs["temperature"] == 0
    assert "observation_template" in SECTION  # truncation comes from the YAML, always


def test_replay_models_are_built_from_their_path(tmp_path: Path) -> None:
    script = tmp_path / "r.yaml"
    script.write_text("actions: [ls]\n")
    model = build_model(ModelSpec(name=f"replay:{script}"), SECTION)
    assert isinstance(model, ReplayModel)
    assert model.config.observation_template == SECTION["observation_template"]


def test_agent_setup_applies_the_solves_limits_and_ignores_the_configs_cwd() -> None:
    setup = agent_setup(
        "benchmarks/swebench.yaml", {"agent": {"step_limit": 999}}, Limits(step_limit=7, time_limit_s=60)
    )
    assert (setup.agent["step_limit"], setup.agent["wall_time_limit_seconds"]) == (7, 60)
    assert setup.environment.cwd == ""  # swebench.yaml says /testbed; the sandbox decides
    assert setup.environment.timeout == 60


def test_a_runs_overrides_never_reach_the_next_runs_config() -> None:
    """The bundled YAML is parsed once per process; each caller gets its own copy."""
    first = agent_setup("mini.yaml", {"model": {"observation_template": "mine"}}, Limits(step_limit=3))
    assert first.model["observation_template"] == "mine"
    bundled_config("mini.yaml")["model"]["observation_template"] = "changed in place"
    again = agent_setup("mini.yaml", {}, Limits(step_limit=3))
    assert again.model["observation_template"] not in {"mine", "changed in place"}
    assert "{{" in again.model["observation_template"]


@pytest.mark.parametrize("base", ["../../etc/passwd", "nope.yaml", "mini.py"])
def test_only_bundled_configs_can_be_named(base: str) -> None:
    with pytest.raises(ConfigurationError):
        bundled_config(base)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer abc"},
        {"X-Api-Key": "k"},
        {"Cookie": "s=1"},
        {"X-Trace": "sk-ant-api03-abcdefghij0123456789xyz"},
    ],
)
def test_credentials_in_extra_headers_are_refused_like_api_key(headers: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="credentials"):
        build_model(ModelSpec(name="openai/gpt-5", model_kwargs={"extra_headers": headers}), SECTION)


def test_header_values_are_redacted_from_what_is_stored() -> None:
    kwargs = {"temperature": 0, "extra_headers": {"X-Tenant": "acme-tenant-7781"}}
    build_model(ModelSpec(name="openai/gpt-5", model_kwargs=kwargs), SECTION)  # an ordinary header is accepted
    assert redacted_kwargs(kwargs) == {"temperature": 0, "extra_headers": {"X-Tenant": "[REDACTED]"}}
    redactor = Redactor(["sk-known-secret"]).with_secrets(header_values(kwargs))
    assert redactor.redact("sent acme-tenant-7781 and sk-known-secret") == "sent [REDACTED] and [REDACTED]"
