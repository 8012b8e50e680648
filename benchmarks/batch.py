"""Batch scaling: N instances x 2 attempts x 10 steps through `solver batch`'s runner, against the
loopback OpenAI-compatible fake answering every call after a fixed latency (the scaling benchmark's
per-conversation fake, served from a child process), with 1, 4 and 16 workers.

Figures: wall time of the batch, and CPU per agent step (this process and its children: sandboxes,
git, the agent processes of --processes), each batch relative to one instance alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib
from scaling import IN_PRICE, MODEL, OUT_PRICE, PerConversationLLM

COMMAND = ".venv/bin/python benchmarks/batch.py"


def cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_batch(
    instances: int,
    workers: int,
    llm: Any,
    repo: Path,
    base: str,
    *,
    home: Path,
    database_url: str | None,
    processes: bool,
) -> dict[str, float]:
    from solver_core.batch.instances import Instance
    from solver_core.batch.requests import BatchOptions
    from solver_core.batch.runner import BatchRunner
    from solver_core.cli.common import open_container
    from solver_core.cli.session import run_agent_in_child
    from solver_core.db.schema import AIModelRow
    from solver_core.models import Limits
    from solver_core.settings import local_cli_settings

    overrides: dict[str, Any] = {
        "home": home,
        "sandbox_isolation": "bwrap",
        "sandbox_dir": home / "sandboxes",
        "max_live_sandboxes": 1000,
        "allow_unregistered_models": False,
    }
    if database_url:
        overrides |= {"database_url": database_url, "db_pool_size": 40}
    settings = local_cli_settings(sandbox="local", **overrides)
    container = open_container(settings)
    with container.sessions.begin() as session:
        if session.get(AIModelRow, MODEL) is None:
            session.add(
                AIModelRow(
                    name=MODEL,
                    provider="openai",
                    model_kwargs={"api_base": llm.base_url, "max_retries": 0},
                    input_cost_per_token=IN_PRICE,
                    output_cost_per_token=OUT_PRICE,
                )
            )
    items = [
        Instance.model_validate(
            {
                "instance_id": f"bench__repo-{n}",
                "repo": "bench/repo",
                "repo_url": str(repo),
                "base_commit": base,
                "problem_statement": "Append the numbers to f.",
            }
        )
        for n in range(instances)
    ]
    options = BatchOptions(
        models=[MODEL],
        output=home / "out",
        name="bench",
        attempts=2,
        workers=workers,
        max_parallel=2,
        limits=Limits(step_limit=50, cost_limit_usd=5.0, time_limit_s=3600),
    )
    if processes:
        os.environ.update({"SOLVER_HOME": str(home), **({"SOLVER_DATABASE_URL": database_url} if database_url else {})})
    invoke = (lambda rid: run_agent_in_child(rid, 50, "local")) if processes else None
    runner = BatchRunner(container, options, items, invoke_agent=invoke)
    cpu, started = cpu_s(), time.perf_counter()
    state = runner.run()
    wall, used = time.perf_counter() - started, cpu_s() - cpu
    container.close()
    assert all(r.outcome.value == "patch" for r in state.instances.values()), state.counts
    return {"wall_s": wall, "cpu_s": used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of the embedded SQLite")
    parser.add_argument("--processes", action="store_true", help="each attempt's agent loop in its own process")
    args = parser.parse_args()
    benchlib.header(
        f"Batch scaling: {args.instances} instances x 2 attempts x {args.steps} steps, "
        f"{args.latency * 1000:.0f} ms per LLM call",
        COMMAND,
    )
    from minisweagent.models import litellm_model  # noqa: F401 - imported before timing starts

    scratch = Path(tempfile.mkdtemp(prefix="solver-bench-batch-"))
    repo = benchlib.make_repo(scratch / "repo", {"README.md": "numbers\n", "f": ""})
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    rows = []
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(benchlib.postgres_database()) if args.postgres else None
        llm = stack.enter_context(PerConversationLLM(args.latency, args.steps))
        os.environ["OPENAI_API_KEY"] = llm.api_key
        run = {"llm": llm, "repo": repo, "base": base, "database_url": url, "processes": args.processes}
        run_batch(1, 1, home=scratch / "warm", **run)
        one = run_batch(1, 1, home=scratch / "one", **run)
        steps = 2 * args.steps
        rows.append(["1 instance", f"{one['wall_s']:.2f}", "1.00", f"{one['cpu_s'] / steps * 1000:.0f}"])
        for workers in (int(w) for w in args.workers.split(",")):
            got = run_batch(args.instances, workers, home=scratch / f"w{workers}", **run)
            per_step = got["cpu_s"] / (steps * args.instances) * 1000
            rows.append([f"{workers} workers", f"{got['wall_s']:.2f}", f"{got['wall_s'] / one['wall_s']:.2f}",
                         f"{per_step:.0f}"])  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    db = "PostgreSQL" if args.postgres else "SQLite"
    print(f"database: {db}; agent loops: {'one process per attempt' if args.processes else 'threads'}\n")
    print(benchlib.table(["batch", "wall (s)", "relative to one instance", "CPU per step (ms)"], rows))


if __name__ == "__main__":
    main()
