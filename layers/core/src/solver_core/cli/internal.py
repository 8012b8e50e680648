"""`solver internal …`: one step of a run in a fresh process, the way a Lambda invocation runs it.

`solver solve --chunk-steps N` uses this to take the same resume-from-checkpoint path as a RunAgent
invocation that runs out of time budget.
"""

from __future__ import annotations

import json
from uuid import UUID

import typer

from solver_core.cli.common import open_container
from solver_core.errors import SolverError
from solver_core.settings import local_cli_settings
from solver_core.workflow.agent_step import Budget

app = typer.Typer(no_args_is_help=True, help="Run single steps of a run (used by `solver solve`).")


@app.command("run-agent")
def run_agent(run_id: UUID, max_steps: int = typer.Option(..., min=1)) -> None:
    """Continue a run's agent for at most MAX_STEPS steps; print {"done": …} or {"error": …}."""
    container = open_container(local_cli_settings(), settle=False)  # its parent process is alive
    try:
        done = container.pipeline().agent.run(run_id, Budget(max_steps=max_steps))
        typer.echo(json.dumps({"done": done}))
    except SolverError as exc:
        typer.echo(json.dumps({"error": type(exc).__name__, "message": exc.message}))
        raise typer.Exit(1) from exc
    finally:
        container.close()
