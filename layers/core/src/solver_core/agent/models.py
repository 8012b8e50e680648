"""Building the model of a run: a litellm model from the registry, or a `replay:PATH` model.

API keys never go into model kwargs (they would land in trajectories): litellm reads them from the
environment of the process running the agent loop, which is never the sandbox's. Headers sent with
every model call (`extra_headers`, `headers`) are checked the same way: a header that carries a
credential (Authorization, X-Api-Key, a cookie, or a value shaped like a known token) is refused,
and the values of the others are redacted wherever the run's configuration is stored.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from solver_core.agent.redact import PLACEHOLDER, Redactor
from solver_core.errors import ConfigurationError
from solver_core.models import ModelSpec
from solver_core.rules import REPLAY_PREFIX

if TYPE_CHECKING:
    from minisweagent import Model

SECRET_KWARGS = frozenset(
    {"api_key", "aws_secret_access_key", "aws_session_token", "azure_ad_token", "vertex_credentials", "token"}
)
HEADER_KWARGS = ("extra_headers", "headers")
# A header whose name contains one of these carries a credential (Authorization, X-Api-Key, Cookie,
# X-Auth-Token, Ocp-Apim-Subscription-Key, a session or a signature).
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "credential", "session", "signature")
_register_lock = threading.Lock()


def check_model_kwargs(kwargs: dict[str, Any]) -> None:
    leaked = sorted(k for k in kwargs if k.lower() in SECRET_KWARGS or "secret" in k.lower())
    for field in HEADER_KWARGS:
        leaked += [f"{field}.{name}" for name in _secret_headers(field, kwargs.get(field))]
    if leaked:
        raise ConfigurationError(f"model kwargs must not carry credentials ({', '.join(leaked)}); use the environment")


def _secret_headers(field: str, headers: object) -> list[str]:
    if headers is None:
        return []
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ConfigurationError(f"model kwargs' {field} must map header names to string values")
    shapes = Redactor()  # the well-known token shapes alone
    return sorted(
        name
        for name, value in headers.items()
        if any(word in name.lower() for word in _SECRET_HEADER_WORDS) or shapes.redact(value) != value
    )


def header_values(kwargs: dict[str, Any]) -> list[str]:
    """The values of the headers the model sends, which the run's redactor treats as secrets."""
    found = (kwargs.get(field) for field in HEADER_KWARGS)
    return [str(value) for headers in found if isinstance(headers, dict) for value in headers.values() if value]


def redacted_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs as stored in a trajectory: every header value replaced by the placeholder."""
    shown = dict(kwargs)
    for field in HEADER_KWARGS:
        if isinstance(headers := shown.get(field), dict):
            shown[field] = dict.fromkeys(headers, PLACEHOLDER)
    return shown


def merged_kwargs(spec: ModelSpec, model_section: dict[str, Any]) -> dict[str, Any]:
    """What the model is called with: the agent configuration's kwargs, then the registry's."""
    return dict(model_section.get("model_kwargs") or {}) | spec.model_kwargs


def build_model(spec: ModelSpec, model_section: dict[str, Any]) -> Model:
    if spec.is_replay:
        from solver_core.agent.replay import ReplayModel

        return ReplayModel(path=spec.name.removeprefix(REPLAY_PREFIX), **model_section)
    from minisweagent.models.litellm_model import LitellmModel

    kwargs = merged_kwargs(spec, model_section)
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
