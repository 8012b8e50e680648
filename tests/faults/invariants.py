"""What must hold after any fault, checked the same way by every fault test.

- every run reaches a terminal state, or a resumable one (queued, or failed as retryable with
  attempts left);
- the trajectory exists up to the last completed step (the command of the run's last `step` event
  is in its stored trajectory);
- no sandbox is left alive, and no process the solve started outlives it;
- no secret appears in any stored artifact, event or database row;
- the solve's status agrees with its runs.

`check` collects every violation and fails once, listing them all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select

from solver_core.artifacts import keys
from solver_core.db.schema import EventRow, RunRow, SolveRow
from solver_core.errors import ArtifactNotFound
from solver_core.models import RunView, SolveView
from solver_core.status import RUN_TERMINAL, EventKind, RunStatus, SolveStatus
from solver_core.wiring import Container


def check(
    container: Container,
    solve_id: UUID,
    *,
    secrets: Sequence[str],
    live_sandboxes: Callable[[], Iterable[str]],
    max_attempts: int,
    markers: Sequence[str] = (),
) -> SolveView:
    """Every invariant, once the solve's execution has ended; returns the solve."""
    solve = container.runs.solve(solve_id)
    problems = [
        *runs_settled(solve),
        *trajectories_cover_steps(container, solve),
        *[f"sandbox {box} is still alive" for box in live_sandboxes()],
        *[f"process {pid} ({line}) outlived the solve" for pid, line in stray_processes(markers)],
        *secrets_stored(container, secrets),
        *status_agrees(container, solve, max_attempts),
    ]
    assert not problems, "invariants violated:\n  " + "\n  ".join(problems)
    return solve


def resumable(run: RunView, max_attempts: int) -> bool:
    """Queued, or failed as retryable with attempts left: the sweeper (or the local orchestrator)
    resumes it while its solve is running or failed."""
    return run.status is RunStatus.QUEUED or (
        run.status is RunStatus.FAILED and run.retryable and run.attempt + 1 < max_attempts
    )


def runs_settled(solve: SolveView) -> list[str]:
    """No run may be left in flight (launching … verifying) once the execution has ended."""
    return [
        f"run {run.index} is stuck in {run.status.value}"
        for run in solve.runs
        if run.status not in RUN_TERMINAL and run.status is not RunStatus.QUEUED
    ]


def trajectories_cover_steps(container: Container, solve: SolveView) -> list[str]:
    problems = []
    events = container.events.read(solve.owner, solve.id, limit=1000)
    for run in solve.runs:
        # The last step that ran a command (a step whose query failed ran none).
        steps = [e for e in events if e.run_id == run.id and e.kind is EventKind.STEP and (e.data or {}).get("actions")]
        if not steps:
            continue
        key = run.artifacts.get("trajectory")
        if key is None:
            problems.append(f"run {run.index} took {len(steps)} steps but has no trajectory")
            continue
        try:
            trajectory = json.loads(container.artifacts.get(key))
        except ArtifactNotFound:
            problems.append(f"run {run.index}: its trajectory {key} is missing from the store")
            continue
        commands = [
            action.get("command")
            for message in trajectory["messages"]
            for action in (message.get("extra") or {}).get("actions", [])
        ]
        last = steps[-1].data or {}
        for action in last.get("actions") or []:
            # Events keep the first 1500 characters of a command; the trajectory keeps all of it.
            if not any(str(c).startswith(action["command"]) for c in commands):
                problems.append(f"run {run.index}: its last step ({action['command'][:60]!r}) is not in its trajectory")
    return problems


def stray_processes(markers: Sequence[str]) -> list[tuple[int, str]]:
    """Processes whose command line carries one of the markers (commands the solve ran)."""
    if not markers:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(marker in line for marker in markers):
            found.append((int(entry.name), line[:120]))
    return found


def secrets_stored(container: Container, secrets: Sequence[str]) -> list[str]:
    """Grep every artifact of the store, and every row of solves, runs and events."""
    wanted = [s for s in secrets if s]
    problems = []
    for key in container.artifacts.list(""):
        data = container.artifacts.get(key)
        problems += [f"artifact {key} holds secret {_label(s)}" for s in wanted if s.encode() in data]
    with container.sessions() as session:
        for table in (SolveRow, RunRow, EventRow):
            for row in session.execute(select(table.__table__)).mappings():
                text = json.dumps(dict(row), default=str)
                problems += [f"a {table.__tablename__} row holds secret {_label(s)}" for s in wanted if s in text]
    return problems


def _label(secret: str) -> str:
    return f"{secret[:6]}…"  # never the whole secret, even in a failure message


def status_agrees(container: Container, solve: SolveView, max_attempts: int) -> list[str]:
    pending = [run.index for run in solve.runs if resumable(run, max_attempts)]
    queued = [run.index for run in solve.runs if run.status is RunStatus.QUEUED]
    status = solve.status
    if status in {SolveStatus.QUEUED, SolveStatus.CANCELLING}:
        return [f"the solve was left {status.value}"]
    if status is SolveStatus.RUNNING:
        return [] if pending else ["the solve is running but none of its runs will be resumed"]
    if status is SolveStatus.FAILED:  # FailSolve may leave runs to resume; a champion means success
        return ["the solve failed but names a champion"] if solve.champion_run_id is not None else []
    # Succeeded or cancelled: nothing of it runs again (the sweeper skips such solves' runs).
    problems = [f"the solve is {status.value} but run {i} is still queued" for i in queued]
    if status is SolveStatus.SUCCEEDED:
        problems += [f"the solve succeeded while run {i} waits for a retry" for i in pending if i not in queued]
        champion = next((r for r in solve.runs if r.id == solve.champion_run_id), None)
        if champion is None or champion.status is not RunStatus.SUCCEEDED or not champion.patch_stats:
            problems.append("the solve succeeded without a champion that succeeded with a patch")
        elif not container.artifacts.exists(keys.champion_patch(solve.id)):
            problems.append("the solve succeeded but its champion patch is not stored")
    return problems


def step_numbers(container: Container, solve: SolveView, run_id: UUID) -> list[int]:
    """The step numbers of a run's `step` events, in order."""
    events = container.events.read(solve.owner, solve.id, limit=1000)
    return [int((e.data or {})["step"]) for e in events if e.run_id == run_id and e.kind is EventKind.STEP]


def trajectory_commands(container: Container, run: RunView) -> list[str]:
    trajectory: dict[str, Any] = json.loads(container.artifacts.get(run.artifacts["trajectory"]))
    return [
        str(action.get("command"))
        for message in trajectory["messages"]
        for action in (message.get("extra") or {}).get("actions", [])
    ]
