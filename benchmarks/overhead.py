"""Orchestration overhead: one replayed trajectory of cheap shell actions, run three ways.

(a) bare mini-swe-agent: `DefaultAgent.run()` with its `LocalEnvironment` and the replay model;
(b) `solver solve` on the embedded defaults (SQLite, artifacts on disk, the local sandbox), through
    the CLI's own code path (`solve_and_report`) in this process;
(c) the same with PostgreSQL.

Solver's figure is its agent phase (the RunAgent step: restore, steps, a checkpoint part, progress,
an event and the partial diff after each step), not process start, clone or verification. Each way
runs `--repeat` times, interleaved; the medians are reported. The local sandbox runs with isolation
`none` (a plain subprocess, like LocalEnvironment) and `bwrap`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import benchlib

COMMAND = ".venv/bin/python benchmarks/overhead.py"
ISSUE = "# Append the numbers\n\nAppend each number to f, one per line.\n"


@dataclass
class Figures:
    agent_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)


def actions(steps: int) -> list[str]:
    return [f"echo {i} >> f" for i in range(1, steps + 1)]


def bare_run(repo: Path, model: str, steps: int, scratch: Path, isolation: str) -> float:
    """(a): mini-swe-agent alone, with the same agent config, replay model and task as Solver's, and
    its own LocalEnvironment (isolation none) or BubblewrapEnvironment (bwrap)."""
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.extra.bubblewrap import BubblewrapEnvironment
    from minisweagent.environments.local import LocalEnvironment

    from solver_core.agent.config import agent_setup
    from solver_core.agent.replay import ReplayModel
    from solver_core.models import Limits

    clone = scratch / "bare-clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    setup = agent_setup("mini.yaml", {}, Limits(step_limit=steps + 10, time_limit_s=3600))
    environment_class = BubblewrapEnvironment if isolation == "bwrap" else LocalEnvironment
    agent = DefaultAgent(
        ReplayModel(path=model.removeprefix("replay:"), **setup.model),
        environment_class(cwd=str(clone), timeout=120),
        **setup.agent,
    )
    with upstream_templates():
        started = time.perf_counter()
        agent.run(ISSUE)
        elapsed = time.perf_counter() - started
    assert agent.n_calls == steps + 1, agent.n_calls  # every action, then the exhausted replay ends it
    return elapsed


@contextlib.contextmanager
def upstream_templates() -> Iterator[None]:
    """(a) is mini-swe-agent as it ships, its templates compiled at every use, even after Solver's
    runs in this process pointed them at its cache (agent/templates.py)."""
    from jinja2 import Template

    from solver_core.agent.templates import UPSTREAM_MODULES

    modules = [importlib.import_module(name) for name in UPSTREAM_MODULES]
    saved = [getattr(module, "Template") for module in modules]  # noqa: B009 - untyped module attribute
    for module in modules:
        setattr(module, "Template", Template)  # noqa: B010
    try:
        yield
    finally:
        for module, template in zip(modules, saved, strict=True):
            setattr(module, "Template", template)  # noqa: B010


@contextlib.contextmanager
def timed_agent_phase(durations: list[float]) -> Any:
    """Time every RunAgent invocation of the solve (the orchestrator calls AgentStep.run)."""
    from solver_core.workflow.agent_step import AgentStep

    original = AgentStep.run

    def timed(self: AgentStep, run_id: UUID, budget: Any) -> bool:
        started = time.perf_counter()
        try:
            return original(self, run_id, budget)
        finally:
            durations.append(time.perf_counter() - started)

    AgentStep.run = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        AgentStep.run = original  # type: ignore[method-assign]


def solver_run(repo: Path, model: str, steps: int, *, home: Path, isolation: str, database_url: str | None) -> Figures:
    """(b)/(c): the `solver solve` code path, in this process; returns the agent phase and the total."""
    from solver_core.cli.solve import build_request, solve_and_report
    from solver_core.rules import RequestPolicy
    from solver_core.settings import local_cli_settings

    overrides: dict[str, Any] = {"home": home, "sandbox_isolation": isolation, "sandbox_dir": home / "sandboxes"}
    if database_url:
        overrides["database_url"] = database_url
    settings = local_cli_settings(sandbox="local", **overrides)
    request = build_request(
        {
            "repo_url": str(repo),
            "issue": {"title": "Append the numbers", "body": ISSUE},
            "models": [model],
            "limits": {"step_limit": steps + 10, "cost_limit_usd": 1.0, "time_limit_s": 3600},
        },
        RequestPolicy.from_settings(settings),
    )
    figures = Figures()
    started = time.perf_counter()
    with timed_agent_phase(figures.agent_s), contextlib.redirect_stdout(io.StringIO()):
        code = solve_and_report(settings, request, chunk_steps=None, as_json=True)
    figures.total_s.append(time.perf_counter() - started)
    assert code == 0, "the solve did not succeed"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--isolation", default="none,bwrap", help="comma-separated: none, bwrap")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    benchlib.header(f"Orchestration overhead: {args.steps} replayed steps", COMMAND)

    isolations = [i for i in args.isolation.split(",") if i]
    scratch = Path(tempfile.mkdtemp(prefix="solver-bench-overhead-"))
    repo = benchlib.make_repo(scratch / "repo", {"README.md": "numbers\n", "f": ""})
    model = benchlib.write_replay(scratch / "replay.yaml", actions(args.steps))
    stack = contextlib.ExitStack()
    postgres = None if args.no_postgres else stack.enter_context(benchlib.postgres_database())
    ways: dict[str, Callable[[int], float]] = {}
    for isolation in isolations:
        environment = "BubblewrapEnvironment" if isolation == "bwrap" else "LocalEnvironment"
        ways[f"(a) bare mini-swe-agent, {environment}"] = lambda _, i=isolation: bare_run(  # type: ignore[misc]
            repo, model, args.steps, scratch, i
        )
        for label, url in (("(b) solver, SQLite", None), ("(c) solver, PostgreSQL", postgres)):
            if label.startswith("(c)") and url is None:
                continue

            def way(rep: int, isolation: str = isolation, url: str | None = url, label: str = label) -> float:
                home = scratch / f"home-{label[:3].strip('()')}-{isolation}-{rep}"
                return solver_run(repo, model, args.steps, home=home, isolation=isolation, database_url=url).agent_s[0]

            ways[f"{label}, sandbox {isolation}"] = way
    with stack:
        results: dict[str, list[float]] = {name: [] for name in ways}
        for way_fn in ways.values():  # warm-up: imports, first connections, page cache
            way_fn(-1)
        for rep in range(args.repeat):
            for name, way_fn in ways.items():
                results[name].append(way_fn(rep))
    shutil.rmtree(scratch, ignore_errors=True)
    report(results, args.steps)


def report(results: dict[str, list[float]], steps: int) -> None:
    """Each row against (a) with the same isolation (LocalEnvironment for none, mini-swe-agent's
    BubblewrapEnvironment for bwrap), and against plain (a) LocalEnvironment."""
    medians = {name: benchlib.median(samples) for name, samples in results.items()}
    plain = medians["(a) bare mini-swe-agent, LocalEnvironment"] if any("LocalEnv" in n for n in medians) else None
    rows = []
    for name, total in medians.items():
        isolation = "bwrap" if name.endswith("bwrap") or "Bubblewrap" in name else "none"
        environment = "BubblewrapEnvironment" if isolation == "bwrap" else "LocalEnvironment"
        bare = medians[f"(a) bare mini-swe-agent, {environment}"]
        per_step_ms = total / steps * 1000
        overhead_ms = (total - bare) / steps * 1000
        against_plain = f"{total / plain:.2f}" if plain else "-"
        ratio = f"{total / bare:.2f}"
        rows.append([name, f"{total * 1000:.0f}", f"{per_step_ms:.2f}", f"{overhead_ms:+.2f}", ratio, against_plain])
    headers = [
        "way", "agent phase (ms, median)", "per step (ms)", "overhead per step (ms)",
        "ratio to (a), same isolation", "ratio to (a) LocalEnvironment",
    ]  # fmt: skip
    print(benchlib.table(headers, rows))
    print(f"\nsamples (s): { {k: [round(v, 3) for v in vs] for k, vs in results.items()} }")
    print(f"pid {os.getpid()} done")


if __name__ == "__main__":
    main()
