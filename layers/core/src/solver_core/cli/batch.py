"""`solver batch`: a file of SWE-bench-shaped instances in, preds.json (and with --evaluate,
report.json) out, with a live view of the instances and resume on a second run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from solver_core.batch.evaluate import Evaluator, pending_evaluations
from solver_core.batch.instances import (
    Instance,
    InstancesFileError,
    Problem,
    instance_image,
    load_instances,
    parse_slice,
    select,
)
from solver_core.batch.outputs import InstanceRecord, Outcome
from solver_core.batch.requests import BatchOptions, build_request
from solver_core.batch.runner import BatchRunner
from solver_core.cli import remote_batch
from solver_core.cli.common import console, ensure_ready, local_owner, open_container
from solver_core.cli.render import validation_message
from solver_core.cli.serve import RemoteAuth, remote_signer
from solver_core.cli.session import run_agent_in_child
from solver_core.errors import ConfigurationError, SolverError
from solver_core.models import DEFAULT_REPRODUCE_PATH, Limits, VerifyIn
from solver_core.rules import RequestPolicy
from solver_core.settings import Settings, local_cli_settings

POLL_S = 0.5
SHOWN_ROWS = 25
STYLE = {
    Outcome.PATCH: "green",
    Outcome.NO_PATCH: "yellow",
    Outcome.INFRA_ERROR: "red",
    Outcome.ERROR: "red",
    Outcome.RUNNING: "cyan",
}


def batch(  # noqa: PLR0917 - a typer command takes its options as parameters
    instances_file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Instances as JSONL or a JSON list (SWE-bench's fields)."),
    ],
    model: Annotated[
        list[str], typer.Option("--model", help="A litellm model, or replay:PATH (a file, or a folder of <id>.yaml).")
    ],
    output: Annotated[Path, typer.Option("--output", help="Where preds.json, batch.json and reports go.")] = Path(
        "batch-output"
    ),
    attempts: Annotated[int, typer.Option(min=1, help="Attempts per model for each instance.")] = 1,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Instances at the same time.")] = 1,
    max_parallel: Annotated[int, typer.Option(min=1, help="Runs at the same time within an instance.")] = 3,
    name: Annotated[str | None, typer.Option(help="model_name_or_path in preds.json (default: the models).")] = None,
    sandbox: Annotated[str, typer.Option(help="local, docker or e2b.")] = "local",
    step_limit: Annotated[int, typer.Option(min=1)] = 50,
    cost_limit: Annotated[float, typer.Option(help="USD per attempt.")] = 3.0,
    time_limit: Annotated[int, typer.Option(help="Seconds per attempt.")] = 3600,
    chunk_steps: Annotated[int | None, typer.Option(min=1, help="Stop and resume every N steps.")] = None,
    processes: Annotated[
        bool, typer.Option("--processes", help="Run each attempt's agent loop in its own process (scales with cores).")
    ] = False,
    cost_limit_total: Annotated[
        float | None, typer.Option(min=0, help="Start no new instance once the batch has cost this much (USD).")
    ] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only instance ids matching this regex.")] = None,
    slice_: Annotated[str | None, typer.Option("--slice", help="A:B, after --filter (Python slice bounds).")] = None,
    redo: Annotated[bool, typer.Option("--redo", help="Run every instance again, finished or not.")] = False,
    reproduce: Annotated[
        bool,
        typer.Option("--reproduce", help="Ask each attempt for a reproduction script; rank by the scripts passed."),
    ] = False,
    reproduce_path: Annotated[
        str, typer.Option(help="Where the script goes, relative to the repository root.")
    ] = DEFAULT_REPRODUCE_PATH,
    reproduce_command: Annotated[
        str | None, typer.Option(help="How the script runs from the repository root (default: python PATH).")
    ] = None,
    selector_model: Annotated[
        str | None,
        typer.Option(
            help="A model that picks among candidates tied on the tests and consensus (replay:PATH too; "
            "a folder replays <id>.yaml per instance)."
        ),
    ] = None,
    verify_in: Annotated[
        VerifyIn,
        typer.Option(
            help="fresh_sandbox: the tests run in a new sandbox with only the patch applied; "
            "same_sandbox: faster, in the agent's sandbox, and trusts the agent."
        ),
    ] = VerifyIn.FRESH_SANDBOX,
    no_tests: Annotated[
        bool,
        typer.Option("--no-tests", help="Detect no test command; run no tests (but an instance's test_command)."),
    ] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Run the valid instances anyway.")] = False,
    evaluate: Annotated[
        bool, typer.Option("--evaluate", help="Run each champion against the hidden tests; write report.json.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of the live view.")] = False,
    remote: Annotated[
        str | None,
        typer.Option(help="Run the batch on a deployed stack (its API URL with the stage): POST /batches."),
    ] = None,
    remote_auth: Annotated[
        RemoteAuth, typer.Option(help="How --remote requests authenticate (as `solver serve --remote`).")
    ] = RemoteAuth.IAM,
    region: Annotated[str | None, typer.Option(help="AWS region of --remote (default: from its URL).")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(min=1, max=1000, help="With --remote: instances at once (default: --workers).")
    ] = None,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="With --remote: cancel the batch this command started.")
    ] = False,
    poll_s: Annotated[float, typer.Option(hidden=True, min=0)] = 5.0,
) -> None:
    """Solve every instance of a benchmark or backlog; resume by running the same command again."""
    check_options(sandbox, filter_, slice_)
    settings = local_cli_settings(sandbox=sandbox)
    try:
        limits = Limits(step_limit=step_limit, cost_limit_usd=cost_limit, time_limit_s=time_limit)
    except ValidationError as exc:
        console.print(f"[red]invalid limits:[/]\n{escape(validation_message(exc))}")
        raise typer.Exit(2) from exc
    if remote is not None:
        local_only = {
            "--cost-limit-total": cost_limit_total is not None, "--evaluate": evaluate, "--redo": redo,
            "--processes": processes, "--chunk-steps": chunk_steps is not None, "--sandbox": sandbox != "local",
        }  # fmt: skip
        refuse_local_only([flag for flag, given in local_only.items() if given])
        remote_options = remote_batch.RemoteOptions(
            models=model, attempts=attempts, max_concurrency=max_concurrency or workers, max_parallel=max_parallel,
            limits=limits.model_dump(mode="json"), name=name, poll_s=poll_s, reproduce=reproduce,
            reproduce_path=reproduce_path, reproduce_command=reproduce_command, selector_model=selector_model,
            verify_in=verify_in, detect_tests=not no_tests,
        )  # fmt: skip
        instances = select(read_remote(instances_file, skip_invalid), pattern=filter_, window=slice_)
        run_remote(remote, remote_auth, region, instances, remote_options, output, cancel=cancel, as_json=as_json)
        return
    if cancel:
        raise typer.BadParameter("only with --remote (locally, Ctrl-C stops a batch)", param_hint="--cancel")
    options = BatchOptions(
        models=model,
        output=output,
        name=name or "+".join(model),
        attempts=attempts,
        workers=workers,
        max_parallel=max_parallel,
        limits=limits,
        sandbox=sandbox,
        cost_limit_total=cost_limit_total,
        redo=redo,
        owner=local_owner(),
        reproduce=reproduce,
        reproduce_path=reproduce_path,
        reproduce_command=reproduce_command,
        selector_model=selector_model,
        verify_in=verify_in,
        detect_tests=not no_tests,
    )
    chosen = select(read_valid(instances_file, options, RequestPolicy.from_settings(settings), skip_invalid),
                    pattern=filter_, window=slice_)  # fmt: skip
    if not chosen:
        console.print("[yellow]no instances to run (check --filter and --slice)[/]")
    ensure_ready(settings, [*model, *filter(None, [selector_model])])  # a missing key stops here, before any start
    if sandbox == "e2b" and chosen:
        require_templates(settings, chosen, instances_file)
    container = open_container(settings)
    # --processes: one process per attempt's agent loop (all its steps in one invocation), so the
    # loops of many attempts are not bound by one interpreter's GIL.
    steps_per_process = chunk_steps or (step_limit if processes else None)
    invoke = (lambda rid: run_agent_in_child(rid, steps_per_process, sandbox)) if steps_per_process else None
    evaluator = Evaluator(container, output) if evaluate else None
    printer: AfterInstance | None = _json_line if as_json else None
    runner = BatchRunner(
        container,
        options,
        chosen,
        invoke_agent=invoke,
        after_instance=_after(evaluator, printer),
    )
    try:
        _run(runner, quiet=as_json)
        if evaluator is not None:
            for instance in pending_evaluations(output, chosen):  # finished before, never evaluated
                evaluator.evaluate(instance, runner.state.record(instance.instance_id))
            evaluator.write_report(runner.instances, runner.state, runner.patches)
    finally:
        container.close()
    state = runner.state
    if as_json:
        typer.echo(json.dumps({"event": "batch", **state.model_dump(mode="json", exclude={"instances"})}))
    else:
        _print_summary(runner, evaluator is not None)
    unfinished = [r for r in state.instances.values() if not r.outcome.final]
    raise typer.Exit(1 if unfinished else 0)


def require_templates(settings: Settings, instances: list[Instance], path: Path) -> None:
    """On e2b each instance starts from the template built from its image (docs/architecture.md,
    "e2b templates from images"): a missing one stops the batch here, before anything starts."""
    from solver_core.sandbox import template

    images = {template.e2b_template_name(image): image for image in (instance_image(i) for i in instances)}
    key = settings.e2b_api_key.get_secret_value() if settings.e2b_api_key else None
    try:
        absent = template.missing(list(images), api_key=key, api_url=settings.e2b_api_url)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    if absent:
        example = f"{images[absent[0]]} -> {absent[0]}"
        console.print(
            f"[red]{len(absent)} of {len(images)} e2b template(s) do not exist ({escape(example)}); build them: "
            f"solver template build --from-instances {escape(str(path))}[/]",
            soft_wrap=True,
        )
        raise typer.Exit(2)


def check_options(sandbox: str, filter_: str | None, slice_: str | None) -> None:
    if sandbox not in {"local", "docker", "e2b"}:
        raise typer.BadParameter("must be local, docker or e2b", param_hint="--sandbox")
    if filter_ is not None:
        try:
            re.compile(filter_)
        except re.error as exc:
            raise typer.BadParameter(f"not a regular expression: {exc}", param_hint="--filter") from exc
    if slice_ is not None:
        try:
            parse_slice(slice_)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--slice") from exc


def read_remote(path: Path, skip_invalid: bool) -> list[Instance]:
    """The instances, checked field by field here; the deployment checks the solves they become."""
    try:
        loaded = load_instances(path)
    except (InstancesFileError, UnicodeDecodeError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc
    for problem in loaded.problems:
        console.print(f"[red]{escape(str(problem))}[/]")
    if loaded.problems and not skip_invalid:
        console.print(
            f"[red]{len(loaded.problems)} invalid instance(s): nothing was sent (--skip-invalid sends the rest)[/]"
        )
        raise typer.Exit(2)
    return [instance for _, instance in loaded.instances]


def run_remote(  # noqa: PLR0917 - the command's remote options, passed on
    remote: str,
    auth: RemoteAuth,
    region: str | None,
    instances: list[Instance],
    options: remote_batch.RemoteOptions,
    output: Path,
    *,
    cancel: bool,
    as_json: bool,
) -> None:
    """Start (or find, when the same command ran before) the batch on the stack, follow it, write
    preds.json and batch.json. Ctrl-C stops following; the batch goes on (`--cancel` cancels it)."""
    try:
        api = remote_batch.RemoteApi(remote, remote_signer(remote, auth, region=region, settings=Settings()))
        batch_id, created = remote_batch.start(api, instances, options)
        if cancel:
            answer = remote_batch.cancel(api, batch_id)
            console.print(f"batch {batch_id} cancelled: {answer['changed']} unfinished solve(s) cancelled")
            return
        console.print(
            f"batch {batch_id} {'started' if created else 'already started: following it'} ({len(instances)} instances)"
        )
        try:
            batch = remote_batch.follow(api, batch_id, options, as_json=as_json)
        except KeyboardInterrupt:
            console.print(f"[yellow]stopped following batch {batch_id}; it goes on. Run the same command to follow it "
                          "again, with --cancel to cancel it[/]")  # fmt: skip
            raise typer.Exit(130) from None
        preds = remote_batch.predictions(api, batch_id)
    except SolverError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        for detail in exc.details:
            console.print(f"[red]  {escape(str(detail.get('message')))}[/]")
        raise typer.Exit(2 if isinstance(exc, ConfigurationError) else 1) from exc
    remote_batch.save(output, batch, preds)
    predicted = len(json.loads(preds))
    console.print(
        f"{predicted}/{batch.counts.total} instance(s) in {output / 'preds.json'}   batch: {output / 'batch.json'}"
    )
    raise typer.Exit(0 if batch.status == "finished" and predicted == batch.counts.total else 1)


def read_valid(path: Path, options: BatchOptions, policy: RequestPolicy, skip_invalid: bool) -> list[Instance]:
    """Every instance, checked (fields, then the solve it becomes) before anything starts."""
    try:
        loaded = load_instances(path)
    except (InstancesFileError, UnicodeDecodeError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc
    problems = list(loaded.problems)
    valid = []
    for where, instance in loaded.instances:
        try:
            build_request(instance, options, policy)
        except ValidationError as exc:
            message = validation_message(exc).strip().replace("\n", ";")
            problems.append(Problem(where, instance.instance_id, f"as a solve: {message}"))
            continue
        valid.append(instance)
    if problems:
        for problem in problems:
            console.print(f"[red]{escape(str(problem))}[/]")
        if not skip_invalid:
            console.print(
                f"[red]{len(problems)} invalid instance(s): nothing was run (--skip-invalid runs the rest)[/]"
            )
            raise typer.Exit(2)
        console.print(f"[yellow]skipping {len(problems)} invalid instance(s)[/]")
    return valid


def _json_line(instance: Instance, record: InstanceRecord) -> None:
    typer.echo(json.dumps({"event": "instance", **record.model_dump(mode="json")}))


AfterInstance = Callable[[Instance, InstanceRecord], None]


def _after(evaluator: Evaluator | None, printer: AfterInstance | None) -> AfterInstance:
    def after(instance: Instance, record: InstanceRecord) -> None:
        if evaluator is not None and record.outcome.final:
            evaluator.evaluate(instance, record)
        if printer is not None:
            printer(instance, record)

    return after


def _run(runner: BatchRunner, *, quiet: bool) -> None:
    worker = threading.Thread(target=runner.run, name="batch")
    worker.start()
    try:
        if quiet:
            while worker.is_alive():
                worker.join(POLL_S)
        else:
            _live(runner, worker)
    except KeyboardInterrupt:
        _interrupt(runner)
    worker.join()


def _interrupt(runner: BatchRunner) -> None:
    """Ctrl-C: start nothing more, kill the running instances' sandboxes, keep batch.json, and
    leave at once. The same command resumes them from their runs' checkpoints."""
    runner.stop()
    console.print("[yellow]interrupted: stopping; run the same command again to resume[/]")
    sandboxes = runner.orchestrator.pipeline.deps.sandboxes
    for solve_id in runner.running_solves():
        with contextlib.suppress(SolverError):
            for box in sandboxes.list({"app": "solver", "solve_id": str(solve_id)}):
                sandboxes.kill(box.id)
    with contextlib.suppress(Exception):
        runner.save()
    os._exit(130)


