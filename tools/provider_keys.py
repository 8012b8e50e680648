"""Write layers/core/src/solver_core/agent/provider_keys.json from litellm (`make provider-keys`).

For every provider litellm knows, which environment variables `litellm.validate_environment` asks
for, as alternatives (gemini: GEMINI_API_KEY or GOOGLE_API_KEY) of variables that are all needed
(azure: key, base and version). Preflight reads this table to check a model's key without importing
litellm, which takes seconds; tests/unit/test_provider_keys.py checks the table against litellm.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from unittest import mock

TABLE = Path(__file__).parents[1] / "layers/core/src/solver_core/agent/provider_keys.json"
# Providers whose credentials may come from somewhere validate_environment does not look (an AWS
# profile or instance role, Google's application default credentials, a local server's default
# address): a missing variable there is only a warning.
AMBIENT = ("bedrock", "sagemaker", "vertex_ai", "ollama", "ollama_chat")


def missing_keys(provider: str, env: dict[str, str]) -> list[str]:
    import litellm

    with mock.patch.dict(os.environ, env, clear=True):
        found = litellm.validate_environment(model=f"{provider}/some-model")
    return [] if found["keys_in_environment"] else list(found["missing_keys"])


def alternatives(provider: str) -> list[list[str]]:
    """[[all of these], [or all of these], …]; [] when the provider needs no variable."""
    wanted = missing_keys(provider, {})
    singles = [[key] for key in wanted if not missing_keys(provider, {key: "x"})]
    return singles or ([wanted] if wanted else [])


def build() -> dict[str, object]:
    import litellm

    providers = sorted(str(getattr(p, "value", p)) for p in litellm.provider_list)
    keys = {p: found for p in providers if (found := alternatives(p))}
    return {"litellm": version("litellm"), "providers": providers, "keys": keys, "ambient": list(AMBIENT)}


if __name__ == "__main__":
    table = build()
    if "--check" in sys.argv:
        sys.exit(0 if json.loads(TABLE.read_text())["keys"] == table["keys"] else 1)
    TABLE.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")
