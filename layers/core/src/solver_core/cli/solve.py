"""`solver solve`: parallel attempts on this machine, a live table, the champion, and `--json`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from pydantic import ValidationError
from rich.markup import escape

from solver_core.cli.common import console, ensure_ready, local_owner, open_container
from solver_core.cli.render import print_summary, validation_message
from solver_core.cli.session import champion_patch, execute
from solver_core.errors import IllegalTransition, SolverError
from solver_core.messages import join
from solver_core.models import DEFAULT_BRANCH_PREFIX, DEFAULT_REPRODUCE_PATH, SolveRequest, SolveView, VerifyIn
from solver_core.presenters import SolveWithPatch, solve_out
from solver_core.rules import RequestPolicy
from solver_core.settings import Settings, local_cli_settings
from solver_core.status import Outcome, RunStatus, SolveStatus
from solver_core.wiring import Container
from solver_core.workflow import process_ref


def solve(  # noqa: PLR0917 - a typer command takes its options as parameters
    repo: Annotated[str, typer.Argument(help="A local git repository path or an https URL.")],
    model: Annotated[list[str], typer.Option("--model", help="A litellm model name, or replay:PATH (repeatable).")],
    ref: Annotated[str | None, typer.Option(help="Branch, tag or commit; the default branch if omitted.")] = None,
    issue_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="The issue, as Markdown.")
    ] = None,
    issue: Annotated[str | None, typer.Option(help="The issue text.")] = None,
    title: Annotated[str | None, typer.Option(help="The issue title (default: its first line).")] = None,
    issue_url: Annotated[str | None, typer.Option(help="The issue's URL, e.g. a GitHub issue to publish to.")] = None,
    sandbox: Annotated[str, typer.Option(help="local, docker or e2b.")] = "local",
    step_limit: Annotated[int, typer.Option(min=1)] = 50,
    cost_limit: Annotated[float, typer.Option(help="USD.")] = 3.0,
    time_limit: Annotated[int, typer.Option(help="Seconds.")] = 3600,
    setup_command: Annotated[str | None, typer.Option()] = None,
    test_command: Annotated[
        str | None, typer.Option(help="The tests to verify patches with (default: detected from the repository).")
    ] = None,
    no_tests: Annotated[bool, typer.Option("--no-tests", help="Detect no test command; run no tests.")] = False,
    verify_in: Annotated[
        VerifyIn,
        typer.Option(
            help="fresh_sandbox: the tests run in a new sandbox with only the patch applied; "
            "same_sandbox: faster, in the agent's sandbox, and trusts the agent."
        ),
    ] = VerifyIn.FRESH_SANDBOX,
    attempts: Annotated[int, typer.Option(min=1, help="Attempts per model (runs = models x attempts).")] = 1,
    max_parallel: Annotated[int, typer.Option(min=1, help="Runs at the same time.")] = 3,
    chunk_steps: Annotated[int | None, typer.Option(min=1, help="Stop and resume every N steps.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the solve as JSON.")] = False,
    publish_comment: Annotated[
        bool, typer.Option("--publish-comment", help="Comment the result on the issue.")
    ] = False,
    publish_pr: Annotated[bool, typer.Option("--publish-pr", help="Open a draft pull request on GitHub.")] = False,
    branch_prefix: Annotated[str, typer.Option(help="The pull request branch's prefix.")] = DEFAULT_BRANCH_PREFIX,
    selector_model: Annotated[
        str | None,
        typer.Option(help="A model that picks among candidates tied on the tests and consensus (replay:PATH too)."),
    ] = None,
    reproduce: Annotated[
        bool,
        typer.Option(
            "--reproduce",
            help="Ask each attempt for a reproduction script too, and rank candidates by the scripts they pass.",
        ),
    ] = False,
    reproduce_path: Annotated[
        str, typer.Option(help="Where the script goes, relative to the repository root.")
    ] = DEFAULT_REPRODUCE_PATH,
    reproduce_command: Annotated[
        str | None, typer.Option(help="How the script runs from the repository root (default: python PATH).")
    ] = None,
) -> None:
    """Run agent attempts on REPO for an issue, in parallel, and show the champion's patch."""
    if sandbox not in {"local", "docker", "e2b"}:
        raise typer.BadParameter("must be local, docker or e2b", param_hint="--sandbox")
    settings = local_cli_settings(sandbox=sandbox)
    data: dict[str, object] = {
        "repo_url": str(Path(repo).resolve()) if Path(repo).exists() else repo,
        "ref": ref,
        "issue": issue_fields(issue_text(issue_file, issue), title) | ({"url": issue_url} if issue_url else {}),
        "models": model,
        "attempts_per_model": attempts,
        "max_parallel": max_parallel,
        "limits": {"step_limit": step_limit, "cost_limit_usd": cost_limit, "time_limit_s": time_limit},
        "setup_command": setup_command,
        "test_command": test_command,
        "detect_tests": not no_tests,
        "verify_in": verify_in.value,
        "publish": publish_option(publish_comment, publish_pr, branch_prefix),
        "selector_model": selector_model,
        "reproduce": reproduce,
        "reproduce_path": reproduce_path,
        "reproduce_command": reproduce_command,
    }
    request = build_request(data, RequestPolicy.from_settings(settings))
    raise typer.Exit(solve_and_report(settings, request, chunk_steps=chunk_steps, as_json=as_json))


