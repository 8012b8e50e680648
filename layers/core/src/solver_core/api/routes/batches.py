"""POST /batches, GET /batches/{id}, GET /batches/{id}/preds, POST /batches/{id}/cancel: cloud
batches, always the caller's own (docs/architecture.md, "Batches in the cloud")."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from pydantic import GetJsonSchemaHandler, RootModel, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from solver_core.api.errors import Unavailable, invalid_body
from solver_core.api.request import owner_of
from solver_core.api.routes.common import DepsGetter, documented, new_router
from solver_core.api.routes.read import RESPONSE_ENVELOPE_BYTES
from solver_core.api.routes.start import IDEMPOTENCY_KEY
from solver_core.artifacts import keys
from solver_core.batch.cloud import (
    MAX_FILE_INSTANCES,
    MAX_INPUT_FILE_BYTES,
    BatchCancelled,
    BatchCreated,
    BatchRequest,
    BatchView,
    input_prefix,
)
from solver_core.batch.instances import Instance, Loaded, parse_items, parse_jsonl
from solver_core.batch.requests import BatchOptions, build_request, instance_models, instance_selector
from solver_core.errors import ArtifactError, ArtifactNotFound, SolverError, ValidationFailed
from solver_core.models import SolveRequest
from solver_core.services.solves import CostBudget
from solver_core.status import SOLVE_TERMINAL
from solver_core.store import registry

if TYPE_CHECKING:
    from solver_core.api.deps import ApiDeps

log = logging.getLogger(__name__)

DESCRIPTION = """Start a batch: each instance (SWE-bench's fields: `instance_id`, `repo`, `base_commit`,
`problem_statement`, …) becomes a solve with `external_ref.instance_id`, and the batch state machine
runs at most `max_concurrency` of them at once.

