"""POST /solves/{id}/publish: publish a finished solve to GitHub again (updates in place)."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from solver_core.api.errors import Unavailable
from solver_core.api.request import owner_of
from solver_core.api.routes.common import DepsGetter, documented, new_router
from solver_core.api.schemas import PublishAccepted
from solver_core.errors import Conflict
from solver_core.models import publish_targets
from solver_core.observability import bind_solve
from solver_core.status import SolveStatus

DESCRIPTION = """Publish a finished solve (succeeded or failed) that was started with a `publish`
option: its issue comment and draft pull request are updated in place. 202: publishing runs in the
background; its outcome is in the solve's `publication` and, for errors, its events. 409 when the
solve is unfinished or has no publish option; 403 when the repository is no longer on the caller's
allowlist; 503 where this API cannot publish (in AWS the state
machine publishes when a solve finishes)."""


def router(deps: DepsGetter) -> Router:
    api = new_router()

    @api.post(
        "/solves/<solve_id>/publish",
        summary="Publish a finished solve to GitHub again",
        description=DESCRIPTION,
        tags=["solves"],
        responses=documented({202: (PublishAccepted, "Publishing started.")}, 401, 403, 404, 409, 415, 503),
    )
    def publish_solve(solve_id: UUID) -> Response[PublishAccepted]:
        d = deps()
        bind_solve(solve_id)
        solve = d.solves.get(owner_of(api.current_event), solve_id)
        if solve.publish is None:
            raise Conflict(f"solve {solve_id} was started without a publish option")
        if solve.status not in {SolveStatus.SUCCEEDED, SolveStatus.FAILED}:
            raise Conflict(f"solve {solve_id} is {solve.status.value}; only a finished solve is published")
        if d.publish is None:
            raise Unavailable("this API does not publish; solves publish when they finish")
        # The allowlist may have changed since the solve started: refused now, not only in `publication`.
        for what, repo in publish_targets(solve.publish, solve.repo_url, solve.issue.url):
            d.allowlist.require(solve.owner, repo.url, f"publishing {what}")
        d.publish(solve_id)
        return Response(202, "application/json", PublishAccepted(id=solve_id, accepted=True))

    return api
