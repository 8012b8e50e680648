"""How fast a missing provider key stops `solver solve`: the wall time from starting the `solver`
executable to its exit with the one-line error, on a scrubbed environment (no keys, a fresh
SOLVER_HOME), for the executable's fast path and for the module entry (`python -m solver_core.cli`,
which builds the whole command line and runs the preflight before creating anything). And
`solver doctor --model` for comparison (it imports litellm).

    .venv/bin/python benchmarks/preflight.py [--runs 7]

Target: the executable fails in under a second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import header, make_repo, median, percentile, table

MODEL = "anthropic/claude-sonnet-4-5"


def wall_s(argv: list[str], home: Path) -> tuple[float, int, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOLVER_HOME": str(home / "solver"),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    return time.perf_counter() - started, done.returncode, done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    header("Preflight: a missing key", ".venv/bin/python benchmarks/preflight.py")
    solver = str(Path(sys.executable).parent / "solver")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        repo = make_repo(home / "repo", {"a.py": "x = 1\n"})
        solve = ["solve", str(repo), "--issue", "fix it", "--model", MODEL]
        ways = {
            "`solver solve` (the executable)": [solver, *solve],
            "`python -m solver_core.cli solve`": [sys.executable, "-m", "solver_core.cli", *solve],
            "`solver doctor --model` (imports litellm)": [solver, "doctor", "--model", MODEL],
        }
        rows, message = [], ""
        for name, argv in ways.items():
            wall_s(argv, home)  # warm the file cache
            results = [wall_s(argv, home) for _ in range(runs)]
            codes = {code for _, code, _ in results}
            times = [seconds for seconds, _, _ in results]
            message = message or results[0][2]
            created = (home / "solver" / "solver.db").exists()
            rows.append((name, f"{median(times):.3f}", f"{percentile(times, 90):.3f}", sorted(codes), created))
        print(table(["command", "median (s)", "p90 (s)", "exit codes", "database created"], rows))
        print(f"\nthe message: `{message}`")


if __name__ == "__main__":
    main()
