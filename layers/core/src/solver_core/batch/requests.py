"""Turning a batch's instances into solve requests, and a finished solve into an instance's outcome:
shared by `solver batch` and the cloud's POST /batches (light imports: the API functions use it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver_core import rules
from solver_core.batch.instances import Instance, swebench_image
from solver_core.batch.outputs import Outcome
from solver_core.errors import ReplayNotFound
from solver_core.models import DEFAULT_REPRODUCE_PATH, Limits, SolveRequest, SolveView, VerifyIn
from solver_core.status import RunStatus, SolveStatus

IMAGE_BACKENDS = frozenset({"docker", "e2b"})


@dataclass(frozen=True)
class BatchOptions:
    models: list[str]
    output: Path
    name: str
    attempts: int = 1
    workers: int = 1
    max_parallel: int = 3
    limits: Limits = field(default_factory=Limits)
    sandbox: str = "local"
    cost_limit_total: float | None = None
    redo: bool = False
    owner: str = "local:user"
    # Ask each attempt for a reproduction script (docs/architecture.md, "Choosing the champion").
    reproduce: bool = False
    reproduce_path: str = DEFAULT_REPRODUCE_PATH
    reproduce_command: str | None = None
    selector_model: str | None = None  # the judge; a `replay:` folder replays `<instance_id>.yaml` as the models do
    verify_in: VerifyIn = VerifyIn.FRESH_SANDBOX
    detect_tests: bool = True  # False: no test command detected (an instance's own test_command still runs)


def instance_models(models: list[str], instance_id: str) -> list[str]:
    """A `replay:` model that names a folder replays `<folder>/<instance_id>.yaml` for each instance."""
    resolved = []
    for model in models:
        path = Path(model.removeprefix(rules.REPLAY_PREFIX))
        if model.startswith(rules.REPLAY_PREFIX) and path.is_dir():
            file = path / f"{instance_id}.yaml"
            if not file.is_file():
                raise ReplayNotFound(f"the replay folder {path} has no {file.name} for this instance")
            resolved.append(f"{rules.REPLAY_PREFIX}{file}")
        else:
            resolved.append(model)
    return resolved


def instance_selector(options: BatchOptions, instance_id: str) -> str | None:
    """The judge for this instance (a `replay:` folder names one file per instance, as for the models)."""
    return instance_models([options.selector_model], instance_id)[0] if options.selector_model else None


def build_request(
    instance: Instance,
    options: BatchOptions,
    policy: rules.RequestPolicy,
    *,
    models: list[str] | None = None,
    selector_model: str | None = None,
) -> SolveRequest:
    """The instance's solve (`models` and `selector_model`: as `instance_models` resolved them for it).
    The hidden tests (test_patch, FAIL_TO_PASS, PASS_TO_PASS) are not part of it: the agent never sees
    them and they never choose the champion."""
    source = instance.source
    if not source.startswith(("https://", "http://")) and Path(source).exists():
        source = str(Path(source).resolve())
    image = instance.image or (swebench_image(instance.instance_id) if options.sandbox in IMAGE_BACKENDS else None)
    data: dict[str, Any] = {
        "repo_url": source,
        "ref": instance.base_commit,
        "issue": {"title": instance.instance_id, "body": instance.problem_statement},
        "models": models or options.models,
        "attempts_per_model": options.attempts,
        "max_parallel": options.max_parallel,
        "limits": options.limits.model_dump(),
        "setup_command": instance.setup_command,
        "test_command": instance.test_command,
        "external_ref": {"instance_id": instance.instance_id, "batch": options.name[:256]},
        "sandbox_image": image,
        "reproduce": options.reproduce,
        "reproduce_path": options.reproduce_path,
        "reproduce_command": options.reproduce_command,
        "selector_model": selector_model or options.selector_model,
        "verify_in": options.verify_in.value,
        "detect_tests": options.detect_tests,
    }
    return SolveRequest.model_validate(data, context=policy)


def solve_cost(solve: SolveView) -> float:
    return round(sum(r.cost_usd for r in solve.runs), 6)


def classify(solve: SolveView) -> tuple[Outcome, str | None]:
    """A finished solve's outcome. A run that failed for infrastructure reasons (retryable) makes
    the instance one to run again: it is never recorded as done with an empty patch."""
    if solve.status is SolveStatus.SUCCEEDED and solve.champion_run_id is not None:
        return Outcome.PATCH, None
    infra = [r for r in solve.runs if r.status is RunStatus.FAILED and r.retryable]
    if solve.status not in {SolveStatus.SUCCEEDED, SolveStatus.FAILED} or infra:
        reasons = "; ".join(f"run {r.index}: {r.error}" for r in infra) or solve.error or solve.status.value
        return (Outcome.ERROR if solve.status.is_cancelled else Outcome.INFRA_ERROR), reasons
    return Outcome.NO_PATCH, solve.error
