"""Which API key a model needs, and a preflight that says so before any sandbox starts.

`key_problem` answers from `provider_keys.json` (generated from litellm by tools/provider_keys.py),
so a preflight needs no import of litellm, which takes seconds; names the table cannot place
(no provider prefix) are asked of litellm itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from solver_core.errors import ModelNotConfigured
from solver_core.rules import REPLAY_PREFIX

DOCTOR_FIX = "run `solver doctor` for more"
# Where a deployment's run function gets its keys: the hint for a key missing there.
DEPLOYED_FIX = "add it to the JSON of the deployment's LlmKeysSecretArn secret (read when a function starts)"


@cache
def provider_table() -> dict[str, Any]:
    raw = (resources.files("solver_core.agent") / "provider_keys.json").read_text()
    table: dict[str, Any] = json.loads(raw)
    return table


def _missing(alternatives: list[list[str]], env: Mapping[str, str]) -> list[str] | None:
    """None when one alternative is fully set, else what the first alternative still needs."""
    for needed in alternatives:
        if all(env.get(key) for key in needed):
            return None
    return [key for key in alternatives[0] if not env.get(key)] if alternatives else None


def litellm_missing(model: str) -> tuple[str, list[str] | None]:
    """(provider, missing variables or None) as litellm sees it (it reads os.environ); raises for a
    model it cannot place."""
    import litellm

    litellm.suppress_debug_info = True  # it prints advice to stdout, which --json output must not carry
    _, provider, _, _ = litellm.get_llm_provider(model)
    found = litellm.validate_environment(model=model)
    return provider, None if found["keys_in_environment"] else list(found["missing_keys"])


def key_problem(
    model: str, env: Mapping[str, str] | None = None, *, thorough: bool = True
) -> tuple[str, list[str]] | None:
    """(provider, variables to set) when the model's key is missing; None when set or not checkable
    (replays; providers whose credentials may come from elsewhere, such as an AWS role). Names
    without a known provider prefix are asked of litellm, unless not `thorough` (the fast path)."""
    env = os.environ if env is None else env
    if model.startswith(REPLAY_PREFIX):
        return None
    table = provider_table()
    prefix = model.split("/", 1)[0] if "/" in model else None
    if prefix is not None and prefix in table["providers"]:
        if prefix in table["ambient"]:
            return None
        missing = _missing(table["keys"].get(prefix, []), env)
        return (prefix, missing) if missing else None
    if not thorough:
        return None
    try:
        provider, missing = litellm_missing(model)
    except Exception:  # litellm cannot place it: model_checks says so; the run will fail the same way
        return None
    return (provider, missing) if missing and provider not in table["ambient"] else None


def preflight_models(models: Sequence[str], *, thorough: bool = True, hint: str = DOCTOR_FIX) -> None:
    """Raise ModelNotConfigured, naming the model and the variable to set, when a key is missing
    (`hint`: what to do then, which differs in a deployment)."""
    missing = [(model, found) for model in dict.fromkeys(models) if (found := key_problem(model, thorough=thorough))]
    if not missing:
        return
    model, (_provider, variables) = missing[0]
    more = f" (and {len(missing) - 1} more model(s))" if len(missing) > 1 else ""
    raise ModelNotConfigured(f"model {model} has no API key{more}: set {' and '.join(variables)}", hint=hint)
