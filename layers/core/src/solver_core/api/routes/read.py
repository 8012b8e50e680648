"""GET /solves, /solves/{id}, /solves/{id}/events and /solves/{id}/stats: always the caller's own."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from solver_core.api.request import owner_of
from solver_core.api.routes.common import DepsGetter, documented, new_router
from solver_core.api.schemas import EventPage, SolveList, SolveStats
from solver_core.api.stats import solve_stats
from solver_core.artifacts import keys
from solver_core.errors import NotFound
from solver_core.models import SolveView
from solver_core.observability import bind_solve
from solver_core.presenters import SolveOut, solve_out
from solver_core.services.events import MAX_EVENTS_PAGE
from solver_core.services.solves import MAX_PAGE
from solver_core.status import SolveStatus

if TYPE_CHECKING:
    from solver_core.api.deps import ApiDeps

MAX_SEQ = 2**53  # within bigint, and exact as a JSON number for JavaScript clients
MAX_CURSOR_LENGTH = 512
MAX_REPO_FILTER = 2048


def router(deps: DepsGetter) -> Router:
    api = new_router()

    @api.get(
        "/solves",
        summary="List solves, newest first",
        tags=["solves"],
        responses=documented({200: (SolveList, "A page of the caller's solves.")}, 400, 401, 422),
    )
    def list_solves(
        status: Annotated[SolveStatus | None, Query(description="only solves in this status")] = None,
        repo: Annotated[
            str | None, Query(max_length=MAX_REPO_FILTER, description="only solves of this repo_url (exact)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of a page")] = None,
    ) -> SolveList:
        d = deps()
        owner = owner_of(api.current_event)
        page = d.solves.list(owner, status=status, repo_url=repo, limit=limit, cursor=cursor)
        items = [solve_out(without_links(s), d.artifacts) for s in page.items]
        return SolveList(items=items, next_cursor=page.next_cursor)

    @api.get(
        "/solves/<solve_id>",
        summary="A solve with its runs, champion and artifact links",
        tags=["solves"],
        responses=documented({200: (SolveOut, "The solve.")}, 401, 404),
    )
    def get_solve(solve_id: UUID) -> SolveOut:
        d = deps()
        bind_solve(solve_id)
        return solve_out(d.solves.get(owner_of(api.current_event), solve_id), d.artifacts)

    @api.get(
        "/solves/<solve_id>/events",
        summary="The solve's events after a sequence number, oldest first",
        description="Poll with `after` set to the last page's `next_after` to follow a solve live.",
        tags=["solves"],
        responses=documented({200: (EventPage, "Events with seq > after.")}, 401, 404, 422),
    )
    def get_events(
        solve_id: UUID,
        after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 100,
    ) -> EventPage:
        d = deps()
        bind_solve(solve_id)
        items = d.events.read(owner_of(api.current_event), solve_id, after=after, limit=limit)
        return EventPage(items=items, next_after=items[-1].seq if items else after)

    @api.get(
        "/solves/<solve_id>/stats",
        summary="Per-run and per-solve statistics and progress",
        tags=["solves"],
        responses=documented({200: (SolveStats, "The statistics.")}, 401, 404),
    )
    def get_stats(solve_id: UUID) -> SolveStats:
        d = deps()
        bind_solve(solve_id)
        return solve_stats(d.solves.get(owner_of(api.current_event), solve_id))

    @api.get(
        "/solves/<solve_id>/patch",
        summary="The champion's patch, as a unified diff",
        description="`git apply` it. 404 until the solve has a champion.",
        tags=["solves"],
        responses=documented(
            {
                200: (str, "The patch (text/x-diff)."),
                303: (str, "The patch is too large for a response: download it from the `Location` link."),
            },
            401,
            404,
        ),
    )
    def get_patch(solve_id: UUID) -> Response[str]:
        d = deps()
        bind_solve(solve_id)
        solve = d.solves.get(owner_of(api.current_event), solve_id)
        if solve.champion_run_id is None:
            raise NotFound(
                f"solve {solve_id} has no champion patch (status {solve.status.value})",
                hint="wait until it succeeds (`solver status ID`); a failed solve has none",
            )
        return patch_response(d, keys.champion_patch(solve_id))

    return api


# Room for the status, headers and JSON envelope around a body in Lambda's response.
RESPONSE_ENVELOPE_BYTES = 64 * 1024


def patch_response(d: ApiDeps, key: str) -> Response[str]:
    """The patch itself, or, when it would not fit in a Lambda response, a 303 to a presigned link.

    The body travels JSON-escaped (newlines, quotes and non-ASCII characters grow), so what must fit is
    the escaped text. A store without download links (files on disk, `solver serve`) serves it whole:
    no Lambda sits in between."""
    budget = d.limits.max_response_bytes - RESPONSE_ENVELOPE_BYTES
    link = d.artifacts.download_url(key)
    if link is not None and d.artifacts.size(key) > budget:  # too large whatever its escaping: not even read
        return _see_other(link)
    patch = d.artifacts.get(key).decode("utf-8", errors="replace")
    if link is not None and len(json.dumps(patch)) > budget:
        return _see_other(link)
    return Response(200, "text/x-diff; charset=utf-8", patch)


def _see_other(link: str) -> Response[str]:
    return Response(303, "text/plain; charset=utf-8", f"{link}\n", headers={"Location": link})


def without_links(solve: SolveView) -> SolveView:
    """List items carry no artifact links; GET /solves/{id} has them. A page of 50 solves holds some
    250 artifacts, and presigning each S3 link (~0.2 ms) took most of the list's time (the
    benchmarks measured 55 of 60 ms)."""
    return solve.model_copy(update={"runs": [run.model_copy(update={"artifacts": {}}) for run in solve.runs]})