def _live(runner: BatchRunner, worker: threading.Thread) -> None:
    started = (time.monotonic(), datetime.now(UTC))
    with Live(_table(runner, started), console=console, refresh_per_second=2, transient=True) as live:
        while worker.is_alive():
            worker.join(POLL_S)
            live.update(_table(runner, started))


def refuse_local_only(flags: list[str]) -> None:
    """With --remote, options that only a local batch honours are an error, never silently dropped."""
    if flags:
        raise typer.BadParameter(
            f"{', '.join(flags)} only apply to a local batch; with --remote the deployment runs the instances "
            "with its own settings (its sandbox, budgets and limits)",
            param_hint="--remote",
        )


def eta_minutes(elapsed_s: float, finished: int, remaining: int) -> float | None:
    """Minutes left at this command's pace: the wall time per instance finished so far by this
    command (its workers run side by side, so that already counts them) times those left."""
    if finished <= 0 or remaining <= 0:
        return None
    return elapsed_s / finished * remaining / 60


def _table(runner: BatchRunner, started: tuple[float, datetime]) -> Table:
    state = runner.state
    records = [state.record(i.instance_id) for i in runner.instances]
    done = [r for r in records if r.outcome.final]
    running = [r for r in records if r.outcome is Outcome.RUNNING]
    failed = [r for r in records if r.outcome in {Outcome.INFRA_ERROR, Outcome.ERROR}]
    # Instances finished by this command, not by an earlier one that this one resumes.
    finished_now = [r for r in done if r.finished_at and r.finished_at >= started[1]]
    remaining = len(records) - len(done) - len(failed)
    minutes = eta_minutes(time.monotonic() - started[0], len(finished_now), remaining)
    eta = f", ETA {minutes:.1f} min" if minutes is not None else ""
    title = (
        f"batch {escape(state.name)}: {len(done)}/{len(records)} done, {len(running)} running, "
        f"{len(failed)} failed, ${runner.spent():.4f}{eta}"
    )
    table = Table(title=title, title_justify="left")
    for column in ("instance", "outcome", "runs", "cost", "time", "note"):
        table.add_column(column, overflow="fold")
    ordered = sorted(records, key=lambda r: (r.outcome is not Outcome.RUNNING, r.outcome.final))
    for record in ordered[:SHOWN_ROWS]:
        style = STYLE.get(record.outcome, "dim")
        note = escape((record.error or "")[:60])
        outcome = f"[{style}]{record.outcome.value}[/]"
        runs, cost, took = str(record.runs or ""), f"${record.cost_usd:.4f}", f"{record.duration_s:.0f}s"
        table.add_row(escape(record.instance_id), outcome, runs, cost, took, note)
    return table


def _print_summary(runner: BatchRunner, evaluated: bool) -> None:
    state = runner.state
    console.print(_table(runner, (time.monotonic(), datetime.now(UTC))))  # no ETA: it is over
    counts = ", ".join(f"{k} {v}" for k, v in state.counts.items() if v)
    console.print(f"{counts}; cost ${state.cost_usd:.4f}")
    out = runner.options.output
    console.print(f"predictions: {out / 'preds.json'}   state: {out / 'batch.json'}")
    if evaluated:
        console.print(f"evaluation:  {out / 'report.json'}")
