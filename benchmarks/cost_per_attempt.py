"""What one attempt costs in AWS, from a real execution of the state machine under moto.

    .venv/bin/python benchmarks/cost_per_attempt.py [--steps 30] [--chunk-steps 10] [--seconds-per-step 20]

The real ASL runs in moto's Step Functions interpreter with the real Task handler (a replayed
attempt of N steps, RunAgent chunked like a Lambda time budget would), so the counts are the real
ones: state transitions from the execution history, Lambda invocations, and S3 requests counted at
the artifact store. Lambda GB-seconds are the measured handler time (our overhead) plus the agent's
own time per step, which is the model's latency and the command's run time, not ours: given by
--seconds-per-step. Prices are AWS's public us-east-1 list prices.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import benchlib  # first: it sets up paths and a clean environment
import boto3

from solver_core.artifacts.s3 import S3ArtifactStore
from solver_core.db.migrate import upgrade
from solver_core.orchestrators.stepfunctions import SfnOrchestrator
from solver_core.orchestrators.tasks import TaskContext, handle
from solver_core.sandbox.local import LocalSandboxBackend
from solver_core.wiring import build_container
from tests.support.runtime import make_repo, runtime_settings, start_solve, write_replay
from tests.support.stepfunctions import StepFunctionsHarness

ASL = Path(__file__).resolve().parents[1] / "statemachine" / "solve.asl.json"
PRICES = {
    "transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "gb_second_arm": 0.0000133334,  # Lambda arm64, per GB-second
    "request": 0.20 / 1_000_000,  # Lambda, per request
    "s3_put": 0.005 / 1000,  # S3 Standard PUT/COPY/POST/LIST
    "s3_get": 0.0004 / 1000,  # S3 Standard GET and others
}
RUN_SOLVER_GB = 2.0  # template.yaml: RunSolverFunction MemorySize 2048
S3_PUT_LIKE = {"put", "list", "delete_prefix"}


def count_s3(calls: Counter[str]) -> None:
    """Count the artifact store's requests by kind (each method is one S3 request, a list one per page)."""
    for name in ("put", "get", "exists", "list", "url", "delete_prefix"):
        original = getattr(S3ArtifactStore, name)

        def counted(self: S3ArtifactStore, *args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _original(self, *args, **kw)

        setattr(S3ArtifactStore, name, counted)


def run(steps: int, chunk_steps: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="solver-cost-"))
    durations: list[float] = []
    s3_calls: Counter[str] = Counter()
    count_s3(s3_calls)
    wired: dict[str, Any] = {}

    def task(event: dict[str, Any], context: Any) -> Any:
        started = time.perf_counter()
        try:
            ctx = TaskContext(
                wired["pipeline"],
                wired["container"].flow(),
                wired["container"].settings,
                context.get_remaining_time_in_millis,
            )
            return handle(event, ctx)
        finally:
            durations.append(time.perf_counter() - started)

    with StepFunctionsHarness({"run-solver": task}, retry_time_scale=0) as harness:
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="solver-cost")
        settings = runtime_settings(
            tmp, f"sqlite:///{tmp / 'db.sqlite'}", artifacts_bucket="solver-cost", aws_region="us-east-1",
            agent_chunk_steps=chunk_steps,
        )  # fmt: skip
        container = build_container(settings)
        upgrade(container.engine)
        wired["container"] = container
        wired["pipeline"] = container.pipeline(LocalSandboxBackend(tmp / "sandboxes", isolation="none"))
        repo = make_repo(tmp / "repo", {"notes.txt": "start\n"})
        actions = [f"echo step {i} >> notes.txt" for i in range(steps - 1)] + [
            "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
        ]
        solve = start_solve(container, repo_url=str(repo), models=[write_replay(tmp / "r.yaml", *actions)],
                            test_command="test -s notes.txt", limits={"step_limit": steps + 5})  # fmt: skip
        arn = harness.create_state_machine(
            ASL.read_text(), {"RunSolverFunctionArn": harness.function_arn("run-solver")}
        )
        execution = SfnOrchestrator(boto3.client("stepfunctions", region_name="us-east-1"), arn).start(solve.id)
        outcome = harness.wait(execution, timeout_s=600)
        history = harness.history(execution)
        run = container.runs.solve(solve.id).runs[0]
        container.close()
    transitions = sum(1 for e in history if e["type"].endswith("StateEntered"))
    return {"outcome": outcome["status"], "steps": run.steps, "transitions": transitions,
            "invocations": len(durations), "handler_s": sum(durations), "s3": dict(s3_calls)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--chunk-steps", type=int, default=10, help="agent steps per RunAgent invocation")
    parser.add_argument("--seconds-per-step", type=float, default=20.0, help="model latency + command time")
    args = parser.parse_args()
    measured = run(args.steps, args.chunk_steps)
    s3 = measured["s3"]
    puts = sum(n for kind, n in s3.items() if kind in S3_PUT_LIKE)
    gets = s3.get("get", 0) + s3.get("exists", 0)
    gb_seconds = RUN_SOLVER_GB * (measured["handler_s"] + args.steps * args.seconds_per_step)
    costs = {
        "state transitions": measured["transitions"] * PRICES["transition"],
        "Lambda GB-seconds": gb_seconds * PRICES["gb_second_arm"],
        "Lambda requests": measured["invocations"] * PRICES["request"],
        "S3 PUT/LIST": puts * PRICES["s3_put"],
        "S3 GET/HEAD": gets * PRICES["s3_get"],
    }
    options = f"--steps {args.steps} --chunk-steps {args.chunk_steps} --seconds-per-step {args.seconds_per_step:g}"
    benchlib.header("Cost per attempt in AWS", f"benchmarks/cost_per_attempt.py {options}")
    print(f"execution {measured['outcome']}, {measured['steps']} agent steps, "
          f"{measured['invocations']} Lambda invocations, {measured['transitions']} state transitions")  # fmt: skip
    print(f"S3 requests: {s3}; handler time measured {measured['handler_s']:.2f} s + agent time "
          f"{args.steps} x {args.seconds_per_step:g} s = {gb_seconds:.0f} GB-s")  # fmt: skip
    print(benchlib.table(["item", "USD"], [[k, f"{v:.6f}"] for k, v in costs.items()]))
    print(f"total per attempt: ${sum(costs.values()):.4f}")


if __name__ == "__main__":
    main()
