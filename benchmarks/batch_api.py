"""POST /batches with 500 inline instances (the most the route takes), through the BatchesFunction
handler in-process, on SQLite and on PostgreSQL: every instance validated, then the batch, its 500
solves, their runs and events in one transaction, and the items file written. Then GET /batches/{id}
(counts over the 500 solves) and GET /batches/{id}/preds. The batch orchestrator records the start and
runs nothing (the state machine's own time is not Solver's).

Command: `.venv/bin/python benchmarks/batch_api.py [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import benchlib

COMMAND = ".venv/bin/python benchmarks/batch_api.py"
INSTANCES = 500


class Recording:
    name = "recording"

    def start(self, batch_id: UUID, items_key: str, max_concurrency: int) -> str:
        return f"batch:{batch_id}"

    def stop(self, batch_id: UUID, execution_ref: str | None, reason: str) -> None:
        return None


def body() -> dict[str, Any]:
    statement = "The parser drops the last token when the input ends without a newline. " * 40  # ~3 KB, like SWE-bench
    instances = [
        {"instance_id": f"org__repo-{n}", "repo": "org/repo", "base_commit": f"{n:040x}",
         "problem_statement": statement, "FAIL_TO_PASS": '["tests/test_a.py::test_x"]'}
        for n in range(INSTANCES)
    ]  # fmt: skip
    return {"instances": instances, "models": ["anthropic/claude-sonnet-4-5"], "attempts": 2, "max_concurrency": 50}


def measure(url: str, home: Path, repeat: int) -> dict[str, list[float]]:
    from functions.batches import app as batches_app
    from solver_core.api import use_deps
    from tests.support.api import LambdaContextStub, api_world, rest_event

    timings: dict[str, list[float]] = {"POST /batches": [], "GET /batches/{id}": [], "GET /batches/{id}/preds": []}
    payload = body()
    with api_world(url, home) as world:
        use_deps(dataclasses.replace(world.deps, batch_orchestrator=Recording()))
        try:
            for _ in range(repeat):
                started = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # the handler's metric lines (EMF)
                    answer = batches_app.handler(rest_event("POST", "/batches", body=payload), LambdaContextStub())
                timings["POST /batches"].append(time.perf_counter() - started)
                assert answer["statusCode"] == 202, answer["body"][:500]
                batch_id = json.loads(answer["body"])["id"]
                for route, path in (("GET /batches/{id}", f"/batches/{batch_id}"),
                                    ("GET /batches/{id}/preds", f"/batches/{batch_id}/preds")):  # fmt: skip
                    started = time.perf_counter()
                    with contextlib.redirect_stdout(io.StringIO()):
                        answer = batches_app.handler(rest_event("GET", path), LambdaContextStub())
                    timings[route].append(time.perf_counter() - started)
                    assert answer["statusCode"] == 200, answer["body"][:500]
        finally:
            use_deps(None)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    benchlib.header("POST /batches with 500 inline instances", COMMAND)
    print(f"request body: {len(json.dumps(body())) / 1e6:.2f} MB\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        databases = {
            "SQLite": f"sqlite:///{Path(tmp) / 'solver.db'}",
            "PostgreSQL": stack.enter_context(benchlib.postgres_database()),
        }
        for label, url in databases.items():
            if label == "SQLite":
                from solver_core.db.engine import make_engine
                from solver_core.db.migrate import upgrade

                engine = make_engine(url, pool_size=1)
                upgrade(engine)
                engine.dispose()
            for route, values in measure(url, Path(tmp) / label, args.repeat).items():
                rows.append((label, route, f"{benchlib.median(values):.2f}", f"{max(values):.2f}"))
    print(benchlib.table(["database", "request", "median (s)", "max (s)"], rows))
    print(f"\nload average while measuring (1 min): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