def solve_and_report(settings: Settings, request: SolveRequest, *, chunk_steps: int | None, as_json: bool) -> int:
    """Check the machine (the preflight), then start, run and show a solve; the exit code is 0 when
    a champion was chosen, 2 when the preflight or the request failed."""
    ensure_ready(settings, [*request.models, *filter(None, [request.selector_model])], request.repo_url)
    container = open_container(settings)
    try:
        started = container.solves.start(local_owner(), request).solve
        final = execute(container, started, chunk_steps=chunk_steps, quiet=as_json)
        show_result(container, final, as_json=as_json)
    finally:
        container.close()
    return exit_code(final)


def exit_code(solve: SolveView) -> int:
    """0 for a champion whose tests passed (or that had no tests to run), 1 otherwise: a patch that
    fails its tests is not a success."""
    good = {Outcome.TESTS_PASSED, Outcome.UNTESTED}
    return 0 if solve.status is SolveStatus.SUCCEEDED and solve.outcome in good else 1


def show_result(container: Container, final: SolveView, *, as_json: bool) -> None:
    patch = champion_patch(container, final)
    if as_json:
        shaped = SolveWithPatch(**solve_out(final, container.artifacts).model_dump(), patch=patch)
        typer.echo(shaped.model_dump_json(indent=2))
    else:
        print_summary(final, container, patch)
        print_publication(final)


def resume(
    solve_id: Annotated[UUID, typer.Argument(help="A solve left unfinished, e.g. by a killed `solver solve`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the solve as JSON.")] = False,
) -> None:
    """Continue an unfinished solve: its interrupted runs resume from their checkpoints in new sandboxes."""
    container = open_container(local_cli_settings())  # settles the solve if its process ended
    try:
        solve = container.solves.get(local_owner(), solve_id)
        refusal = resume_refusal(solve)
        if refusal:
            console.print(f"[red]{escape(refusal)}[/]")
            raise typer.Exit(2)
        requeue_interrupted(container, solve)
        final = execute(container, container.runs.solve(solve.id), chunk_steps=None, quiet=as_json)
        show_result(container, final, as_json=as_json)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        raise typer.Exit(1) from exc
    finally:
        container.close()
    raise typer.Exit(exit_code(final))


def resume_refusal(solve: SolveView) -> str | None:
    """Why a solve cannot be resumed, or None."""
    if solve.status in {SolveStatus.SUCCEEDED, SolveStatus.CANCELLED, SolveStatus.CANCELLING}:
        return f"solve {solve.id} is {solve.status.value}: there is nothing to resume"
    ref = process_ref.parse(solve.execution_ref)
    if ref is not None and process_ref.process_alive(ref):
        return f"solve {solve.id} is still running (process {ref.pid} on {ref.host})"
    if solve.status is SolveStatus.FAILED and not any(r.retryable for r in solve.runs):
        return f"solve {solve.id} failed and none of its runs can be retried"
    return None


def requeue_interrupted(container: Container, solve: SolveView) -> None:
    """Queue again every run that failed for a reason worth retrying (an interruption is one)."""
    for run in solve.all_runs:
        if run.status is RunStatus.FAILED and run.retryable:
            with contextlib.suppress(IllegalTransition):  # moved meanwhile
                container.runs.move(run.id, RunStatus.QUEUED)


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
        line = join(f"invalid request: {validation_message(exc)}", "fix the options named and run again", limit=2000)
        console.print(f"[red]{escape(line)}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc


def publish_option(comment: bool, pull_request: bool, branch_prefix: str) -> dict[str, object] | None:
    if not (comment or pull_request):
        return None
    return {"comment": comment, "pull_request": pull_request, "branch_prefix": branch_prefix}


def print_publication(solve: SolveView) -> None:
    done = solve.publication
    if done is None:
        return
    if done.comment is not None:
        console.print(f"issue comment:      {done.comment.url}")
    if done.pull_request is not None:
        console.print(f"draft pull request: {done.pull_request.url}")
    for error in done.errors:
        console.print(f"[red]publishing failed: {escape(error)}[/]")


def publish(solve_id: Annotated[UUID, typer.Argument(help="A finished solve that has a publish option.")]) -> None:
    """Publish (again) a finished solve to GitHub: updates its comment and pull request in place."""
    container = open_container(local_cli_settings())
    try:
        solve = container.solves.get(local_owner(), solve_id)
        if solve.publish is None or solve.status not in {SolveStatus.SUCCEEDED, SolveStatus.FAILED}:
            console.print("[red]only a finished solve started with --publish-comment or --publish-pr is published[/]")
            raise typer.Exit(2)
        container.flow().publish(solve.id)
        final = container.runs.solve(solve.id)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        raise typer.Exit(1) from exc
    finally:
        container.close()
    print_publication(final)
    raise typer.Exit(0 if final.publication and not final.publication.errors else 1)
