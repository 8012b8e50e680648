"""A `solver solve` killed with `kill -9`: the next command notices, `solver list` and `solver
status` mark the solve, and `solver resume` continues it from its checkpoints in a new sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.runtime import make_repo, write_replay

pytestmark = pytest.mark.integration

BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5\n"


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")}
    return env | {"SOLVER_HOME": str(home), "SOLVER_SANDBOX_DIR": str(home / "sandboxes")}


def solver(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "solver_core.cli", *args]
    return subprocess.run(command, env=environment(home), capture_output=True, text=True, timeout=300, check=False)


def wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_solve_is_marked_and_resumed_from_its_checkpoints(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})
    home = tmp_path / "home"
    model = write_replay(
        tmp_path / "work.yaml",
        "echo one > one.txt",
        "sleep 1.2",
        "sed -i 's|//|/|' calc.py",
        "sleep 1.2",
        "touch started && sleep 3",  # the process is killed during this step
        "echo three > three.txt",
        "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
    )
    command = [sys.executable, "-m", "solver_core.cli", "solve", str(repo), "--model", model]
    command += ["--issue", "mean() drops the fraction", "--test-command", "python3 test_calc.py", "--json"]
    process = subprocess.Popen(
        command, env=environment(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(lambda: list((home / "sandboxes").glob("*/home/repo/started")), "the fifth step")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL

    listed = solver("list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)["items"]
    solve_id = item["id"]
    assert item["status"] == "running"
    assert "solver resume" in item["stalled"]
    assert "left unfinished by a process that ended" in listed.stderr  # settled by this command's start
    assert not list((home / "sandboxes").glob("*/home"))  # the killed run's sandbox was killed too
    shown = json.loads(solver("status", solve_id, "--json", home=home).stdout)
    (run,) = shown["runs"]
    assert (run["status"], run["attempt"]) == ("failed", 0)
    assert run["error"].startswith("ExecutionEnded")  # retryable: resume queues it again
    assert "solver resume" in shown["stalled"]
    steps_before = run["steps"]
    assert steps_before >= 4

    resumed = solver("resume", solve_id, "--json", home=home)
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert out["status"] == "succeeded"
    (run,) = out["runs"]
    assert (run["status"], run["exit_status"], run["attempt"]) == ("succeeded", "Submitted", 1)
    assert run["steps"] >= 7  # counting went on from the checkpoint
    assert run["tests"]["passed"] is True
    for change in ("one.txt", "three.txt", "+    return sum(values) / len(values)"):
        assert change in out["patch"]  # work from before the kill was kept
    again = solver("resume", solve_id, home=home)
    assert again.returncode == 2
    assert "nothing to resume" in again.stderr
    assert json.loads(solver("status", solve_id, "--json", home=home).stdout)["stalled"] is None


def test_resume_refuses_a_solve_that_is_still_running(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})
    home = tmp_path / "home"
    model = write_replay(tmp_path / "slow.yaml", "touch started && sleep 20")
    command = [sys.executable, "-m", "solver_core.cli", "solve", str(repo), "--model", model, "--issue", "x"]
    process = subprocess.Popen(command, env=environment(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: list((home / "sandboxes").glob("*/home/repo/started")), "the first step")
        listed = solver("list", "--json", home=home)
        (item,) = json.loads(listed.stdout)["items"]
        assert item["stalled"] is None  # its process is alive: not marked, not settled
        refused = solver("resume", item["id"], home=home)
        assert refused.returncode == 2
        assert "still running" in refused.stderr
    finally:
        process.kill()
        process.wait(30)
