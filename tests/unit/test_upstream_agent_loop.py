"""`SolverAgent` re-implements the body of mini-swe-agent's `DefaultAgent.run` one step at a time
(agent/runner.py). These tests fail loudly when the installed mini-swe-agent differs from the one
mirrored: another minor version, or any change to the methods the loop copies or calls."""

from __future__ import annotations

import hashlib
import inspect
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from minisweagent.agents.default import DefaultAgent
from packaging.requirements import Requirement

from solver_core.agent.runner import MIRRORED_UPSTREAM

pytestmark = pytest.mark.unit

PYPROJECT = Path(__file__).resolve().parents[2] / "layers" / "core" / "pyproject.toml"


def _fingerprint(qualname: str) -> str:
    _, method = qualname.split(".")
    source = textwrap.dedent(inspect.getsource(getattr(DefaultAgent, method)))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def test_the_mirrored_loop_matches_the_installed_mini_swe_agent() -> None:
    changed = [name for name, digest in MIRRORED_UPSTREAM.items() if _fingerprint(name) != digest]
    assert not changed, (
        f"mini-swe-agent {version('mini-swe-agent')} changed {', '.join(changed)}: re-read "
        "SolverAgent.begin/advance in agent/runner.py against the new source, then update MIRRORED_UPSTREAM"
    )


def test_mini_swe_agent_is_pinned_to_one_minor_version() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["agent"]
    (requirement,) = [Requirement(r) for r in extras if r.startswith("mini-swe-agent")]
    installed = version("mini-swe-agent")
    assert installed in requirement.specifier, f"installed {installed} is outside {requirement}"
    major, minor = (int(part) for part in installed.split(".")[:2])
    assert f"{major}.{minor + 1}.0" not in requirement.specifier, f"{requirement} admits the next minor version"


def test_upstream_templates_are_compiled_once_and_render_as_jinja_does() -> None:
    """agent/templates.py: every module it patches still builds templates with jinja2.Template (or
    this raises), and a cached template renders exactly what a fresh one does."""
    import importlib

    from jinja2 import StrictUndefined, Template, UndefinedError

    from solver_core.agent.templates import UPSTREAM_MODULES, cache_upstream_templates, cached_template

    cache_upstream_templates()
    assert all(importlib.import_module(name).Template is cached_template for name in UPSTREAM_MODULES)
    source = "<returncode>{{ output.returncode }}</returncode>{% if output.output %}{{ output.output }}{% endif %}"
    output = {"returncode": 2, "output": "boom <&>"}
    first = cached_template(source, undefined=StrictUndefined)
    assert cached_template(source, undefined=StrictUndefined) is first
    assert first.render(output=output) == Template(source, undefined=StrictUndefined).render(output=output)
    with pytest.raises(UndefinedError, match="returncode"):
        first.render(output={})  # still strict: a missing variable is an error, not an empty string


RACE = """
import importlib, threading, time
from solver_core.agent import templates
real = importlib.import_module
def slow(name):  # widen the window between a thread's check and its patch
    module = real(name)
    time.sleep(0.01)
    return module
templates.importlib = type("I", (), {"import_module": staticmethod(slow)})
errors, start = [], threading.Barrier(8)
def agent_starts():
    start.wait()
    try:
        templates.cache_upstream_templates()
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=agent_starts) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(errors or "ok")
"""


def test_runs_starting_their_agents_at_once_all_find_the_templates_cached() -> None:
    """Several runs start their agents from threads at the same moment (a fresh process): none may
    mistake another thread's patch for an upstream change (a run failed with RunError that way)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "ok", done.stdout + done.stderr
