"""The local API server (`solver serve`) under concurrent clients: requests per second and latency of
GET /solves/{id} (the status route) and GET /solves (a page of 20), with 1 and 8 client threads
each sending requests back to back over its own keep-alive connection, on the embedded SQLite with
20 solves. It measures the HTTP server, the resolver and the routes in one process, as
`solver serve` runs them.

    .venv/bin/python benchmarks/serve_api.py [--requests 400]
"""

from __future__ import annotations

import argparse
import http.client
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import header, make_repo, median, percentile, table


def serve(home: Path) -> tuple[object, str, list[str]]:
    os.environ.update({"SOLVER_HOME": str(home / "solver"), "HOME": str(home)})
    from solver_core.api import ApiDeps
    from solver_core.cli.common import local_owner
    from solver_core.cli.serve import make_server
    from solver_core.db.migrate import upgrade
    from solver_core.models import IssueSpec, SolveRequest
    from solver_core.rules import RequestPolicy
    from solver_core.settings import local_cli_settings
    from solver_core.wiring import build_container

    settings = local_cli_settings()
    container = build_container(settings)
    upgrade(container.engine)
    repo = make_repo(home / "calc", {"calc.py": "def add(a, b):\n    return a - b\n"})
    policy = RequestPolicy.from_settings(settings)
    ids = []
    for i in range(20):
        body = {"repo_url": str(repo), "issue": IssueSpec(title=f"bug {i}"), "models": ["replay:/dev/null"]}
        request = SolveRequest.model_validate(body, context={"policy": policy})
        ids.append(str(container.solves.start(local_owner(), request).solve.id))
    deps = ApiDeps.from_container(container)
    server = make_server(lambda: deps, "127.0.0.1", 0, token=None, owner=local_owner())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}", ids


def client(address: str, paths: list[str]) -> list[float]:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for path in paths:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status}")
        times.append(time.perf_counter() - started)
    connection.close()
    return times


def measure(address: str, name: str, path_of: Callable[[int], str], threads: int, per: int) -> list[object]:
    def one(thread: int) -> list[float]:
        return client(address, [path_of(thread * per + i) for i in range(per)])

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(threads)))
    wall = time.perf_counter() - started
    times = [t for r in results for t in r]
    return [f"`{name}`", threads, f"{len(times) / wall:.0f}", f"{median(times) * 1000:.1f}",
            f"{percentile(times, 99) * 1000:.1f}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    total = parser.parse_args().requests
    header("The local API server under concurrent clients", ".venv/bin/python benchmarks/serve_api.py")
    with tempfile.TemporaryDirectory() as scratch:
        server, address, ids = serve(Path(scratch))
        client(address, ["/solves"] * 20)  # warm-up
        rows = []
        routes: list[tuple[str, Callable[[int], str]]] = [
            ("GET /solves/{id}", lambda i: f"/solves/{ids[i % len(ids)]}"),
            ("GET /solves", lambda _i: "/solves"),
        ]
        for name, path_of in routes:
            for threads in (1, 8):
                rows.append(measure(address, name, path_of, threads, total // threads))
        server.shutdown()  # type: ignore[attr-defined]
    print(table(["route", "client threads", "requests/s", "p50 (ms)", "p99 (ms)"], rows))
    print(f"\nload average while measuring (1 min): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
