"""The web console's pages under /ui: server-rendered HTML over the same services and owner scoping
as the JSON API (docs/architecture.md, "Web console"). Pages read; the actions (start, cancel,
publish) are the API's own POST routes, called by the page's script with a JSON body."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID, uuid4

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from solver_core.api.deps import ApiDeps
from solver_core.api.errors import Unauthorized
from solver_core.api.request import owner_of
from solver_core.api.resolver import SolverResolver
from solver_core.api.routes.common import DepsGetter, new_router
from solver_core.api.routes.read import RESPONSE_ENVELOPE_BYTES
from solver_core.artifacts import keys
from solver_core.console import diff, trajectory, views
from solver_core.console.render import HTML, SECURITY_HEADERS, page, static_file
from solver_core.errors import ArtifactNotFound, BadRequest, NotFound, ValidationFailed
from solver_core.models import EventView, RunView, SolveView
from solver_core.services.events import MAX_EVENTS_PAGE
from solver_core.status import RUN_TERMINAL, SolveStatus, state_label

PAGE_SIZE = 25
MAX_EVENTS = 20_000  # the timeline reads at most this many events of one solve
FEED_EVENTS = 200  # the feed shows the latest ones; the script follows from there
MAX_PATCH_BYTES = 2 * 1024 * 1024  # a larger patch is offered as a download only
MAX_FILTER = 2048
STATIC_TYPES = {  # text only (see `static`)
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def router(deps: DepsGetter) -> Router:
    ui = new_router()

    def base() -> str:
        resolver = ui.api_resolver
        return resolver.base_path() if isinstance(resolver, SolverResolver) else ""

    def html(template: str, code: int = 200, **context: Any) -> Response[str]:
        body = page(template, base=base(), **context)
        return Response(code, HTML, body, headers=dict(SECURITY_HEADERS))

    def guarded(render: Callable[[str], Response[str]]) -> Response[str]:
        """Run a page as the caller; no identity or an unknown solve is a page, not JSON."""
        try:
            return render(owner_of(ui.current_event))
        except Unauthorized as exc:
            return html("error.html", 401, title="Sign in", message=exc.message, login=True)
        except NotFound as exc:
            return html("error.html", 404, title="Not found", message=exc.message, login=False)
        except (ValidationFailed, BadRequest) as exc:
            return html("error.html", exc.status, title="Cannot show this", message=exc.message, login=False)

    @ui.get("/ui", include_in_schema=False)
    def solves_page(
        # Plain strings: the filter form sends "status=" for "any".
        status: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
        repo: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Response[str]:
        def render(owner: str) -> Response[str]:
            d = deps()
            wanted = status_filter(status)
            listing = d.solves.list(owner, status=wanted, repo_url=repo or None, limit=PAGE_SIZE, cursor=cursor)
            rows = [
                {"solve": s, "counts": views.run_counts(s.runs), "cost": views.total_cost(s), "live": views.is_live(s)}
                for s in listing.items
            ]
            return html(
                "solves.html",
                rows=rows,
                next_cursor=listing.next_cursor,
                paged=cursor is not None,
                status=wanted.value if wanted else "",
                repo=repo or "",
                statuses=[(s.value, state_label(s)) for s in SolveStatus],
                repos=d.solves.repositories(owner),
                live=any(r["live"] for r in rows) or cursor is None,
            )

        return guarded(render)

    @ui.get("/ui/new", include_in_schema=False)
    def new_page() -> Response[str]:
        def render(owner: str) -> Response[str]:
            d = deps()
            models = [m.name for m in d.catalog.models()]
            return html("new.html", models=models, idempotency_key=str(uuid4()), owner=owner)

        return guarded(render)

    @ui.get("/ui/login", include_in_schema=False)
    def login_page() -> Response[str]:
        return html("login.html", failed=ui.current_event.get_query_string_value("failed") == "1")

    @ui.get("/ui/solves/<solve_id>", include_in_schema=False)
    def solve_page(
        solve_id: UUID,
        view: Annotated[str, Query(pattern="^(unified|split)$")] = "unified",
        a: Annotated[UUID | None, Query()] = None,
        b: Annotated[UUID | None, Query()] = None,
    ) -> Response[str]:
        def render(owner: str) -> Response[str]:
            d = deps()
            solve = d.solves.get(owner, solve_id)
            events = all_events(d, owner, solve_id)
            champion = next((r for r in solve.runs if r.id == solve.champion_run_id), None)
            champion_patch = read_patch(d, keys.champion_patch(solve_id)) if champion else None
            candidates = [r for r in solve.runs if "patch" in r.artifacts]
            return html(
                "solve.html",
                solve=solve,
                champion=champion,
                reason=views.champion_reason(solve, events),
                selection=views.selection_of(solve),
                counts=views.run_counts(solve.runs),
                cost=views.total_cost(solve),
                live=views.is_live(solve),
                timeline=views.timeline(solve, events),
                feed=events[-FEED_EVENTS:],
                run_index={run.id: run.index for run in solve.runs},
                last_seq=events[-1].seq if events else 0,
                files=diff.parse(champion_patch) if champion_patch else [],
                patch_too_large=champion is not None and champion_patch is None,
                view=view,
                candidates=candidates,
                compare=compare(d, solve, a, b),
                can_publish=d.publish is not None,
            )

        return guarded(render)

    @ui.get("/ui/solves/<solve_id>/runs/<run_id>", include_in_schema=False)
    def run_page(solve_id: UUID, run_id: UUID) -> Response[str]:
        def render(owner: str) -> Response[str]:
            d = deps()
            solve = d.solves.get(owner, solve_id)
            run = find_run(solve, run_id)
            try:
                steps = trajectory.load(d.artifacts, solve_id, run_id, run.artifacts.get("trajectory"))
            except NotFound:
                steps = None
            return html("run.html", solve=solve, run=run, trajectory=steps, live=run.status not in RUN_TERMINAL)

        return guarded(render)

    add_file_routes(ui, deps)
    return ui


def add_file_routes(ui: Router, deps: DepsGetter) -> None:
    """The raw trajectory download and the static files."""

    @ui.get("/ui/solves/<solve_id>/runs/<run_id>/trajectory.json", include_in_schema=False)
    def download_trajectory(solve_id: UUID, run_id: UUID) -> Response[str]:
        owner = owner_of(ui.current_event)
        d = deps()
        run = find_run(d.solves.get(owner, solve_id), run_id)
        key = run.artifacts.get("trajectory")
        # As GET /solves/{id}/patch: what would not fit in a Lambda response is a 303 to a presigned link.
        link = d.artifacts.download_url(key) if key is not None and d.artifacts.exists(key) else None
        budget = d.limits.max_response_bytes - RESPONSE_ENVELOPE_BYTES
        if link is not None and key is not None and d.artifacts.size(key) > budget // 2:  # indented, escaped: grows
            moved = {**SECURITY_HEADERS, "Location": link}
            return Response(303, "text/plain; charset=utf-8", f"{link}\n", headers=moved)
        loaded = trajectory.load(d.artifacts, solve_id, run_id, key)
        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="trajectory-{solve_id}-{run.index}.json"',
        }
        return Response(200, "application/json", json.dumps(loaded.raw, indent=2), headers=headers)

    @ui.get("/ui/static/<name>", include_in_schema=False)
    def static(name: str) -> Response[str]:
        # Text, not bytes: API Gateway would pass a base64 body through as it is without binary media types.
        data = static_file(name)
        suffix = name[name.rfind(".") :] if "." in name else ""
        if data is None or suffix not in STATIC_TYPES:
            raise NotFound(f"no static file {name}")
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
        return Response(200, STATIC_TYPES[suffix], data.decode("utf-8"), headers=headers)


def status_filter(value: str | None) -> SolveStatus | None:
    if not value:
        return None
    try:
        return SolveStatus(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in SolveStatus)
        raise ValidationFailed(
            f"status must be one of {allowed}", details=[{"field": "status", "in": "query"}]
        ) from exc


def find_run(solve: SolveView, run_id: UUID) -> RunView:
    run = next((r for r in solve.runs if r.id == run_id), None)
    if run is None:
        raise NotFound(f"run {run_id} not found in solve {solve.id}")
    return run


def all_events(d: ApiDeps, owner: str, solve_id: UUID) -> list[EventView]:
    events: list[EventView] = []
    while len(events) < MAX_EVENTS:
        page_ = d.events.read(owner, solve_id, after=events[-1].seq if events else 0, limit=MAX_EVENTS_PAGE)
        events += page_
        if len(page_) < MAX_EVENTS_PAGE:
            break
    return events


def read_patch(d: ApiDeps, key: str) -> str | None:
    try:
        data = d.artifacts.get(key)
    except ArtifactNotFound:
        return None
    if len(data) > MAX_PATCH_BYTES:
        return None
    return data.decode("utf-8", errors="replace")


def compare(d: ApiDeps, solve: SolveView, a: UUID | None, b: UUID | None) -> dict[str, Any] | None:
    """Two candidates' patches, and how the second differs from the first (a diff of the patches)."""
    if a is None or b is None:
        return None
    import difflib

    left, right = find_run(solve, a), find_run(solve, b)
    texts = []
    for run in (left, right):
        key = run.artifacts.get("patch")
        text = read_patch(d, key) if key else None
        texts.append(text or "")
    delta = difflib.unified_diff(
        texts[0].splitlines(),
        texts[1].splitlines(),
        f"a/run-{left.index}.patch",
        f"b/run-{right.index}.patch",
        lineterm="",
    )
    lines = list(delta)
    header = f"diff --git a/run-{left.index}.patch b/run-{right.index}.patch"
    return {
        "a": left,
        "b": right,
        "same": not lines,
        "files": diff.parse("\n".join([header, *lines])) if lines else [],
        "a_files": diff.parse(texts[0]),
        "b_files": diff.parse(texts[1]),
    }
