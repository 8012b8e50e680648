"""The bundled demo example (solver_core/demo/calculator) with its issue, and the replays that fix it or fail.

Each replay is checked twice: by running its commands directly with bash, which pins down what the
example files do, and through DefaultAgent + ReplayModel + LocalEnvironment, which is what the
demo runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from minisweagent.agents.default import DefaultAgent
from minisweagent.config import builtin_config_dir
from minisweagent.environments.local import LocalEnvironment

from solver_core.agent.replay import ReplayModel, load_replay_actions
from tests.fakes.git_server import isolated_git_env

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "layers" / "core" / "src" / "solver_core" / "demo"
REPLAYS = EXAMPLES / "replays"
SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
# Bytecode caches would show up as untracked files in the scratch repository.
ENV = isolated_git_env() | {"PYTHONDONTWRITEBYTECODE": "1"}


def run(command: list[str], repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, check=False, cwd=repo, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60
    )


def unit_tests_pass(repo: Path) -> bool:
    return run(["python3", "-m", "unittest", "-q"], repo).returncode == 0


def git_diff(repo: Path) -> str:
    return run(["git", "diff"], repo).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch git repository holding a copy of the demo calculator, with its test failing."""
    repo = tmp_path / "calculator"
    shutil.copytree(EXAMPLES / "calculator", repo, ignore=shutil.ignore_patterns("__pycache__"))
    run(["git", "init", "-q"], repo).check_returncode()
    run(["git", "add", "-A"], repo).check_returncode()
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "calculator"], repo).check_returncode()
    assert not unit_tests_pass(repo)
    return repo


def replay_with_bash(repo: Path, name: str) -> bool:
    """Run a replay's commands in order, one fresh shell each; True when it reached the sentinel."""
    for action in load_replay_actions(REPLAYS / f"{name}.yaml"):
        result = run(["bash", "-c", action.command], repo)
        if result.returncode == 0 and result.stdout.lstrip().startswith(SENTINEL):
            return True
    return False


def replay_with_agent(repo: Path, name: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((builtin_config_dir / "mini.yaml").read_text())
    model = ReplayModel(path=REPLAYS / f"{name}.yaml", **config["model"])
    env = LocalEnvironment(cwd=str(repo), env={"PYTHONDONTWRITEBYTECODE": "1"})
    agent = DefaultAgent(model, env, **(config["agent"] | {"step_limit": 20}))
    issue = (EXAMPLES / "calculator.issue.md").read_text()
    result: dict[str, Any] = agent.run(issue)
    return result


def test_the_issue_has_a_title_line_and_a_body() -> None:
    title, _, body = (EXAMPLES / "calculator.issue.md").read_text().partition("\n")
    assert title.startswith("# ")
    assert "mean" in title
    assert body.strip()


def test_exactly_one_unit_test_fails_before_any_fix(repo: Path) -> None:
    output = run(["python3", "-m", "unittest", "-q"], repo).stdout
    assert "FAILED (failures=1)" in output
    assert "test_mean_keeps_the_fraction" in output


def test_the_fix_replay_makes_the_tests_pass(repo: Path) -> None:
    assert replay_with_bash(repo, "fix")
    assert unit_tests_pass(repo)
    assert "-    return total // len(values)\n+    return total / len(values)" in git_diff(repo)


def test_the_wrong_fix_replay_changes_code_but_the_tests_still_fail(repo: Path) -> None:
    assert replay_with_bash(repo, "wrong_fix")
    assert not unit_tests_pass(repo)
    assert git_diff(repo)


def test_the_exhausted_replay_explores_without_changing_or_submitting(repo: Path) -> None:
    assert not replay_with_bash(repo, "exhausted")
    assert git_diff(repo) == ""


@pytest.mark.parametrize(
    ("name", "exit_status", "tests_pass", "changed"),
    [
        ("fix", "Submitted", True, True),
        ("wrong_fix", "Submitted", False, True),
        ("exhausted", "ReplayExhausted", False, False),
    ],
)
def test_each_replay_through_the_agent(
    repo: Path, name: str, exit_status: str, tests_pass: bool, changed: bool
) -> None:
    result = replay_with_agent(repo, name)
    assert result["exit_status"] == exit_status
    assert unit_tests_pass(repo) is tests_pass
    assert bool(git_diff(repo)) is changed
