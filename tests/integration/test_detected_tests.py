"""A detected test command: what detect_tests.sh finds in each kind of repository, and `solver solve`
on the bundled calculator without --test-command (pytest detected, run, and said so); `--no-tests`;
an explicit command winning; and a run whose tests failed shown by its outcome, not as a success."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from solver_core.cli.demo import demo_assets, make_repository
from solver_core.sandbox.base import CommandResult
from solver_core.sandbox.repository import DetectedTests, parse_detected

pytestmark = pytest.mark.integration

SCRIPT = Path(str(resources.files("solver_core.sandbox") / "scripts" / "detect_tests.sh"))
# The repository's tests need a python with pytest on the PATH, as a user's activated virtualenv gives.
PYTHON_BIN = str(Path(sys.executable).parent)


def detect(tmp_path: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> tuple[str, str] | None:
    found = detected(tmp_path, files, executable)
    return (found.command, found.reason) if found else None


def without_pytest(bin_dir: Path) -> str:
    """A PATH whose python3 has no pytest (and no pytest executable on it), as a bare sandbox has."""
    bin_dir.mkdir(parents=True)
    stub = bin_dir / "python3"
    stub.write_text(
        '#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pytest" ]; then echo "No module named pytest" >&2; exit 1; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    stub.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def detected(
    tmp_path: Path, files: dict[str, str], executable: tuple[str, ...] = (), path: str | None = None
) -> DetectedTests | None:
    repo = tmp_path / "repo"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for name in executable:
        (repo / name).chmod(0o755)
    repo.mkdir(exist_ok=True)
    env = {"HOME": str(tmp_path), "SOLVER_WORKDIR": "repo", "PATH": path or f"{PYTHON_BIN}:/usr/bin:/bin"}
    done = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    return parse_detected(CommandResult(returncode=done.returncode, output=done.stdout + done.stderr))


PYTEST = "python3 -m pytest -q"
PYPROJECT = "[project]\nname = 'x'\n"
NPM = "package.json scripts.test"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pytest.ini": "[pytest]\n"}, (PYTEST, "pytest.ini")),
        ({"pyproject.toml": PYPROJECT + "\n[tool.pytest.ini_options]\n"}, (PYTEST, "pyproject.toml [tool.pytest]")),
        ({"tox.ini": "[tox]\n"}, (PYTEST, "tox.ini")),
        ({"tests/test_a.py": "def test_a():\n    pass\n"}, (PYTEST, "tests/")),
        ({"package.json": '{"scripts": {"test": "jest"}}'}, ("npm test", NPM)),
        ({"go.mod": "module x\n"}, ("go test ./...", "go.mod")),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, ("cargo test", "Cargo.toml")),
        ({"pom.xml": "<project/>"}, ("mvn -q test", "pom.xml")),
        ({"build.gradle": ""}, ("gradle test", "build.gradle")),
        ({"pyproject.toml": PYPROJECT, "package.json": '{"scripts": {"test": "vitest"}}'}, ("npm test", NPM)),
    ],
    ids=["pytest.ini", "pyproject", "tox", "tests-dir", "npm", "go", "cargo", "maven", "gradle", "pyproject-no-pytest"],
)  # fmt: skip
def test_each_ecosystem_has_its_command(tmp_path: Path, files: dict[str, str], expected: tuple[str, str]) -> None:
    assert detect(tmp_path, files) == expected


def test_the_gradle_wrapper_is_preferred_and_npm_default_script_is_no_test(tmp_path: Path) -> None:
    assert detect(tmp_path / "a", {"build.gradle.kts": "", "gradlew": "#!/bin/sh\n"}, ("gradlew",)) == (
        "./gradlew test",
        "build.gradle",
    )
    npm_init = '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'
    assert detect(tmp_path / "b", {"package.json": npm_init}) is None
    assert detect(tmp_path / "c", {"README.md": "nothing to run\n"}) is None


def test_the_repository_virtualenv_runs_pytest_when_it_has_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    assert detect(tmp_path, {"pytest.ini": "[pytest]\n"}) == (".venv/bin/python -m pytest -q", "pytest.ini")


def test_pytest_missing_from_the_sandbox_is_a_warning_beside_the_command(tmp_path: Path) -> None:
    found = detected(tmp_path, {"pytest.ini": "[pytest]\n"}, path=without_pytest(tmp_path / "bin"))
    assert found is not None
    assert (found.command, found.reason) == (PYTEST, "pytest.ini")
    assert found.warnings == (
        "the repository uses pytest (pytest.ini) but pytest is not installed in the sandbox; "
        "install it in the setup command",
    )


# --- solver solve on the bundled calculator ---------------------------------------------------------


def solver(home: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_") and not k.endswith("_API_KEY")}
    env |= {
        "SOLVER_HOME": str(home),
        "SOLVER_SANDBOX_DIR": str(home / "sandboxes"),
        "SOLVER_SANDBOX_ISOLATION": "none",
        "PATH": path or f"{PYTHON_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
    }
    command = [sys.executable, "-m", "solver_core.entry", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def calculator(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "calculator")


def replay(name: str) -> str:
    return f"replay:{demo_assets() / 'replays' / f'{name}.yaml'}"


def solve(tmp_path: Path, calculator: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    issue = str(demo_assets() / "calculator.issue.md")
    home = tmp_path / "home"
    done = solver(home, "solve", str(calculator), "--issue-file", issue, "--json", *args)
    assert done.stdout, done.stderr
    return done, json.loads(done.stdout)


def events(tmp_path: Path, solve_id: str) -> list[str]:
    done = solver(tmp_path / "home", "events", solve_id, "--json")
    return [json.loads(line)["message"] for line in done.stdout.splitlines() if line.strip()]


def test_the_calculator_without_a_test_command_detects_and_runs_pytest(tmp_path: Path, calculator: Path) -> None:
    done, out = solve(tmp_path, calculator, "--model", replay("fix"))
    assert done.returncode == 0, done.stderr
    (run,) = out["runs"]
    assert run["tests"]["detected"] is True
    assert run["tests"]["command"] == PYTEST
    assert run["tests"]["passed"] is True
    assert run["outcome"] == out["outcome"] == "tests_passed"
    output = Path(run["artifacts"]["tests"].removeprefix("file://")).read_text()
    assert "6 passed" in output  # pytest ran the unittest-style tests
    messages = events(tmp_path, out["id"])
    assert f"tests: detected `{PYTEST}` (pytest.ini)" in messages
    assert any("tests passed (detected: python3 -m pytest -q)" in m for m in messages)  # the champion's reason


def test_the_output_says_the_tests_were_detected(tmp_path: Path, calculator: Path) -> None:
    issue = str(demo_assets() / "calculator.issue.md")
    done = solver(tmp_path / "home", "solve", str(calculator), "--issue-file", issue, "--model", replay("fix"))
    assert done.returncode == 0, done.stderr
    assert f"tests: {PYTEST} (detected from the repository)" in done.stderr
    assert "passed, detected" in done.stderr


def test_without_pytest_in_the_sandbox_the_command_stays_a_command_and_the_warning_is_shown(
    tmp_path: Path, calculator: Path
) -> None:
    """The warning used to be taken for the detected command and run as shell code."""
    issue = str(demo_assets() / "calculator.issue.md")
    path = without_pytest(tmp_path / "bin")
    done = solver(tmp_path / "home", "solve", str(calculator), "--issue-file", issue, "--json",
                  "--model", replay("fix"), path=path)  # fmt: skip
    assert done.stdout, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["tests"]["command"] == PYTEST
    assert run["tests"]["detected"] is True
    output = Path(run["artifacts"]["tests"].removeprefix("file://")).read_text()
    assert "No module named pytest" in output
    assert "command not found" not in output
    messages = events(tmp_path, json.loads(done.stdout)["id"])
    assert (
        "tests: warning: the repository uses pytest (pytest.ini) but pytest is not installed in the sandbox; "
        "install it in the setup command"
    ) in messages


def test_no_tests_turns_detection_off_and_an_explicit_command_wins(tmp_path: Path, calculator: Path) -> None:
    done, out = solve(tmp_path, calculator, "--model", replay("fix"), "--no-tests")
    assert done.returncode == 0, done.stderr
    assert out["runs"][0]["tests"] is None
    assert out["outcome"] == "untested"
    assert "tests: none (detection turned off); the champion is chosen without tests" in events(tmp_path, out["id"])
    _, out = solve(tmp_path, calculator, "--model", replay("fix"), "--test-command", "python3 -m unittest -q")
    assert out["runs"][0]["tests"]["command"] == "python3 -m unittest -q"
    assert out["runs"][0]["tests"]["detected"] is False


def test_a_champion_whose_tests_failed_is_not_shown_as_succeeded(tmp_path: Path, calculator: Path) -> None:
    issue = str(demo_assets() / "calculator.issue.md")
    done = solver(tmp_path / "home", "solve", str(calculator), "--issue-file", issue, "--model", replay("wrong_fix"))
    assert done.returncode == 1  # a patch that fails its tests is not a success
    assert "outcome: patch, tests failed" in done.stderr
    assert "succeeded" not in done.stderr
    status = solver(tmp_path / "home", "list", "--json")
    (item,) = json.loads(status.stdout)["items"]
    assert (item["status"], item["outcome"]) == ("succeeded", "tests_failed")  # lifecycle, then outcome
