"""The issue's "done when", over HTTP: `solver serve --allow-local-repos --allow-replay-models` with
the local orchestrator; start a solve on a local repository with a replay model, follow its events,
fetch the champion's patch, and cancel another solve while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname
from uuid import UUID

import pytest

from solver_core.api import ApiDeps
from solver_core.cli.common import local_owner, open_container
from solver_core.cli.serve import make_server
from solver_core.status import SolveStatus
from tests.support.api_client import HttpClient
from tests.support.runtime import make_repo, runtime_settings, write_replay
from tests.support.selection import PYTEST, scenario_models, scenario_repo

pytestmark = pytest.mark.integration

BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5, mean([1, 2])\nprint('ok')\n"
TERMINAL = {s.value for s in (SolveStatus.SUCCEEDED, SolveStatus.FAILED, SolveStatus.CANCELLED)}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[HttpClient, Any]]:
    settings = runtime_settings(
        tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", allow_unregistered_models=False, sandbox_isolation="none"
    )
    container = open_container(settings)
    orchestrator = container.orchestrator
    deps = ApiDeps.from_container(container, orchestrator)
    server = make_server(lambda: deps, "127.0.0.1", 0, token=None, owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield HttpClient(server.url, owner=local_owner(), token=None, world=None), orchestrator
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        container.close()


def follow(client: HttpClient, solve_id: str, timeout_s: float = 120) -> list[dict[str, Any]]:
    """Poll the events feed until the solve ends (as a client following it live would)."""
    events: list[dict[str, Any]] = []
    after, deadline = 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page = client.call("GET", f"/solves/{solve_id}/events", query={"after": str(after)}).json
        events += page["items"]
        after = page["next_after"]
        if client.call("GET", f"/solves/{solve_id}").json["status"] in TERMINAL and not page["items"]:
            return events
        time.sleep(0.2)
    raise AssertionError(f"solve {solve_id} did not finish: {[e['message'] for e in events][-5:]}")


def request(repo: Path, model: str, title: str) -> dict[str, Any]:
    return {
        "repo_url": str(repo),
        "issue": {"title": title, "body": "mean([1, 2]) prints 1."},
        "models": [model],
        "limits": {"step_limit": 10, "cost_limit_usd": 1.0, "time_limit_s": 600},
        "test_command": "python3 test_calc.py",
    }


def test_a_local_solve_with_a_replay_end_to_end_and_a_cancel(served: tuple[HttpClient, Any], tmp_path: Path) -> None:
    client, orchestrator = served
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})
    fix = write_replay(tmp_path / "fix.yaml", "cat calc.py", "sed -i 's|//|/|' calc.py", "python3 test_calc.py")

    created = client.call("POST", "/solves", body=request(repo, fix, "mean() floors"))
    assert created.status == 202, created.text
    solve_id = created.json["id"]
    messages = [e["message"] for e in follow(client, solve_id)]
    assert "solve finished: patch, tests passed" in messages
    assert any(m.startswith("step ") for m in messages)

    solve = client.call("GET", f"/solves/{solve_id}").json
    assert solve["status"] == "succeeded"
    champion = next(r for r in solve["runs"] if r["id"] == solve["champion_run_id"])
    assert champion["tests"]["passed"] is True
    patch = Path(url2pathname(urlsplit(champion["artifacts"]["patch"]).path)).read_text()
    assert "-    return sum(values) // len(values)" in patch
    assert "+    return sum(values) / len(values)" in patch

    slow = write_replay(tmp_path / "slow.yaml", "sleep 30", "sleep 30")
    other = client.call("POST", "/solves", body=request(repo, slow, "slow")).json["id"]
    deadline = time.monotonic() + 60
    while client.call("GET", f"/solves/{other}").json["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    cancelled = client.call("POST", f"/solves/{other}/cancel")
    assert cancelled.status == 200
    assert cancelled.json["changed"] is True
    assert cancelled.json["solve"]["status"] == "cancelled"
    assert orchestrator.wait(UUID(other), timeout=60)
    assert client.call("GET", f"/solves/{other}").json["status"] == "cancelled"


def test_a_pre_existing_failure_the_api_shows_the_selection_and_the_true_fix_wins(
    served: tuple[HttpClient, Any], tmp_path: Path
) -> None:
    """Every candidate's suite fails (an unrelated test already fails): GET /solves/{id} shows the
    baseline, each candidate's signals and why the true fix won."""
    client, _ = served
    repo = scenario_repo(tmp_path / "scenario")
    body = {
        "repo_url": str(repo),
        "issue": {"title": "mean() floors", "body": "mean([1, 2]) gives 1."},
        "models": scenario_models(tmp_path),
        "max_parallel": 3,
        "test_command": PYTEST,
    }
    created = client.call("POST", "/solves", body=body)
    assert created.status == 202, created.text
    follow(client, created.json["id"])
    solve = client.call("GET", f"/solves/{created.json['id']}").json
    assert [r["index"] for r in solve["runs"]] == [0, 1, 2]  # the baseline is not a candidate
    assert solve["champion_run_id"] == solve["runs"][0]["id"]
    selection = solve["selection"]
    assert selection["champion_run_id"] == solve["runs"][0]["id"]
    assert selection["baseline"]["status"] == "failed"
    assert selection["baseline"]["failed"] == 2
    assert [(s["index"], s["baseline_delta"]["fixed"], s["baseline_delta"]["broken"]) for s in selection["runs"]] == [
        (0, 1, 0), (2, 0, 0), (1, 1, 1),
    ]  # fmt: skip
    assert "run 0" in selection["reason"]
    assert "fixes 1 test(s)" in selection["reason"]


def test_local_paths_and_replays_are_refused_without_the_flags(tmp_path: Path) -> None:
    settings = runtime_settings(
        tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", allow_local_repos=False, allow_replay_models=False
    )
    container = open_container(settings)
    try:
        deps = ApiDeps.from_container(container, container.orchestrator)
        server = make_server(lambda: deps, "127.0.0.1", 0, token=None, owner=local_owner())
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY})
        client = HttpClient(server.url, owner=local_owner(), token=None, world=None)
        answer = client.call("POST", "/solves", body=request(repo, "replay:/tmp/x.yaml", "refused"))
        assert answer.status == 422
        assert {d["rule"] for d in answer.error["details"]} == {"local_repo_not_allowed", "replay_not_allowed"}
        server.shutdown()
        server.server_close()
        thread.join(5)
    finally:
        container.close()
