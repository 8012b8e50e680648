"""POST /solves/{id}/cancel: idempotent, and always 200 for an existing solve of the caller."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router

from solver_core.api.request import owner_of
from solver_core.api.routes.common import DepsGetter, documented, metered, new_router
from solver_core.api.schemas import CancelResult
from solver_core.observability import bind_solve, record_solve_cancelled
from solver_core.presenters import solve_out

DESCRIPTION = """Cancel a solve: mark it cancelling, stop its execution, kill its sandboxes, and
mark it and its unfinished runs cancelled. The trajectories up to the last step are kept.

Idempotent. The answer is 200 with the solve's state after the request in every case:
`changed: true` when this request cancelled it; `changed: false` when it had already been
cancelled, or had already finished, in which case `solve.status` is its final status
(`succeeded` or `failed`) and nothing was changed."""


def router(deps: DepsGetter) -> Router:
    api = new_router()

    @api.post(
        "/solves/<solve_id>/cancel",
        summary="Cancel a solve",
        description=DESCRIPTION,
        tags=["solves"],
        responses=documented({200: (CancelResult, "The solve after the request.")}, 401, 404, 415),
    )
    def cancel_solve(solve_id: UUID) -> CancelResult:
        d = deps()
        owner = owner_of(api.current_event)
        bind_solve(solve_id)
        d.solves.get(owner, solve_id)  # 404 before building a sandbox client for another's solve
        outcome = d.cancel_service().cancel(owner, solve_id)
        if outcome.changed and metered(api):
            record_solve_cancelled()
        return CancelResult(changed=outcome.changed, solve=solve_out(outcome.solve, d.artifacts))

    return api
