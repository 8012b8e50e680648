"""`solver demo`: the bundled example end to end on the embedded defaults, with no LLM and no keys.

A small calculator project with a failing test, its issue, and three attempts in parallel, each a
labelled replay of scripted actions: one fixes the bug, one makes a plausible but wrong change, one
only explores and runs out of actions. The tests pick the champion.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path

import typer

from solver_core.cli.common import console
from solver_core.cli.solve import build_request, issue_fields, solve_and_report
from solver_core.rules import RequestPolicy
from solver_core.settings import Settings, local_cli_settings

REPLAYS = ("fix", "wrong_fix", "exhausted")
TEST_COMMAND = "python3 -m unittest -q"


def demo_assets() -> Path:
    return Path(str(resources.files("solver_core") / "demo"))


def make_repository(target: Path) -> Path:
    """A fresh git repository holding the example project, committed."""
    shutil.copytree(demo_assets() / "calculator", target, ignore=shutil.ignore_patterns("__pycache__"))
    env = os.environ | {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.name=Solver demo", "-c", "user.email=demo@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*identity, "commit", "-q", "-m", "calculator"]):
        subprocess.run(["git", *args], cwd=target, env=env, check=True, capture_output=True)
    return target


def demo(
    json_output: bool = typer.Option(False, "--json", help="Print only the solve as JSON."),
) -> None:
    """Run the bundled example: three replayed attempts in parallel, tests pick the champion."""
    settings = local_cli_settings()
    repo = make_repository(settings.home / "demo" / f"calculator-{time.strftime('%Y%m%d-%H%M%S')}")
    replays = [f"replay:{demo_assets() / 'replays' / f'{name}.yaml'}" for name in REPLAYS]
    request = build_request(
        {
            "repo_url": str(repo),
            "issue": issue_fields((demo_assets() / "calculator.issue.md").read_text(), None),
            "models": replays,
            "max_parallel": 3,
            "limits": {"step_limit": 20, "cost_limit_usd": 1.0, "time_limit_s": 600},
            "test_command": TEST_COMMAND,
        },
        RequestPolicy.from_settings(settings),
    )
    if not json_output:
        introduce(settings, repo)
    code = solve_and_report(settings, request, chunk_steps=None, as_json=json_output)
    if not json_output:
        console.print(
            "\nThe three attempts were replays of scripted actions (no LLM). With a real model (the tests are\n"
            "detected: pytest, from the project's pytest.ini; `solver doctor` checks that this machine is ready):\n"
            f"  ANTHROPIC_API_KEY=… solver solve {repo} --issue-file <issue.md> "
            "--model anthropic/claude-sonnet-4-5 --attempts 3"
        )
    raise typer.Exit(code)


def introduce(settings: Settings, repo: Path) -> None:
    console.print("[bold]Solver demo[/]: a calculator whose mean() drops fractions, and its failing test.")
    console.print(f"repository: {repo}")
    console.print("attempts:   3 replays in parallel: a fix, a wrong fix, and one that runs out of actions")
    console.print(f"tests:      {TEST_COMMAND}\n")
