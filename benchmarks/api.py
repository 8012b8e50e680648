"""API latency through the Lambda handlers, on PostgreSQL holding 100k solves and 1M events.

The database is bulk-loaded with COPY: 1,000 owners with 100 solves each (so a page of 50 is a
real page), 2 runs per solve, 10 events per solve, finished ones with artifact keys. The three
Lambda handlers are called in-process with API Gateway REST proxy events (tests/support/api.py),
as API Gateway would invoke them in a warm execution environment:

- start: POST /solves (a new solve each time, with an Idempotency-Key, owners in rotation);
- status: GET /solves/{id} of a random solve of its owner;
- list: GET /solves?limit=50 of a random owner.

Then EXPLAIN (ANALYZE, BUFFERS) of every statement one request of each route sends (captured from
the engine; writes are rolled back). The long-lived objects are frozen out of the garbage
collector after warm-up, as `current_deps()` does in a Lambda (`--no-gc-freeze` shows why).
Artifact links are file URLs (`--artifacts local`) or
SigV4-presigned S3 URLs (`--artifacts s3`, moto: presigning is local computation either way).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib

COMMAND = ".venv/bin/python benchmarks/api.py"
OWNERS = 1_000
SOLVES_PER_OWNER = 100
RUNS_PER_SOLVE = 2
EVENTS_PER_SOLVE = 10
MODEL = "anthropic/claude-sonnet-4-5"  # seeded in the registry by migration 0002
FINISHED = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")
# What the start route's count of unfinished solves asks for (benchmark-only: no migration here).
UNFINISHED_INDEX = (
    "CREATE INDEX ix_solves_owner_unfinished ON solves (owner) WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
)


def owner_name(i: int) -> str:
    return f"arn:aws:iam::123456789012:user/bench-{i:04d}"


def load(url: str, seed: int) -> list[tuple[str, uuid.UUID]]:
    """COPY the solves, runs and events; returns (owner, solve id) of a sample of 5,000 solves.

    Only a sample: a few hundred thousand objects left on this process's heap would make the garbage
    collector's full passes, and so the handlers' p99, slower than a Lambda's (whose heap holds none)."""
    import psycopg
    from psycopg.types.json import Jsonb

    rng = random.Random(seed)
    now = datetime.now(UTC)
    solves: list[tuple[str, uuid.UUID]] = []
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        solve_cols = (
            "id, owner, status, repo_url, ref, issue_title, issue_body, models, attempts_per_model, max_parallel, "
            "agent_config, limits, test_command, request_hash, champion_run_id, error, created_at, updated_at, "
            "started_at, finished_at"
        )
        run_cols = (
            "id, solve_id, index, model, agent_config, status, exit_status, attempt, retryable, steps, cost_usd, "
            "tokens, patch_key, trajectory_key, log_key, patch_stats, created_at, updated_at, started_at, finished_at"
        )
        runs: list[tuple[Any, ...]] = []
        with cur.copy(f"COPY solves ({solve_cols}) FROM STDIN") as copy:
            for n in range(OWNERS * SOLVES_PER_OWNER):
                owner = owner_name(n % OWNERS)
                solve_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                created = now - timedelta(seconds=rng.uniform(3600, 90 * 86400))
                # About 3 unfinished solves per owner: under the cap of 10, like a real tenant.
                status = rng.choice(FINISHED) if rng.random() > 0.03 else rng.choice(("running", "queued"))
                finished = created + timedelta(minutes=rng.uniform(2, 40)) if status in FINISHED else None
                run_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(RUNS_PER_SOLVE)]
                champion = run_ids[0] if status == "succeeded" else None
                copy.write_row(
                    (
                        solve_id, owner, status, f"https://github.com/org{n % 97}/repo{n % 13}", "main",
                        f"Issue {n}: something is broken", "Steps to reproduce...\n" * 5, Jsonb([MODEL]),
                        RUNS_PER_SOLVE, RUNS_PER_SOLVE, "default",
                        Jsonb({"step_limit": 50, "cost_limit_usd": 3.0, "time_limit_s": 3600}), "pytest -q",
                        f"{n:064x}", champion, None if status != "failed" else "no run produced a patch",
                        created, finished or created, created, finished,
                    )
                )  # fmt: skip
                solves.append((owner, solve_id))
                for index, run_id in enumerate(run_ids):
                    runs.append(run_row(run_id, solve_id, index, status, created=created, finished=finished, rng=rng))
        with cur.copy(f"COPY runs ({run_cols}) FROM STDIN") as copy:
            for row in runs:
                copy.write_row(row)
        with cur.copy("COPY events (solve_id, run_id, at, kind, message, data) FROM STDIN") as copy:
            for (_, solve_id), first in zip(solves, range(0, len(runs), RUNS_PER_SOLVE), strict=True):
                at = runs[first][16]
                for e in range(EVENTS_PER_SOLVE):
                    run_id = runs[first + e % RUNS_PER_SOLVE][0]
                    kind = "step" if e % 3 else "status"
                    data = {"step": e, "actions": [{"command": "pytest -q", "returncode": 1, "output": "F" * 200}]}
                    copy.write_row((solve_id, run_id, at + timedelta(seconds=e), kind, f"step {e}", Jsonb(data)))
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")
    sample = rng.sample(solves, 5000)
    del solves, runs
    gc.collect()
    return sample


