"""mini-swe-agent compiles its Jinja templates on every use: `Template(source, ...)` for each
observation of each step, about 2.5 ms of CPU a step for a template that never changes
(BENCHMARKS.md §1). `cache_upstream_templates` makes the modules that do so build their templates
through a cache instead: the same `jinja2.Template`, compiled once per source. A compiled template
is immutable and renders safely from several threads, so what the agent sees does not change.

The modules patched are named below; mini-swe-agent is pinned to its minor version, and
tests/unit/test_upstream_agent_loop.py fails loudly if one of them stops using `Template`.
"""

from __future__ import annotations

import functools
import importlib
import threading

from jinja2 import Template, Undefined

# The mini-swe-agent modules that call `Template(source, undefined=...)` per step or per message.
UPSTREAM_MODULES = (
    "minisweagent.agents.default",
    "minisweagent.models.utils.actions_toolcall",
    "minisweagent.models.utils.actions_text",
    "minisweagent.models.utils.actions_toolcall_response",
)
CACHED_SOURCES = 64  # an agent config has a handful of templates; a process runs a few configs


@functools.lru_cache(maxsize=CACHED_SOURCES)
def cached_template(source: str, undefined: type[Undefined] = Undefined) -> Template:
    """`jinja2.Template(source, undefined=...)`, compiled once per (source, undefined)."""
    compiled: Template = Template(source, undefined=undefined)
    return compiled


_PATCHING = threading.Lock()


def cache_upstream_templates() -> None:
    """Point each upstream module's `Template` at `cached_template`, once per process. Runs start
    their agents from several threads at once, so the check and the patch happen under one lock: a
    second thread must find the modules patched, not mistake the patch for an upstream change."""
    with _PATCHING:
        for name in UPSTREAM_MODULES:
            module = importlib.import_module(name)
            found = getattr(module, "Template", None)
            if found is cached_template:
                continue
            if found is not Template:
                raise RuntimeError(f"{name} no longer builds its templates with jinja2.Template: re-read it")
            module.Template = cached_template  # type: ignore[attr-defined]
