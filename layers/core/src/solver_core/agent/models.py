"""Building the model of a run: a litellm model from the registry, or a `replay:PATH` model.

API keys never go into model kwargs (they would land in trajectories): litellm reads them from the
environment of the process running the agent loop, which is never the sandbox's.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from solver_core.errors import ConfigurationError
from solver_core.models import ModelSpec
from solver_core.rules import REPLAY_PREFIX

if TYPE_CHECKING:
    from minisweagent import Model

SECRET_KWARGS = frozenset(
    {"api_key", "aws_secret_access_key", "aws_session_token", "azure_ad_token", "vertex_credentials", "token"}
)
_register_lock = threading.Lock()


def check_model_kwargs(kwargs: dict[str, Any]) -> None:
    leaked = sorted(k for k in kwargs if k.lower() in SECRET_KWARGS or "secret" in k.lower())
    if leaked:
        raise ConfigurationError(f"model kwargs must not carry credentials ({', '.join(leaked)}); use the environment")


def build_model(spec: ModelSpec, model_section: dict[str, Any]) -> Model:
    if spec.is_replay:
        from solver_core.agent.replay import ReplayModel

        return ReplayModel(path=spec.name.removeprefix(REPLAY_PREFIX), **model_section)
    from minisweagent.models.litellm_model import LitellmModel

    kwargs = dict(model_section.get("model_kwargs") or {}) | spec.model_kwargs
    check_model_kwargs(kwargs)
    config = dict(model_section) | {"model_name": spec.name, "model_kwargs": kwargs}
    config["cost_tracking"] = _cost_tracking(spec)
    return LitellmModel(**config)


def _cost_tracking(spec: ModelSpec) -> str:
    """Register the registry's prices with litellm; without any price, count cost as zero rather than
    failing every call (litellm raises on unknown prices)."""
    import litellm

    if spec.input_cost_per_token is not None and spec.output_cost_per_token is not None:
        provider = spec.name.split("/", 1)[0] if "/" in spec.name else "openai"
        with _register_lock:
            litellm.register_model(
                {
                    spec.name: {
                        "input_cost_per_token": spec.input_cost_per_token,
                        "output_cost_per_token": spec.output_cost_per_token,
                        "litellm_provider": provider,
                        "mode": "chat",
                    }
                }
            )
        return "default"
    bare = spec.name.split("/", 1)[-1]
    known = spec.name in litellm.model_cost or bare in litellm.model_cost
    return "default" if known else "ignore_errors"
