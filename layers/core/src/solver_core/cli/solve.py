"""`solver solve`: one attempt on this machine, with live progress, a summary and `--json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from pydantic import ValidationError
from rich.markup import escape

from solver_core.artifacts import keys
from solver_core.cli.common import console, local_owner, open_container
from solver_core.cli.render import follow_events, print_summary, validation_message
from solver_core.errors import ArtifactNotFound, RunError, SolverError, error_class
from solver_core.models import SolveRequest, SolveView
from solver_core.presenters import SolveWithPatch, solve_out
from solver_core.rules import RequestPolicy
from solver_core.services.champion import SolveFlow
from solver_core.settings import local_cli_settings
from solver_core.status import SolveStatus
from solver_core.wiring import Container


def solve(  # noqa: PLR0917 - a typer command takes its options as parameters
    repo: Annotated[str, typer.Argument(help="A local git repository path or an https URL.")],
    model: Annotated[str, typer.Option("--model", help="A litellm model name, or replay:PATH.")],
    ref: Annotated[str | None, typer.Option(help="Branch, tag or commit; the default branch if omitted.")] = None,
    issue_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="The issue, as Markdown.")
    ] = None,
    issue: Annotated[str | None, typer.Option(help="The issue text.")] = None,
    title: Annotated[str | None, typer.Option(help="The issue title (default: its first line).")] = None,
    sandbox: Annotated[str, typer.Option(help="local, docker or e2b.")] = "local",
    step_limit: Annotated[int, typer.Option(min=1)] = 50,
    cost_limit: Annotated[float, typer.Option(help="USD.")] = 3.0,
    time_limit: Annotated[int, typer.Option(help="Seconds.")] = 3600,
    setup_command: Annotated[str | None, typer.Option()] = None,
    test_command: Annotated[str | None, typer.Option()] = None,
    chunk_steps: Annotated[int | None, typer.Option(min=1, help="Stop and resume every N steps.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the solve as JSON.")] = False,
) -> None:
    """Run one agent attempt on REPO for an issue and show the resulting patch."""
    if sandbox not in {"local", "docker", "e2b"}:
        raise typer.BadParameter("must be local, docker or e2b", param_hint="--sandbox")
    settings = local_cli_settings(sandbox=sandbox)
    data: dict[str, object] = {
        "repo_url": str(Path(repo).resolve()) if Path(repo).exists() else repo,
        "ref": ref,
        "issue": issue_fields(issue_text(issue_file, issue), title),
        "models": [model],
        "max_parallel": 1,
        "limits": {"step_limit": step_limit, "cost_limit_usd": cost_limit, "time_limit_s": time_limit},
        "setup_command": setup_command,
        "test_command": test_command,
    }
    request = build_request(data, RequestPolicy.from_settings(settings))
    container = open_container(settings)
    try:
        started = container.solves.start(local_owner(), request).solve
        final = execute(container, started, chunk_steps=chunk_steps, quiet=as_json)
        patch = champion_patch(container, final)
        if as_json:
            shaped = SolveWithPatch(**solve_out(final, container.artifacts).model_dump(), patch=patch)
            typer.echo(shaped.model_dump_json(indent=2))
        else:
            print_summary(final, container, patch)
    finally:
        container.close()
    raise typer.Exit(0 if final.status is SolveStatus.SUCCEEDED else 1)


def issue_text(issue_file: Path | None, issue: str | None) -> str:
    if (issue_file is None) == (issue is None):
        raise typer.BadParameter("give exactly one of --issue-file and --issue")
    return issue_file.read_text() if issue_file else str(issue)


def issue_fields(text: str, title: str | None) -> dict[str, str]:
    """Title and body from Markdown: the first line (without '#') is the title unless one is given."""
    lines = text.strip().splitlines() or [""]
    if title is not None:
        return {"title": title[:300], "body": text.strip()}
    return {"title": lines[0].lstrip("#").strip()[:300], "body": "\n".join(lines[1:]).strip()}


def build_request(data: dict[str, object], policy: RequestPolicy) -> SolveRequest:
    try:
        return SolveRequest.model_validate(data, context=policy)
    except ValidationError as exc:
        console.print(f"[red]invalid request:[/]\n{escape(validation_message(exc))}")
        raise typer.Exit(2) from exc


def execute(container: Container, solve: SolveView, *, chunk_steps: int | None, quiet: bool) -> SolveView:
    """Run the solve's run to its end in a worker thread while the main thread shows events;
    Ctrl-C cancels (the run stops at its next check, its sandbox is killed)."""
    pipeline = container.pipeline()
    run_id = solve.runs[0].id
    sandbox = container.settings.sandbox
    invoke = (lambda rid: run_agent_in_child(rid, chunk_steps, sandbox)) if chunk_steps else None
    worker = threading.Thread(target=pipeline.run_to_end, args=(run_id,), kwargs={"invoke_agent": invoke})
    worker.start()
    try:
        follow_events(container, solve, worker, quiet=quiet)
    except KeyboardInterrupt:
        console.print("[yellow]cancelling…[/]")
        cancel(container, solve)
        worker.join()
    return SolveFlow(container.runs, container.events, container.artifacts).run_and_finish(solve.id)


def cancel(container: Container, solve: SolveView) -> None:
    try:
        container.runs.move_solve(solve.id, SolveStatus.CANCELLING)
    except SolverError:
        return
    pipeline = container.pipeline()
    for run in solve.runs:
        pipeline.release(run.id)


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
