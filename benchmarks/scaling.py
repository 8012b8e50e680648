"""Parallel scaling: 1, 4 and 16 attempts of one solve against a loopback OpenAI-compatible server
that answers every call after a fixed latency, through the real LitellmModel.

Every attempt takes the same 10 steps (the fake answers by the conversation's length, not from one
shared script, so concurrent attempts cannot steal each other's answers). The solve runs through the
CLI's code path (`solve_and_report`) with `max_parallel` equal to the number of attempts; the
figures are the solve's wall time (clone and preparation included) and its agent phase (from the
first RunAgent start to the last RunAgent end), each relative to one attempt.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import benchlib

COMMAND = ".venv/bin/python benchmarks/scaling.py"
MODEL = "openai/solver-bench-model"
IN_PRICE, OUT_PRICE = 2**-20, 2**-18
MAX_ATTEMPTS_PER_MODEL = 10


class PerConversationLLM:
    """The test suite's FakeLLMServer answering by position: step k < steps runs a command, the last
    step submits. It serves from a child process, so its request handling (JSON of the whole
    conversation, per call) does not compete with the solve for this interpreter's GIL, as a
    remote provider would not."""

    def __init__(self, latency_s: float, steps: int) -> None:
        self._latency_s, self._steps = latency_s, steps
        self._process: multiprocessing.process.BaseProcess | None = None
        self.base_url = self.api_key = ""

    def __enter__(self) -> PerConversationLLM:
        context = multiprocessing.get_context("spawn")
        answers: multiprocessing.queues.Queue[tuple[str, str]] = context.Queue()
        self._process = context.Process(target=serve_llm, args=(self._latency_s, self._steps, answers), daemon=True)
        self._process.start()
        self.base_url, self.api_key = answers.get(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(10)


def serve_llm(latency_s: float, steps: int, answers: multiprocessing.queues.Queue[tuple[str, str]]) -> None:
    from tests.fakes.llm_server import SUBMIT_COMMAND, FakeLLMServer, bash_tool_call

    class PerConversation(FakeLLMServer):
        _local = threading.local()

        def _record(self, headers: dict[str, str], raw_body: bytes) -> Any:
            body = super()._record(headers, raw_body)
            self._local.body = body  # the handler thread answers this request next
            self.requests.clear()  # nothing inspects them here; keep memory flat
            self.headers.clear()
            return body

        def _completion(self, model: str) -> Any:
            messages = (getattr(self._local, "body", None) or {}).get("messages") or []
            done = sum(1 for m in messages if m.get("role") == "assistant")
            command = f"echo {done} >> f" if done < steps - 1 else SUBMIT_COMMAND
            self.script_responses(bash_tool_call(command))
            return super()._completion(model)

    server = PerConversation(latency_s=latency_s).start()
    answers.put((server.base_url, server.api_key))
    threading.Event().wait()  # until terminated


def run_solve(
    attempts: int, llm: Any, repo: Path, *, home: Path, isolation: str, database_url: str | None
) -> dict[str, float]:
    from solver_core.cli.common import open_container
    from solver_core.cli.solve import build_request, solve_and_report
    from solver_core.db.schema import AIModelRow
    from solver_core.rules import RequestPolicy
    from solver_core.settings import local_cli_settings
    from solver_core.workflow.agent_step import AgentStep

    overrides: dict[str, Any] = {
        "home": home,
        "sandbox_isolation": isolation,
        "sandbox_dir": home / "sandboxes",
        "max_live_sandboxes": 1000,
        "allow_unregistered_models": False,
    }
    if database_url:
        overrides |= {"database_url": database_url, "db_pool_size": 20}
    settings = local_cli_settings(sandbox="local", **overrides)
    container = open_container(settings)
    # A request allows at most 10 attempts per model: 16 attempts are 2 models (the same fake) x 8.
    groups = -(-attempts // MAX_ATTEMPTS_PER_MODEL)
    models = [f"{MODEL}-{g}" for g in range(groups)]
    with container.sessions.begin() as session:
        for name in models:
            if session.get(AIModelRow, name) is None:
                session.add(
                    AIModelRow(
                        name=name,
                        provider="openai",
                        model_kwargs={"api_base": llm.base_url, "max_retries": 0},
                        input_cost_per_token=IN_PRICE,
                        output_cost_per_token=OUT_PRICE,
                    )
                )
    container.close()
    request = build_request(
        {
            "repo_url": str(repo),
            "issue": {"title": "Append the numbers", "body": "Append numbers to f."},
            "models": models,
            "attempts_per_model": attempts // groups,
            "max_parallel": attempts,
            "limits": {"step_limit": 50, "cost_limit_usd": 5.0, "time_limit_s": 3600},
        },
        RequestPolicy.from_settings(settings),
    )
    spans: list[tuple[float, float]] = []
    original = AgentStep.run

    def timed(self: AgentStep, run_id: UUID, budget: Any) -> bool:
        began = time.perf_counter()
        try:
            return original(self, run_id, budget)
        finally:
            spans.append((began, time.perf_counter()))

    AgentStep.run = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = solve_and_report(settings, request, chunk_steps=None, as_json=True)
    finally:
        AgentStep.run = original  # type: ignore[method-assign]
    wall = time.perf_counter() - started
    assert code == 0, "the solve did not succeed"
    assert len(spans) == attempts
    return {"wall_s": wall, "agent_s": max(e for _, e in spans) - min(b for b, _ in spans)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", default="1,4,16")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--isolation", default="bwrap", choices=["none", "bwrap"])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of the embedded SQLite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    benchlib.header(f"Parallel scaling: {args.steps} steps, {args.latency * 1000:.0f} ms per LLM call", COMMAND)

    import os

    from minisweagent.models import litellm_model  # noqa: F401 - imported before timing starts

    scratch = Path(tempfile.mkdtemp(prefix="solver-bench-scaling-"))
    repo = benchlib.make_repo(scratch / "repo", {"README.md": "numbers\n", "f": ""})
    counts = [int(n) for n in args.attempts.split(",")]
    results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(benchlib.postgres_database()) if args.postgres else None
        llm = stack.enter_context(PerConversationLLM(args.latency, args.steps))
        os.environ["OPENAI_API_KEY"] = llm.api_key
        # Warm-up: imports, first connections.
        run_solve(1, llm, repo, home=scratch / "warm", isolation=args.isolation, database_url=url)
        for rep in range(args.repeat):
            for n in counts:
                home = scratch / f"home-{n}-{rep}"
                results[n].append(run_solve(n, llm, repo, home=home, isolation=args.isolation, database_url=url))
    shutil.rmtree(scratch, ignore_errors=True)
    one_wall = benchlib.median([r["wall_s"] for r in results[counts[0]]])
    one_agent = benchlib.median([r["agent_s"] for r in results[counts[0]]])
    rows = []
    for n in counts:
        wall = benchlib.median([r["wall_s"] for r in results[n]])
        agent = benchlib.median([r["agent_s"] for r in results[n]])
        rows.append([n, f"{wall:.2f}", f"{wall / one_wall:.2f}", f"{agent:.2f}", f"{agent / one_agent:.2f}"])
    db = "PostgreSQL" if args.postgres else "SQLite"
    print(f"database: {db}; sandbox isolation: {args.isolation}; {args.repeat} repetitions, medians\n")
    headers = ["attempts", "solve wall (s)", "relative", "agent phase (s)", "relative"]
    print(benchlib.table(headers, rows))


if __name__ == "__main__":
    main()