Give the instances inline (`instances`, at most 500) or as a JSONL file in the artifacts bucket
(`instances_key`, under the caller's own folder `batch-inputs/<sha256(owner)[:32]>/`, at most 2,500). Every
instance is validated like a POST /solves body before anything is recorded: one bad instance is a
422 whose details name it (`item N` or `line N`, and its instance id), and nothing is created.
202 with the batch's id; an `Idempotency-Key` replays (200) or conflicts (409) as for solves."""


class BatchRequestBody(RootModel[dict[str, Any]]):
    """The POST /batches body as powertools sees it; the route validates it with BatchRequest under the
    deployment's policy, and the OpenAPI document shows BatchRequest's schema."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(BatchRequest.__pydantic_core_schema__)


def router(deps: DepsGetter) -> Router:
    api = new_router()

    @api.post(
        "/batches",
        summary="Start a batch of instances",
        description=DESCRIPTION,
        tags=["batches"],
        responses=documented(
            {202: (BatchCreated, "Accepted: the batch runs."), 200: (BatchCreated, "An idempotent replay.")},
            400, 401, 409, 413, 415, 422, 429, 503,
        ),
    )  # fmt: skip
    def start_batch(
        body: Annotated[BatchRequestBody, Body(description="the batch request")],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY, description="1-255 visible ASCII")
        ] = None,
    ) -> Response[BatchCreated]:
        d = deps()
        owner = owner_of(api.current_event)
        try:
            request = BatchRequest.model_validate(body.root, context=d.policy)
        except ValidationError as exc:
            raise invalid_body(exc) from exc
        if d.check_models is not None:
            d.check_models(request.models)
        solves = solve_requests(d, owner, request)
        daily = d.limits.owner_daily_cost_usd
        started = d.batches.create(
            owner, request, solves, idempotency_key, budget=CostBudget(daily) if daily is not None else None
        )
        batch = started.batch
        if batch.status == "running" and (started.created or batch.execution_ref is None):
            launch(d, batch, [i.model_dump(mode="json") for i in started.items])
        created = BatchCreated(id=batch.id, status=batch.status, total=batch.counts.total, created=started.created)
        headers = {"Location": f"/batches/{batch.id}"}
        if not started.created:
            headers["Idempotent-Replayed"] = "true"
        return Response(202 if started.created else 200, "application/json", created, headers=headers)

    @api.get(
        "/batches/<batch_id>",
        summary="A batch's progress: its instances' solves by status, patches, cost",
        tags=["batches"],
        responses=documented({200: (BatchView, "The batch.")}, 401, 404),
    )
    def get_batch(batch_id: UUID) -> BatchView:
        return deps().batches.get(owner_of(api.current_event), batch_id)

    @api.get(
        "/batches/<batch_id>/preds",
        summary="The batch's preds.json (SWE-bench predictions), so far",
        description="Keyed by instance id, for every instance whose solve reached a final outcome: "
        'its champion\'s patch, or `""` when the agents produced none. Instances that failed for '
        "infrastructure reasons are left out, never given an empty patch.",
        tags=["batches"],
        responses=documented(
            {
                200: (dict[str, Any], "preds.json."),
                303: (str, "preds.json is too large for a response: download it from the `Location` link."),
            },
            401,
            404,
        ),
    )
    def get_preds(batch_id: UUID) -> Response[str]:
        d = deps()
        return preds_response(d, owner_of(api.current_event), batch_id)

    @api.post(
        "/batches/<batch_id>/cancel",
        summary="Cancel a batch",
        description="Stops starting instances and cancels every unfinished solve of the batch. "
        "Idempotent: `changed` counts the solves this request cancelled (0 when repeated).",
        tags=["batches"],
        responses=documented({200: (BatchCancelled, "The batch after the request.")}, 401, 404, 415),
    )
    def cancel_batch(batch_id: UUID) -> BatchCancelled:
        d = deps()
        owner = owner_of(api.current_event)
        batch = d.batches.get(owner, batch_id)  # 404 before anything else for another's batch
        if d.batches.mark_cancelled(owner, batch_id) and d.batch_orchestrator is not None:
            try:
                d.batch_orchestrator.stop(batch_id, batch.execution_ref, "batch cancelled by request")
            except SolverError as exc:  # the solves are cancelled below anyway
                log.warning("could not stop the execution of batch %s: %s", batch_id, exc)
        service = d.cancel_service()
        changed = 0
        for solve in d.batches.solves(owner, batch_id):
            if solve.status not in SOLVE_TERMINAL:
                changed += int(service.cancel(owner, solve.id, "batch cancelled by request").changed)
        return BatchCancelled(changed=changed, batch=d.batches.get(owner, batch_id))

    return api


def solve_requests(d: ApiDeps, owner: str, request: BatchRequest) -> list[tuple[Instance, SolveRequest]]:
    """Every instance read and turned into its solve request, or a 422 naming each bad one."""
    loaded = read_instances(d, owner, request)
    field = "instances" if request.instances is not None else "instances_key"
    options = BatchOptions(
        models=list(request.models),
        output=Path(),  # build_request reads no output folder; the cloud batch writes none
        name=request.batch_name,
        attempts=request.attempts,
        max_parallel=request.max_parallel,
        limits=request.limits,
        sandbox=d.settings.sandbox,
        reproduce=request.reproduce,
        reproduce_path=request.reproduce_path,
        reproduce_command=request.reproduce_command,
        selector_model=request.selector_model,
        verify_in=request.verify_in,
        detect_tests=request.detect_tests,
    )
    details = [_problem(field, str(p), p.instance_id) for p in loaded.problems]
    solves: list[tuple[Instance, SolveRequest]] = []
    for where, instance in loaded.instances:
        try:
            models = instance_models(options.models, instance.instance_id)
            selector = instance_selector(options, instance.instance_id)
            solve_request = build_request(instance, options, d.policy, models=models, selector_model=selector)
            registry.check_image(d.policy, owner, solve_request.sandbox_image)
            solves.append((instance, solve_request))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors())
            details.append(_problem(field, f"{where} ({instance.instance_id}): {problems}", instance.instance_id))
        except SolverError as exc:
            details.append(_problem(field, f"{where} ({instance.instance_id}): {exc}", instance.instance_id))
    if details:
        raise ValidationFailed(f"{len(details)} instance(s) are invalid; nothing was started", details=details)
    return solves


def _problem(field: str, message: str, instance_id: str | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"field": field, "in": "body", "rule": "invalid_instance", "message": message}
    if instance_id:
        detail["instance_id"] = instance_id
    return detail


def read_instances(d: ApiDeps, owner: str, request: BatchRequest) -> Loaded:
    if request.instances is not None:
        return parse_items(list(request.instances))
    key = str(request.instances_key)
    prefix = input_prefix(owner)
    if not key.startswith(prefix):
        raise ValidationFailed(
            f"instances_key must be under your own folder {prefix}",
            details=[{"field": "instances_key", "in": "body", "rule": "instances_key_prefix", "prefix": prefix}],
        )
    try:
        if d.artifacts.size(key) > MAX_INPUT_FILE_BYTES:
            raise ValidationFailed(
                f"the instances file is larger than {MAX_INPUT_FILE_BYTES} bytes",
                details=[{"field": "instances_key", "in": "body", "rule": "instances_file_size"}],
            )
        text = d.artifacts.get(key).decode("utf-8")
    except ArtifactNotFound as exc:
        raise ValidationFailed(
            f"no instances file at {key}",
            details=[{"field": "instances_key", "in": "body", "rule": "instances_file_missing"}],
        ) from exc
    except (ArtifactError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            f"the instances file at {key} cannot be read: {exc}",
            details=[{"field": "instances_key", "in": "body", "rule": "instances_file_unreadable"}],
        ) from exc
    loaded = parse_jsonl(text, key)
    if len(loaded.instances) + len(loaded.problems) > MAX_FILE_INSTANCES:
        raise ValidationFailed(
            f"the instances file holds more than {MAX_FILE_INSTANCES} instances; split it into several batches",
            details=[{"field": "instances_key", "in": "body", "rule": "instances_file_too_many"}],
        )
    return loaded


def launch(d: ApiDeps, batch: BatchView, items: list[dict[str, Any]]) -> None:
    """Write the items file and start the batch's execution (idempotent per batch: a client retrying
    with its Idempotency-Key after a failure here gets it started then)."""
    if d.batch_orchestrator is None:
        raise Unavailable(
            "this deployment runs no batches (no batch state machine is configured)",
            details=[{"field": "orchestrator", "rule": "no_batch_orchestrator", "batch_id": str(batch.id)}],
        )
    key = keys.batch_items(batch.id)
    try:
        d.artifacts.put(key, json.dumps(items).encode(), content_type="application/json")
        ref = d.batch_orchestrator.start(batch.id, key, batch.max_concurrency)
    except Exception as exc:
        log.exception("could not start the execution of batch %s", batch.id)
        raise Unavailable(
            "the batch was recorded but its execution could not be started; retry with the same Idempotency-Key",
            details=[{"field": "orchestrator", "rule": "start_failed", "batch_id": str(batch.id)}],
        ) from exc
    d.batches.set_execution(batch.id, ref)


def preds_response(d: ApiDeps, owner: str, batch_id: UUID) -> Response[str]:
    """preds.json, or a 303 to a presigned link when it would not fit in a Lambda response (like
    GET /solves/{id}/patch)."""
    patches: dict[UUID, str] = {}
    for solve in d.batches.solves(owner, batch_id):
        if solve.champion_run_id is not None:
            try:
                patches[solve.id] = d.artifacts.get(keys.champion_patch(solve.id)).decode("utf-8", errors="replace")
            except ArtifactNotFound:
                log.warning("solve %s has a champion but no stored patch", solve.id)
    predictions = d.batches.predictions(owner, batch_id, patches)
    body = json.dumps({k: v.model_dump(mode="json") for k, v in predictions.items()}, indent=1)
    budget = d.limits.max_response_bytes - RESPONSE_ENVELOPE_BYTES
    if len(json.dumps(body)) > budget:
        key = keys.batch_preds(batch_id)
        d.artifacts.put(key, body.encode(), content_type="application/json")
        link = d.artifacts.download_url(key)
        if link is not None:
            return Response(303, "text/plain; charset=utf-8", f"{link}\n", headers={"Location": link})
    return Response(200, "application/json", body)
