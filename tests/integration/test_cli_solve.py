"""`solver solve` as a user runs it: a separate process on the embedded defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.runtime import make_repo, write_replay
from tests.support.selection import PYTEST, scenario_models, scenario_repo

pytestmark = pytest.mark.integration

BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5\n"
FIX_ACTIONS = (
    "cat calc.py",
    "sed -i 's|//|/|' calc.py",
    "python3 test_calc.py",
    "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
)


def solver(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")}
    env |= {"SOLVER_HOME": str(home), "SOLVER_SANDBOX_DIR": str(home / "sandboxes"), "SOLVER_SANDBOX_ISOLATION": "none"}
    command = [sys.executable, "-m", "solver_core.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})


def solve_json(tmp_path: Path, repo: Path, model: str, *extra: str, home: str = "home") -> tuple[int, dict[str, Any]]:
    issue = tmp_path / "issue.md"
    issue.write_text("# mean() drops the fraction\n\nmean([1, 2]) gives 1, expected 1.5.\n")
    done = solver(
        "solve", str(repo), "--model", model, "--issue-file", str(issue),
        "--test-command", "python3 test_calc.py", "--json", *extra, home=tmp_path / home,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_replayed_fix_prints_the_solve_and_its_patch(tmp_path: Path, repo: Path) -> None:
    code, out = solve_json(tmp_path, repo, write_replay(tmp_path / "fix.yaml", *FIX_ACTIONS))
    assert code == 0
    assert out["status"] == "succeeded"
    assert out["issue"]["title"] == "mean() drops the fraction"
    (run,) = out["runs"]
    assert {"id", "model", "status", "exit_status", "steps", "cost_usd", "patch_stats", "tests", "artifacts"} <= set(
        run
    )
    assert (run["status"], run["exit_status"], run["steps"]) == ("succeeded", "Submitted", 4)
    assert run["tests"]["passed"] is True
    assert set(run["artifacts"]) == {"patch", "trajectory", "log", "tests"}
    assert Path(run["artifacts"]["trajectory"].removeprefix("file://")).is_file()
    assert "+    return sum(values) / len(values)" in out["patch"]
    assert out["champion_run_id"] == run["id"]


def test_chunked_runs_resume_across_processes_and_give_the_same_patch(tmp_path: Path, repo: Path) -> None:
    model = write_replay(tmp_path / "fix.yaml", *FIX_ACTIONS)
    _, whole = solve_json(tmp_path, repo, model, home="whole")
    code, chunked = solve_json(tmp_path, repo, model, "--chunk-steps", "1", home="chunked")
    assert code == 0
    assert chunked["patch"] == whole["patch"]
    assert chunked["runs"][0]["steps"] == whole["runs"][0]["steps"] == 4
    parts = list((tmp_path / "chunked" / "artifacts").rglob("checkpoint/*.json"))
    assert len(parts) == 5  # the opening messages, then one part per step


def test_no_patch_exits_non_zero(tmp_path: Path, repo: Path) -> None:
    code, out = solve_json(tmp_path, repo, write_replay(tmp_path / "idle.yaml", "ls"))
    assert code == 1
    assert out["status"] == "failed"
    assert out["patch"] is None
    assert out["runs"][0]["exit_status"] == "ReplayExhausted"


def test_bad_input_is_refused_with_the_field_and_rule(tmp_path: Path, repo: Path) -> None:
    done = solver("solve", str(repo), "--model", "bad model", "--issue", "x", "--ref", "a..b", home=tmp_path / "h")
    assert done.returncode == 2
    assert "ref:" in done.stderr
    assert "git_ref" in done.stderr
    assert "model_name" in done.stderr
    assert not (tmp_path / "h" / "artifacts").exists()


def test_models_run_in_parallel_and_the_tests_pick_the_fix(tmp_path: Path, repo: Path) -> None:
    fix = write_replay(tmp_path / "fix.yaml", "sleep 3", *FIX_ACTIONS)
    wrong = write_replay(tmp_path / "wrong.yaml", "sleep 3", "sed -i 's|def mean|def average|' calc.py",
                         "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")  # fmt: skip
    idle = write_replay(tmp_path / "idle.yaml", "sleep 3", "ls")
    started = time.monotonic()
    code, out = solve_json(tmp_path, repo, wrong, "--model", idle, "--model", fix, "--max-parallel", "3")
    elapsed = time.monotonic() - started
    assert code == 0
    assert [r["exit_status"] for r in out["runs"]] == ["Submitted", "ReplayExhausted", "Submitted"]
    assert out["champion_run_id"] == out["runs"][2]["id"]  # the one whose tests pass
    assert [r["tests"]["passed"] if r["tests"] else None for r in out["runs"]] == [False, None, True]
    # Every run started before any finished: they ran at the same time. (A wall-clock bound was
    # flaky on a loaded machine, and each verified run now also clones into its own new sandbox.)
    starts = [datetime.fromisoformat(r["started_at"]) for r in out["runs"]]
    ends = [datetime.fromisoformat(r["finished_at"]) for r in out["runs"]]
    assert max(starts) < min(ends), f"the runs did not overlap ({elapsed:.1f}s in all): they did not run in parallel"


def test_attempts_multiply_the_runs(tmp_path: Path, repo: Path) -> None:
    _, out = solve_json(tmp_path, repo, write_replay(tmp_path / "fix.yaml", *FIX_ACTIONS), "--attempts", "2")
    assert [r["status"] for r in out["runs"]] == ["succeeded", "succeeded"]


def test_the_demo_replays_three_attempts_and_the_tests_pick_the_fix(tmp_path: Path) -> None:
    done = solver("demo", "--json", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "succeeded"
    assert [Path(r["model"]).stem for r in out["runs"]] == ["fix", "wrong_fix", "exhausted"]
    assert [r["exit_status"] for r in out["runs"]] == ["Submitted", "Submitted", "ReplayExhausted"]
    assert out["champion_run_id"] == out["runs"][0]["id"]
    assert "return total / len(values)" in out["patch"]


def test_a_pre_existing_failure_the_true_fix_wins_and_the_output_says_why(tmp_path: Path) -> None:
    """Every candidate's suite fails because an unrelated test already fails on the base commit:
    the baseline tells the true fix from a fix that breaks another test and a no-op."""
    repo = scenario_repo(tmp_path / "scenario")
    models = [arg for model in scenario_models(tmp_path) for arg in ("--model", model)]
    common = (str(repo), *models, "--issue", "mean() floors", "--test-command", PYTEST, "--max-parallel", "3")
    done = solver("solve", *common, "--json", home=tmp_path / "json")
    out = json.loads(done.stdout)
    assert done.returncode == 1  # the champion's suite still fails: the unrelated test
    assert out["champion_run_id"] == out["runs"][0]["id"]
    assert out["selection"]["baseline"]["failing_tests"] == [
        "test_calc::test_mean", "test_calc::test_unrelated_environment",
    ]  # fmt: skip
    assert [s["index"] for s in out["selection"]["runs"]] == [0, 2, 1]

    shown = solver("solve", *common, home=tmp_path / "human")
    text = " ".join(shown.stderr.split())  # the human output (on stderr); rich wraps long lines
    assert "selection" in text
    assert "baseline: tests failed on the base commit (exit 1, 1 passed, 2 failed)" in text
    assert "run 1: #3, tests failed, fixed 1, broke 1, still failing 1 (per test)" in text
    assert "why: run 0 (" in text
    assert "fixes 1 test(s) that failed on the base commit (test_calc::test_mean)" in text


def test_reproduce_asks_for_scripts_and_the_one_that_passes_them_wins(tmp_path: Path, repo: Path) -> None:
    """`--reproduce` with a suite that never calls mean(): the no-op is smaller, the true fix passes the
    validated scripts; the output says so, and the scripts are not in the champion's patch."""
    check = "import sys\\nfrom calc import mean\\nsys.exit(0 if mean([1, 2]) == 1.5 else 1)\\n"
    script = f"printf '{check}' > reproduce_issue.py"
    submit = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    noop = write_replay(tmp_path / "noop.yaml", script, "echo '# mean' >> calc.py", submit)
    fix = write_replay(tmp_path / "fix.yaml", script, "sed -i 's|//|/|' calc.py", submit)
    common = (
        str(repo), "--model", noop, "--model", fix, "--issue", "mean() floors",
        "--test-command", "python3 -c 'import calc'",
        "--reproduce", "--reproduce-command", "python3 reproduce_issue.py",
    )  # fmt: skip
    done = solver("solve", *common, "--json", home=tmp_path / "json")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["champion_run_id"] == out["runs"][1]["id"]
    assert out["selection"]["reproduction"] == {"status": "checked", "scripts": 2, "validated": 2, "error": None}
    assert [(s["index"], s["reproduce_passed"]) for s in out["selection"]["runs"]] == [(1, 2), (0, 0)]
    assert "reproduce_issue.py" not in out["patch"]
    shown = solver("solve", *common, home=tmp_path / "human")
    text = " ".join(shown.stderr.split())
    assert "reproduction: 2 script(s) written, 2 fail on the base commit (those count)" in text
    assert "it passes 2 reproduction script(s), run 0 0" in text
