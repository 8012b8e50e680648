"""A long run: 250 replayed steps, each printing 8 KB, through `solver solve`'s code path.

Checkpoints are incremental (one part per step with only the messages it added), so the bytes a
step writes and the time it takes must not grow with the history. The figures: the size of the
checkpoint part written by step 10 and by step 250, the total written (against what rewriting the
whole state every step would have written), and the time per step around step 10 and step 250
(from the `step` events' timestamps, the median over a window of 9 steps).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import benchlib

COMMAND = ".venv/bin/python benchmarks/long_run.py"


def actions(steps: int, output_bytes: int) -> list[str]:
    # `yes` repeats one 80-character line; head cuts it to exactly `output_bytes`. One file edit
    # per step, so the partial diff changes too.
    line = "x" * 79
    return [f"echo {i} >> f; yes {line} | head -c {output_bytes}" for i in range(1, steps + 1)]


def run(steps: int, output_bytes: int, isolation: str, database_url: str | None, scratch: Path) -> dict[str, Any]:
    from solver_core.artifacts import keys
    from solver_core.cli.common import local_owner, open_container
    from solver_core.cli.solve import build_request, solve_and_report
    from solver_core.rules import RequestPolicy
    from solver_core.settings import local_cli_settings
    from solver_core.status import EventKind

    repo = benchlib.make_repo(scratch / "repo", {"f": ""})
    model = benchlib.write_replay(scratch / "replay.yaml", actions(steps, output_bytes))
    home = scratch / "home"
    overrides: dict[str, Any] = {"home": home, "sandbox_isolation": isolation, "sandbox_dir": home / "sandboxes"}
    if database_url:
        overrides["database_url"] = database_url
    settings = local_cli_settings(sandbox="local", **overrides)
    request = build_request(
        {
            "repo_url": str(repo),
            "issue": {"title": "Print a lot", "body": "Each step prints 8 KB."},
            "models": [model],
            "limits": {"step_limit": steps + 10, "cost_limit_usd": 1.0, "time_limit_s": 3600},
        },
        RequestPolicy.from_settings(settings),
    )
    with contextlib.redirect_stdout(io.StringIO()):
        code = solve_and_report(settings, request, chunk_steps=None, as_json=True)
    assert code == 0, "the solve did not succeed"
    container = open_container(settings)
    try:
        (solve,) = container.solves.list(local_owner()).items
        run_view = solve.runs[0]
        events = container.events.read(local_owner(), solve.id, limit=1000)
        prefix = keys.checkpoint_prefix(solve.id, run_view.id)
        parts = [len(container.artifacts.get(k)) for k in container.artifacts.list(prefix)]
    finally:
        container.close()
    steps_at = {e.data["step"]: e.at for e in events if e.kind is EventKind.STEP and e.data}
    durations = {n: (steps_at[n] - steps_at[n - 1]).total_seconds() for n in steps_at if n - 1 in steps_at}
    return {"parts": parts, "durations": durations, "steps": run_view.steps}


def window(durations: dict[int, float], center: int, half: int = 4) -> float:
    return benchlib.median([durations[n] for n in range(center - half, center + half + 1) if n in durations])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--output-bytes", type=int, default=8192)
    parser.add_argument("--isolation", default="none", choices=["none", "bwrap"])
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    benchlib.header(f"Long run: {args.steps} steps, {args.output_bytes} bytes of output each", COMMAND)

    scratch = Path(tempfile.mkdtemp(prefix="solver-bench-long-"))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(benchlib.postgres_database()) if args.postgres else None
        result = run(args.steps, args.output_bytes, args.isolation, url, scratch)
    shutil.rmtree(scratch, ignore_errors=True)

    parts, durations = result["parts"], result["durations"]
    # Part 0 holds the system and task messages; part n holds step n.
    total = sum(parts)
    rewritten = sum(sum(parts[: n + 1]) for n in range(len(parts)))  # a full state per step instead
    last = args.steps  # the part of the last action (the exhausted replay's exit adds one more)
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; sandbox isolation: {args.isolation}\n")
    rows = [
        ["checkpoint part written by step 10 (bytes)", f"{parts[10]:,}"],
        [f"checkpoint part written by step {last} (bytes)", f"{parts[last]:,}"],
        [f"checkpoint bytes in total ({len(parts)} parts)", f"{total:,}"],
        ["the same if every step rewrote the whole state", f"{rewritten:,}"],
        ["time per step around step 10 (ms, median of 9)", f"{window(durations, 10) * 1000:.1f}"],
        [f"time per step around step {last - 4} (ms, median of 9)", f"{window(durations, last - 4) * 1000:.1f}"],
    ]
    print(benchlib.table(["figure", "value"], rows))


if __name__ == "__main__":
    main()
