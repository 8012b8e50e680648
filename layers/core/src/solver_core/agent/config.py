"""Agent configurations: a bundled mini-swe-agent YAML plus registry overrides plus the solve's limits.

The model section always comes from the YAML too: output truncation lives in its observation
template, and the format-error template matches the agent's instructions.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from minisweagent import package_dir
from minisweagent.utils.serialize import recursive_merge

from solver_core.errors import ConfigurationError
from solver_core.models import Limits
from solver_core.sandbox.base import SandboxEnvironmentConfig

CONFIG_DIR = package_dir / "config"


@dataclass(frozen=True)
class AgentSetup:
    agent: dict[str, Any]
    model: dict[str, Any]
    environment: SandboxEnvironmentConfig


def bundled_config(base: str) -> dict[str, Any]:
    """One of mini-swe-agent's bundled YAML configs, by its path under the package's config dir: a
    copy of its parsed form, which a process parses once (it ships with the package; parsing took
    about 7 ms of CPU per run, BENCHMARKS.md §6)."""
    return copy.deepcopy(_parsed_config(base))


@functools.lru_cache(maxsize=16)
def _parsed_config(base: str) -> dict[str, Any]:
    path = (CONFIG_DIR / base).resolve()
    if not path.is_relative_to(CONFIG_DIR.resolve()) or path.suffix not in {".yaml", ".yml"} or not path.is_file():
        raise ConfigurationError(f"no bundled mini-swe-agent config named {base!r}")
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ConfigurationError(f"mini-swe-agent config {base!r} is not a mapping")
    return data


def agent_setup(
    base: str, overrides: dict[str, Any], limits: Limits, *, command_timeout_s: int | None = None
) -> AgentSetup:
    merged: dict[str, Any] = recursive_merge(bundled_config(base), overrides)
    agent = dict(merged.get("agent") or {})
    agent.pop("output_path", None)  # trajectories go to the artifact store, not to a local file
    agent |= {
        "step_limit": limits.step_limit,
        "cost_limit": limits.cost_limit_usd,
        "wall_time_limit_seconds": limits.time_limit_s,
    }
    section = merged.get("environment") or {}
    environment = SandboxEnvironmentConfig(
        env={str(k): str(v) for k, v in (section.get("env") or {}).items()},
        timeout=command_timeout_s or int(section.get("timeout") or 120),
    )
    return AgentSetup(agent=agent, model=dict(merged.get("model") or {}), environment=environment)
