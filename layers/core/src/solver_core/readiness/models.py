"""Model checks for `solver doctor`: litellm knows the model, its provider's key is in the
environment, its price is known. `model_checks` always asks litellm (the fast preflight is
agent/keys.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from solver_core.agent.keys import DOCTOR_FIX, litellm_missing, preflight_models, provider_table
from solver_core.readiness.checks import Check, ok, problem
from solver_core.rules import REPLAY_PREFIX

__all__ = ["DOCTOR_FIX", "model_checks", "preflight_models"]


def model_checks(model: str, *, registry_price: Callable[[str], bool] = lambda _m: False) -> list[Check]:
    """What doctor says about one model: known, key present, price known (a missing price is a warning)."""
    if model.startswith(REPLAY_PREFIX):
        path = Path(model.removeprefix(REPLAY_PREFIX))
        if not path.is_file():
            return [problem(model, f"no replay file at {path}", "give the path of a replay YAML file")]
        return [ok(model, "replay (scripted actions, no LLM)")]
    import litellm

    try:
        provider, missing = litellm_missing(model)
    except Exception:
        fix = "name it with its provider, e.g. anthropic/claude-sonnet-4-5 (docs.litellm.ai/docs/providers)"
        return [problem(model, "litellm does not know this model", fix)]
    found = [ok(model, f"known to litellm (provider {provider})")]
    if missing:
        ambient = provider in provider_table()["ambient"]
        found.append(problem(f"{model} key", f"{' and '.join(missing)} not set",
                             f"export {missing[0]}=…" + (" (or use another credential source)" if ambient else ""),
                             fatal=not ambient))  # fmt: skip
    else:
        found.append(ok(f"{model} key", "present"))
    bare = model.split("/", 1)[-1]
    if model in litellm.model_cost or bare in litellm.model_cost or registry_price(model):
        found.append(ok(f"{model} price", "known"))
    else:
        found.append(problem(f"{model} price", "no price known: cost limits cannot apply",
                             "add input/output prices to the model registry", fatal=False))  # fmt: skip
    return found
