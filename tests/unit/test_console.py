"""The console's pieces without a server: diffs, trajectories from checkpoint parts, the timeline,
links, and the generated token stylesheet."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from uuid import uuid4

import pytest

from solver_core.artifacts import keys
from solver_core.artifacts.local import LocalArtifactStore
from solver_core.console import diff, trajectory, views
from solver_core.console.render import href, model_label
from solver_core.models import EventView, IssueSpec, Limits, RunView, SolveView
from solver_core.status import EventKind, Outcome, RunStatus, SolveStatus

pytestmark = pytest.mark.unit

PATCH = """diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,4 @@
 def f():
-    return "<script>alert(1)</script>"
-    x = 1
+    return "safe"
 # end
\\ No newline at end of file
"""


def test_a_diff_is_parsed_highlighted_and_escaped() -> None:
    [file] = diff.parse(PATCH)
    assert (file.path, file.added, file.removed) == ("app.py", 1, 2)
    lines = file.hunks[0].lines
    assert [line.kind for line in lines] == ["context", "removed", "removed", "added", "context", "note"]
    assert [(line.old, line.new) for line in lines[:5]] == [(1, 1), (2, None), (3, None), (None, 2), (4, 3)]
    assert "<script>" not in lines[1].html
    assert "&lt;script&gt;" in lines[1].html
    assert 'class="tok-k"' in lines[3].html  # `return`, as Python


def test_side_by_side_pairs_removals_with_the_additions_after_them() -> None:
    rows = diff.parse(PATCH)[0].hunks[0].side_by_side()
    kinds = [(a.kind if a else None, b.kind if b else None) for a, b in rows]
    assert kinds == [
        ("context", "context"),
        ("removed", "added"),
        ("removed", None),
        ("context", "context"),
        ("note", None),
    ]


def test_the_token_stylesheet_is_the_one_pygments_generates() -> None:
    shipped = resources.files("solver_core.console").joinpath("static", "code.css").read_text()
    assert diff.stylesheet() in shipped


def test_a_running_runs_steps_come_from_its_checkpoint_parts(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    solve_id, run_id = uuid4(), uuid4()
    task = {"role": "user", "content": "fix it"}
    ask = {"role": "assistant", "content": "look", "extra": {"actions": [{"command": "ls"}], "timestamp": 10.0}}
    out = {"role": "tool", "content": "x", "extra": {"raw_output": "a.py\n", "returncode": 0, "timestamp": 12.5}}
    error_exit = {"role": "exit", "content": "", "extra": {"exit_status": "Error", "traceback": "..."}}
    again = {"role": "assistant", "content": "fix", "extra": {"actions": [{"command": "sed"}], "cost": 0.5}}
    parts = [
        (0, [task, ask, out, error_exit]),
        (3, [again]),  # a resumed attempt dropped the error exit
    ]
    for seq, (base, messages) in enumerate(parts):
        part = {"seq": seq, "base": base, "messages": messages, "counters": {}}
        store.put(keys.checkpoint_part(solve_id, run_id, seq), json.dumps(part).encode())
    loaded = trajectory.load(store, solve_id, run_id, None)
    assert loaded.source == "checkpoint"
    assert loaded.task == "fix it"
    assert loaded.exit_status is None
    first, second = loaded.steps
    assert (first.thought, first.actions[0].command, first.actions[0].output, first.actions[0].returncode) == (
        "look",
        "ls",
        "a.py\n",
        0,
    )
    assert first.duration_s == 2.5
    assert (second.thought, second.cost_usd, second.actions[0].output) == ("fix", 0.5, None)
    assert loaded.raw["messages"] == [task, ask, out, again]


def test_a_run_without_steps_has_no_trajectory(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no trajectory yet"):
        trajectory.load(LocalArtifactStore(tmp_path), uuid4(), uuid4(), None)


def run_view(index: int, status: RunStatus, start: datetime) -> RunView:
    return RunView(
        id=uuid4(), solve_id=uuid4(), index=index, model="m", agent_config=None, status=status, exit_status=None,
        attempt=1, retryable=False, sandbox_id=None, base_commit=None, steps=0, cost_usd=0.0, tokens=0,
        patch_stats=None, tests=None, error=None, artifacts={}, heartbeat_at=None, created_at=start,
        started_at=None, finished_at=None,
    )  # fmt: skip


def test_the_timeline_puts_each_phase_between_its_status_events() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    done, running = run_view(0, RunStatus.SUCCEEDED, t0), run_view(1, RunStatus.SOLVING, t0)
    solve = SolveView(
        id=uuid4(), owner="o", status=SolveStatus.RUNNING, repo_url="r", ref=None, issue=IssueSpec(title="t"),
        models=["m"], attempts_per_model=1, max_parallel=2, agent_config=None, limits=Limits(), setup_command=None,
        test_command=None, callback_url=None, external_ref=None, execution_ref=None, champion_run_id=None,
        error=None, created_at=t0, updated_at=t0, started_at=t0, finished_at=None, runs=[done, running],
    )  # fmt: skip

    def status(run: RunView, seconds: float, value: str) -> EventView:
        at = t0 + timedelta(seconds=seconds)
        return EventView(seq=0, solve_id=solve.id, run_id=run.id, at=at, kind=EventKind.STATUS, message=value,
                         data={"status": value})  # fmt: skip

    events = [
        status(done, 0, "launching"), status(done, 1, "solving"), status(done, 5, "verifying"),
        status(done, 6, "succeeded"), status(running, 2, "launching"), status(running, 4, "solving"),
    ]  # fmt: skip
    line = views.timeline(solve, events, now=t0 + timedelta(seconds=10))
    first, second = line.lanes
    assert [(s.phase, s.x, s.width) for s in first.segments] == [
        ("launch", 0.0, 100.0),
        ("agent", 100.0, 400.0),
        ("verify", 500.0, 100.0),
    ]
    assert [(s.phase, s.x, s.width) for s in second.segments] == [("launch", 200.0, 200.0), ("agent", 400.0, 600.0)]


def test_only_web_links_are_links_and_replays_are_named_by_file() -> None:
    assert href("https://github.com/o/r/issues/1") == "https://github.com/o/r/issues/1"
    assert href("javascript:alert(1)") == "#"
    assert href(None) == "#"
    assert model_label("replay:/a/b/fix.yaml") == "replay:fix.yaml"
    assert model_label("anthropic/claude") == "anthropic/claude"


def test_runs_are_counted_once_by_what_they_came_to() -> None:
    """Failed means its tests failed or the run failed; no patch, untested and cancelled are not failures."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    came_to = [
        (RunStatus.SUCCEEDED, Outcome.TESTS_PASSED),
        (RunStatus.SUCCEEDED, Outcome.TESTS_FAILED),
        (RunStatus.FAILED, Outcome.NO_PATCH),
        (RunStatus.SUCCEEDED, Outcome.NO_PATCH),
        (RunStatus.SUCCEEDED, Outcome.UNTESTED),
        (RunStatus.CANCELLED, Outcome.NO_PATCH),
        (RunStatus.SOLVING, Outcome.PENDING),
    ]
    runs = [
        run_view(i, status, t0).model_copy(update={"outcome": outcome}) for i, (status, outcome) in enumerate(came_to)
    ]
    counts = views.run_counts(runs)
    assert (counts.passed, counts.failed, counts.untested, counts.no_patch, counts.cancelled, counts.running) == (
        1, 2, 1, 1, 1, 1,
    )  # fmt: skip
    assert counts.summary == "1 passed, 2 failed, 1 untested, 1 no patch, 1 cancelled, 1 running"
    assert views.run_counts(runs[:1] + runs[3:4]).summary == "1 passed, 1 no patch"
    assert views.run_counts([]).summary == "no runs"
