"""GET /solves, /solves/{id}, /solves/{id}/events and /solves/{id}/stats: always the caller's own."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from solver_core.api.request import owner_of
from solver_core.api.routes.common import DepsGetter, documented, new_router
from solver_core.api.schemas import EventPage, SolveList, SolveStats
from solver_core.api.stats import solve_stats
from solver_core.errors import BadRequest
from solver_core.observability import bind_solve
from solver_core.presenters import SolveOut, solve_out
from solver_core.services.events import MAX_EVENTS_PAGE
from solver_core.services.solves import MAX_PAGE, Cursor
from solver_core.status import SolveStatus

MAX_SEQ = 2**53  # within bigint, and exact as a JSON number for JavaScript clients
MAX_CURSOR_LENGTH = 512


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
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of a page")] = None,
    ) -> SolveList:
        d = deps()
        owner = owner_of(api.current_event)
        if cursor:
            check_cursor(cursor)
        page = d.solves.list(owner, status=status, limit=limit, cursor=cursor)
        return SolveList(items=[solve_out(s, d.artifacts) for s in page.items], next_cursor=page.next_cursor)

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

    return api


def check_cursor(cursor: str) -> None:
    """A cursor must be one this API handed out; a forged one with a naive timestamp would otherwise
    reach the database layer, which refuses naive datetimes with an error of its own."""
    decoded = Cursor.decode(cursor)  # raises BadRequest on garbage
    if decoded.created_at.tzinfo is None:
        raise BadRequest("invalid cursor", details=[{"field": "cursor", "rule": "cursor_format"}])