def run_row(
    run_id: uuid.UUID, solve_id: uuid.UUID, index: int, status: str, *, created: datetime, finished: datetime | None,
    rng: random.Random,
) -> tuple[Any, ...]:  # fmt: skip
    from psycopg.types.json import Jsonb

    from solver_core.artifacts import keys

    done = finished is not None
    run_status = {"running": "solving", "queued": "queued"}.get(status, status)
    if status == "succeeded" and index > 0:
        run_status = "failed"
    with_patch = done and run_status == "succeeded"
    return (
        run_id, solve_id, index, MODEL, "default", run_status, "Submitted" if done else None, 0, False,
        rng.randint(5, 50), round(rng.uniform(0.05, 2.0), 4), rng.randint(10_000, 900_000),
        keys.patch(solve_id, run_id) if with_patch else None,
        keys.trajectory(solve_id, run_id) if done else None,
        keys.log(solve_id, run_id) if done else None,
        Jsonb({"files": 2, "added": 10, "removed": 3}) if with_patch else None,
        created, finished or created, created, finished,
    )  # fmt: skip


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handlers print their metrics (CloudWatch EMF) on stdout, as Lambda expects: not here."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class FullCollections:
    """Pauses of the garbage collector's full (generation 2) passes, which set the p99 of routes
    that allocate a lot: their length grows with everything the process holds."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._started) * 1000)


def measure(call: Callable[[int], dict[str, Any]], count: int, expect: int) -> list[float]:
    times = []
    for i in range(count):
        started = time.perf_counter()
        response = call(i)
        times.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == expect, response
    return times


class Captured:
    """Statements sent to the database, for EXPLAIN."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False

    def __call__(  # noqa: PLR0917 - SQLAlchemy's before_cursor_execute signature
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.on and not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SELECT 1")):
            self.statements.append((statement, parameters))


def explain(engine: Any, statements: list[tuple[str, Any]]) -> str:
    lines = []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            for statement, parameters in statements:
                verb = statement.lstrip().split(None, 1)[0].upper()
                if verb == "INSERT" or statement.lstrip().upper().startswith("SELECT PG_ADVISORY"):
                    lines += ["  " + " ".join(statement.split())[:160] + " …", "    (an INSERT or a lock: no plan)", ""]
                    continue
                plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", parameters)
                lines.append("  " + " ".join(statement.split())[:400])
                lines += ["    " + row[0] for row in plan]
                lines.append("")
        finally:
            transaction.rollback()
    return "\n".join(lines)


def main() -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--artifacts", choices=["local", "s3"], default="local")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="skip gc.freeze(), which the handlers do once their dependencies are built (api/deps.py)",
    )
    parser.add_argument(
        "--index", action="store_true", help="first create the partial index the start route's plan asks for"
    )
    args = parser.parse_args()
    benchlib.header("API latency through the Lambda handlers", COMMAND)

    import dataclasses

    from sqlalchemy import event

    from functions.start_solve import app as start_app
    from functions.status import app as status_app
    from solver_core.api import use_deps
    from tests.support.api import LambdaContextStub, api_world, rest_event, solve_body

    rng = random.Random(args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="solver-bench-api-"))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(benchlib.postgres_database())
        started = time.perf_counter()
        solves = load(url, args.seed)
        total = OWNERS * SOLVES_PER_OWNER
        print(f"loaded {total:,} solves, {total * RUNS_PER_SOLVE:,} runs, "
              f"{total * EVENTS_PER_SOLVE:,} events in {time.perf_counter() - started:.0f} s\n")  # fmt: skip
        world = stack.enter_context(api_world(url, scratch / "home"))
        deps = world.deps
        if args.artifacts == "s3":
            deps = s3_deps(stack, deps, dataclasses.replace)
        use_deps(deps)
        stack.callback(use_deps, None)
        engine = deps.sessions.kw["bind"]
        captured = Captured()
        event.listen(engine, "before_cursor_execute", captured)

        def start(i: int) -> dict[str, Any]:
            owner = owner_name(i % OWNERS)
            headers = {"Idempotency-Key": f"bench-{uuid.uuid4()}"}
            event = rest_event("POST", "/solves", body=solve_body(), headers=headers, owner=owner)
            response: dict[str, Any] = start_app.handler(event, LambdaContextStub())
            return response

        def status(_: int) -> dict[str, Any]:
            owner, solve_id = rng.choice(solves)
            event = rest_event("GET", f"/solves/{solve_id}", owner=owner)
            response: dict[str, Any] = status_app.handler(event, LambdaContextStub())
            return response

        def listing(_: int) -> dict[str, Any]:
            owner = owner_name(rng.randrange(OWNERS))
            event = rest_event("GET", "/solves", query={"limit": "50"}, owner=owner)
            response: dict[str, Any] = status_app.handler(event, LambdaContextStub())
            assert len(json.loads(response["body"])["items"]) == 50
            return response

        routes = {"start (POST /solves)": (start, 202), "status (GET /solves/{id})": (status, 200),
                  "list (GET /solves?limit=50)": (listing, 200)}  # fmt: skip
        targets = {"start": 15.0, "status": 10.0, "list": 20.0}
        if args.index:
            with engine.begin() as conn:
                conn.exec_driver_sql(UNFINISHED_INDEX)
                conn.exec_driver_sql("ANALYZE solves")
        rows, plans = [], []
        collections = FullCollections()
        with quiet_stdout():
            for call, _ in routes.values():  # warm-up: first requests build middleware stacks, connections
                for i in range(50):
                    call(-1 - i)
            if args.gc_freeze:  # what current_deps() does in a Lambda once its dependencies are built
                gc.collect()
                gc.freeze()
            gc.callbacks.append(collections)
            for name, (call, expect) in routes.items():
                collections.pauses.clear()
                times = measure(call, args.requests, expect)
                target = targets[name.split()[0]]
                p99 = benchlib.percentile(times, 99)
                pauses = f"{len(collections.pauses)} (max {max(collections.pauses, default=0):.0f} ms)"
                rows.append([name, f"{benchlib.percentile(times, 50):.2f}", f"{p99:.2f}", f"{max(times):.1f}",
                             pauses, f"≤ {target:.0f}", "met" if p99 <= target else "missed"])  # fmt: skip
                captured.statements.clear()
                captured.on = True
                call(10**6)
                captured.on = False
                plans.append((name, list(captured.statements)))
        freeze = "gc.freeze() after warm-up, as the handlers do" if args.gc_freeze else "no gc.freeze()"
        index = "; with the partial index" if args.index else ""
        print(f"artifacts: {args.artifacts}; {freeze}{index}; {args.requests} requests per route, after 50 each\n")
        headers = ["route", "p50 (ms)", "p99 (ms)", "max (ms)", "full GC passes", "target p99", ""]
        print(benchlib.table(headers, rows))
        if not args.no_explain:
            for name, statements in plans:
                print(f"\n### EXPLAIN ANALYZE: {name}\n\n```")
                print(explain(engine, statements))
                print("```")


def s3_deps(stack: contextlib.ExitStack, deps: Any, replace: Callable[..., Any]) -> Any:
    from moto import mock_aws

    from solver_core.artifacts.s3 import S3ArtifactStore, make_s3_client

    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    stack.enter_context(mock_aws())
    client = make_s3_client("us-east-1")
    client.create_bucket(Bucket="solver-bench")
    return replace(deps, artifacts=S3ArtifactStore(client, "solver-bench"))


if __name__ == "__main__":
    main()
