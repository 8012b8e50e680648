"""POST /solves: validate, respect the per-owner cap, record the solve, start its execution."""

from __future__ import annotations

import logging
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from pydantic import ValidationError

from solver_core.api.deps import ApiDeps
from solver_core.api.errors import Unavailable, invalid_body
from solver_core.api.request import base_url, owner_of, solve_links
from solver_core.api.resolver import SolverResolver
from solver_core.api.routes.common import DepsGetter, documented, new_router
from solver_core.api.schemas import SolveCreated, SolveRequestBody
from solver_core.models import SolveRequest, SolveView, publish_targets
from solver_core.observability import bind_solve, record_solve_started
from solver_core.services.solves import ActiveCap, CostBudget
from solver_core.status import SolveStatus

log = logging.getLogger(__name__)

# Visible ASCII only: the key is stored and compared byte for byte.
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"

DESCRIPTION = """Start a solve; it runs asynchronously.

202 with the new solve's links. With an `Idempotency-Key`, the same key and the same body again
answer 200 with the solve the first request made (`created: false`, header
`Idempotent-Replayed: true`); the same key with a different body is a 409. Each caller may have a
bounded number of unfinished solves, and a daily cost budget when one is configured; beyond either
the answer is 429 with `Retry-After`. Publishing to a repository outside the caller's allowlist
is a 403."""


def router(deps: DepsGetter) -> Router:
    api = new_router()

    @api.post(
        "/solves",
        summary="Start a solve",
        description=DESCRIPTION,
        tags=["solves"],
        responses=documented(
            {202: (SolveCreated, "Accepted: the solve is queued."), 200: (SolveCreated, "An idempotent replay.")},
            400, 401, 403, 409, 413, 415, 422, 429, 503,
        ),
    )  # fmt: skip
    def start_solve(
        body: Annotated[SolveRequestBody, Body(description="the solve request")],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY, description="1-255 visible ASCII")
        ] = None,
    ) -> Response[SolveCreated]:
        d = deps()
        owner = owner_of(api.current_event)
        try:
            request = SolveRequest.model_validate(body.root, context=d.policy)
        except ValidationError as exc:
            raise invalid_body(exc) from exc
        if d.check_models is not None:
            d.check_models(request.models)
        if request.publish is not None:  # refused now rather than recorded as a failure when the solve ends
            for what, repo in publish_targets(request.publish, request.repo_url, request.issue.url):
                d.allowlist.require(owner, repo.url, f"publishing {what}")
        cap = ActiveCap(d.limits.max_active_solves_per_owner, d.limits.retry_after_s)
        daily = d.limits.owner_daily_cost_usd
        budget = CostBudget(daily) if daily is not None else None
        result = d.solves.start(owner, request, idempotency_key, active_cap=cap, budget=budget)
        bind_solve(result.solve.id)
        if result.created:  # a replay started nothing new
            record_solve_started()
        if result.solve.status is SolveStatus.QUEUED:
            launch(d, result.solve)
        resolver = api.api_resolver
        assert isinstance(resolver, SolverResolver)
        links = solve_links(base_url(api.current_event, resolver.base_path()), result.solve.id)
        created = SolveCreated(id=result.solve.id, status=result.solve.status, created=result.created, links=links)
        headers = {"Location": links.self}
        if not result.created:
            headers["Idempotent-Replayed"] = "true"
        return Response(202 if result.created else 200, "application/json", created, headers=headers)

    return api


def launch(d: ApiDeps, solve: SolveView) -> None:
    """Start (or, on a replay of a solve still queued, make sure of) its execution. Starting is
    idempotent per solve, so a client retrying with its Idempotency-Key after a failure here
    gets the solve started then."""
    try:
        execution_ref = d.orchestrator.start(solve.id)
    except Exception as exc:
        log.exception("could not start the execution of solve %s", solve.id)
        raise Unavailable(
            "the solve was recorded but its execution could not be started; retry with the same Idempotency-Key",
            details=[{"field": "orchestrator", "rule": "start_failed", "solve_id": str(solve.id)}],
        ) from exc
    if execution_ref != solve.execution_ref:
        d.runs.set_solve_fields(solve.id, execution_ref=execution_ref)  # what cancel will stop
