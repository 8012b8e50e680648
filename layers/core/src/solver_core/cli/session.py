"""Running a solve from the command line: the local orchestrator in a worker thread, a live table
of runs in the main thread, Ctrl-C to cancel, and the champion's patch at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from uuid import UUID

from solver_core.artifacts import keys
from solver_core.cli.common import console, local_owner
from solver_core.cli.render import live_runs
from solver_core.errors import ArtifactNotFound, RunError, error_class
from solver_core.models import SolveView
from solver_core.wiring import Container


def execute(container: Container, solve: SolveView, *, chunk_steps: int | None, quiet: bool) -> SolveView:
    """Run every attempt (at most max_parallel at once) and pick the champion."""
    sandbox = container.settings.sandbox
    invoke = (lambda rid: run_agent_in_child(rid, chunk_steps, sandbox)) if chunk_steps else None
    orchestrator = container.local_orchestrator(invoke_agent=invoke)
    worker = threading.Thread(target=orchestrator.execute_or_fail, args=(solve.id,), name="solve")
    worker.start()
    try:
        live_runs(container, solve, worker, quiet=quiet)
    except KeyboardInterrupt:
        console.print("[yellow]cancelling: stopping the runs and killing their sandboxes…[/]")
        container.cancel_service(orchestrator).cancel(local_owner(), solve.id, "cancelled from the command line")
        worker.join()
    return container.runs.solve(solve.id)


def run_agent_in_child(run_id: UUID, max_steps: int, sandbox: str) -> bool:
    """One RunAgent invocation in a fresh process; its typed errors come back as the same types."""
    command = [sys.executable, "-m", "solver_core.cli", "internal", "run-agent", str(run_id)]
    env = os.environ | {"SOLVER_SANDBOX": sandbox}
    done = subprocess.run(
        [*command, "--max-steps", str(max_steps)], capture_output=True, text=True, env=env, check=False
    )
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise RunError(f"the agent process failed: {done.stderr.strip()[-500:]}") from exc
    if "error" in answer:
        raise (error_class(answer["error"]) or RunError)(answer.get("message", answer["error"]))
    return bool(answer["done"])


def champion_patch(container: Container, solve: SolveView) -> str | None:
    if solve.champion_run_id is None:
        return None
    try:
        return container.artifacts.get(keys.champion_patch(solve.id)).decode(errors="replace")
    except ArtifactNotFound:
        return None
